"""The real llama.cpp LLM on a packaged GGUF, through its handler."""

import pytest

from tests.conftest import make_handler
from utils.messages import EndOfResponse, LLMSentence, ResetConversation, Transcript, Turn


def ask(handler, text: str, language: str | None = "en") -> tuple[list[LLMSentence], list]:
    turn = Turn()
    out = list(handler.process(Transcript(text=text, language=language, turn=turn)))
    return [m for m in out if isinstance(m, LLMSentence)], out


def test_capital_of_france(llm_handler):
    sentences, out = ask(llm_handler, "What is the capital of France?")
    assert isinstance(out[-1], EndOfResponse)
    reply = " ".join(s.text for s in sentences)
    assert "paris" in reply.lower()
    turn = out[-1].turn
    assert turn.reply == reply
    assert turn.elapsed_ms("llm_start", "llm_first_sentence") > 0


def test_history_is_kept_and_bounded(llm_handler):
    llm_handler.on_reset()
    ask(llm_handler, "My name is Anna.")
    sentences, _ = ask(llm_handler, "What is my name?")
    assert "anna" in " ".join(s.text for s in sentences).lower()
    for question in ["Name a color.", "Name a fruit.", "Name an animal."]:
        ask(llm_handler, question)
    messages = llm_handler.chat.messages()
    assert messages[0]["role"] == "system"
    assert len(messages) == 1 + 2 * llm_handler.chat.size
    llm_handler.on_reset()
    assert len(llm_handler.chat.messages()) == 1


def test_sentences_stream_one_by_one(llm_handler):
    llm_handler.on_reset()
    sentences, _ = ask(llm_handler, "Give me three short tips for sleeping well, in three sentences.")
    assert len(sentences) >= 2
    assert all(s.text.strip() and s.language == "en" for s in sentences)


def test_reset_message_clears_history_through_the_thread(llm_handler):
    ask(llm_handler, "Remember the number 42.")
    llm_handler.queue_in.put(ResetConversation())
    # run() handles control messages in its loop; drive one iteration by hand.
    message = llm_handler.queue_in.get()
    assert isinstance(message, ResetConversation)
    llm_handler.on_reset()
    assert len(llm_handler.chat.messages()) == 1


@pytest.mark.parametrize("alias", ["smollm2-135m"])
def test_other_packaged_aliases_load_and_answer(alias):
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    handler = make_handler(LlamaCppLanguageModelHandler, model_name=alias)
    sentences, out = ask(handler, "Say hello.")
    assert sentences and isinstance(out[-1], EndOfResponse)
