"""The mlx-lm LLM backend.

MLX runs on Apple silicon only, so the real model test is skipped elsewhere.
What can run on Linux does: flag parsing and registry wiring, the clear error
when the package is missing, and the handler's own logic (chat template,
sampler, sentence streaming, history) over a stand-in `mlx_lm` module that
plays back a fixed reply in the shape of mlx_lm's API.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

from config.parse import parse_config
from conversation.turn import Turn
from LLM.mlx_language_model import MLXLanguageModelHandler
from tests.conftest import make_handler
from utils.messages import EndOfResponse, LLMSentence, Transcript


def test_flags_and_registry_wiring():
    config = parse_config(["--llm", "mlx-lm", "--lm_model_name", "x", "--lm_gen_temperature", "0.5"])
    assert config.llm_backend.name == "mlx-lm"
    assert config.llm_backend.handler_class() is MLXLanguageModelHandler
    kwargs = config.stage_kwargs("llm")
    assert kwargs["model_name"] == "x" and kwargs["chat_size"] == 2
    assert kwargs["gen_kwargs"] == {"max_tokens": 128, "temperature": 0.5, "top_p": 1.0}


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # import mlx_lm -> ImportError
    with pytest.raises(ImportError, match="pip install mlx-lm"):
        make_handler(MLXLanguageModelHandler, model_name="x")


@pytest.mark.skipif(sys.platform != "darwin", reason="mlx runs on Apple silicon (macOS) only")
def test_real_model_answers():
    pytest.importorskip("mlx_lm", reason="pip install mlx-lm")
    handler = make_handler(MLXLanguageModelHandler, model_name="mlx-community/Qwen2.5-0.5B-Instruct-4bit")
    out = list(handler.process(Transcript("What is the capital of France?", "en", Turn())))
    assert isinstance(out[-1], EndOfResponse)
    assert "paris" in out[-1].turn.reply.lower()


@dataclass
class _Response:
    text: str


@pytest.fixture
def stand_in_mlx_lm(monkeypatch):
    """A module with mlx_lm's load / stream_generate / make_sampler shapes that
    records how the handler calls it."""
    calls: dict[str, list] = {"prompts": [], "kwargs": [], "samplers": []}

    class Tokenizer:
        def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False):
            assert tokenize is False and add_generation_prompt is True
            return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def load(name):
        return f"model:{name}", Tokenizer()

    def stream_generate(model, tokenizer, prompt, sampler=None, **kwargs):
        calls["prompts"].append(prompt)
        calls["kwargs"].append(kwargs)
        for word in "Paris is the capital. It is in France.".split(" "):
            yield _Response(word + " ")

    def make_sampler(temp=0.0, top_p=0.0):
        calls["samplers"].append((temp, top_p))
        return ("sampler", temp, top_p)

    module = types.ModuleType("mlx_lm")
    module.load, module.stream_generate = load, stream_generate
    sample_utils = types.ModuleType("mlx_lm.sample_utils")
    sample_utils.make_sampler = make_sampler
    module.sample_utils = sample_utils
    monkeypatch.setitem(sys.modules, "mlx_lm", module)
    monkeypatch.setitem(sys.modules, "mlx_lm.sample_utils", sample_utils)
    return calls


def test_handler_logic_over_a_stand_in_module(stand_in_mlx_lm):
    calls = stand_in_mlx_lm
    handler = make_handler(
        MLXLanguageModelHandler,
        model_name="m",
        init_chat_prompt="Be brief.",
        chat_size=1,
        gen_kwargs={"max_tokens": 50, "temperature": 0.3, "top_p": 0.9},
    )
    assert handler.model == "model:m"
    assert calls["kwargs"] == [{"max_tokens": 2}]  # warm-up
    out = list(handler.process(Transcript("Where is Paris?", "fr", Turn())))
    assert [type(m) for m in out] == [LLMSentence, LLMSentence, EndOfResponse]
    assert [m.text for m in out[:-1]] == ["Paris is the capital.", "It is in France."]
    assert calls["kwargs"][-1] == {"max_tokens": 50} and calls["samplers"][-1] == (0.3, 0.9)
    assert calls["prompts"][-1] == (
        "<system>Be brief.<user>(I speak French: answer me in French, do not translate.) Where is Paris?<assistant>"
    )
    list(handler.process(Transcript("And Rome?", "en", Turn())))
    assert "<assistant>Paris is the capital. It is in France.<user>And Rome?" in calls["prompts"][-1]
    handler.on_reset()
    assert handler.chat.messages() == [{"role": "system", "content": "Be brief."}]
