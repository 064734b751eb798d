"""The real llama.cpp LLM on a packaged GGUF, through its handler."""

import re

import pytest

from conversation.turn import Turn
from tests.conftest import make_handler
from utils.messages import EndOfResponse, LLMSentence, ResetConversation, Transcript


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


def test_reset_message_clears_history_through_the_thread():
    """The handler's own thread body: a question, a reset, a question, the
    end of input.  The reset reaches on_reset() between the two turns and is
    passed on in order, so the second turn is answered without the first."""
    import threading

    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from utils.messages import EndOfStream

    handler = make_handler(LlamaCppLanguageModelHandler, model_name="smollm2-135m", chat_size=2)
    histories = []
    real_generate = handler.generate
    handler.generate = lambda messages, *a: histories.append(list(messages)) or real_generate(messages, *a)
    first, second = Turn(), Turn()
    for message in (
        Transcript("Remember the number 42.", "en", first),
        ResetConversation(),
        Transcript("Say hello.", "en", second),
        EndOfStream(),
    ):
        handler.queue_in.put(message)
    thread = threading.Thread(target=handler.run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    out = []
    while not handler.queue_out.empty():
        out.append(handler.queue_out.get())
    kinds = [type(m).__name__ for m in out if not isinstance(m, LLMSentence)]
    assert kinds == ["EndOfResponse", "ResetConversation", "EndOfResponse", "EndOfStream"]
    assert [m.turn for m in out if isinstance(m, EndOfResponse)] == [first, second]
    assert any("42" in m["content"] for m in histories[0])
    assert not any("42" in m["content"] for m in histories[1]), "the reset did not reach the thread"
    assert [m["content"] for m in handler.chat.messages() if m["role"] == "user"] == ["Say hello."]


@pytest.mark.parametrize("alias", ["smollm2-135m"])
def test_other_packaged_aliases_load_and_answer(alias):
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    handler = make_handler(LlamaCppLanguageModelHandler, model_name=alias)
    sentences, out = ask(handler, "Say hello.")
    assert sentences and isinstance(out[-1], EndOfResponse)


def evaluated_tokens(handler, monkeypatch) -> list[int]:
    """Count the tokens llama.cpp decodes per call (prompt and reply)."""
    counts: list[int] = []
    real_eval = handler.model.eval
    monkeypatch.setattr(handler.model, "eval", lambda tokens: counts.append(len(tokens)) or real_eval(tokens))
    return counts


def test_a_dropped_exchange_is_cut_from_the_cache_not_re_evaluated(llm_handler, monkeypatch):
    """Once the chat is full, each turn drops its oldest exchange.  The prompt
    then differs from the cache right after the system prompt; without the cut
    llama.cpp re-evaluates the whole kept history every turn."""
    from LLM import llama_cpp_language_model as module

    llm_handler.on_reset()
    for question in ["My name is Anna.", "Name a color.", "Name a fruit."]:
        ask(llm_handler, question)  # fills the chat (size 2) and drops the first exchange
    history = llm_handler.prompt_tokens(llm_handler.chat.messages())
    counts = evaluated_tokens(llm_handler, monkeypatch)
    sentences, _ = ask(llm_handler, "What is the capital of France?")
    assert "paris" in " ".join(s.text for s in sentences).lower()
    prompt_evaluated = counts[0]
    assert prompt_evaluated < 40, counts  # the new message and its template tokens only

    monkeypatch.setattr(module, "drop_evicted_tokens", lambda model, prompt, min_run=8: 0)
    counts.clear()
    ask(llm_handler, "What is the capital of Italy?")
    assert counts[0] > len(history) // 2, (counts, len(history))  # the history again


def test_cutting_the_cache_keeps_positions_consistent(llm_handler):
    """After a cut, the cache holds exactly the prompt's tokens it claims to."""
    from LLM.llama_cpp_language_model import drop_evicted_tokens

    llm_handler.on_reset()
    for question in ["Name a color.", "Name a fruit.", "Name an animal."]:
        ask(llm_handler, question)
    llm_handler.chat.add_user("Name a planet.")
    prompt = llm_handler.prompt_tokens(llm_handler.chat.messages())
    llm_handler.chat.discard_pending()
    drop_evicted_tokens(llm_handler.model, prompt)
    cached = list(llm_handler.model._input_ids)
    assert cached == prompt[: len(cached)]
    assert len(cached) > len(prompt) // 2


# --- the KV-cache cut when llama-cpp-python's internals move ---------------------------


def cut_warnings(caplog) -> list[str]:
    return [r.message for r in caplog.records if "KV-cache cut" in r.message]


def test_a_model_without_the_internals_disables_the_cut_with_one_warning(caplog):
    from types import SimpleNamespace

    from LLM.llama_cpp_language_model import drop_evicted_tokens

    model = SimpleNamespace(n_tokens=12)  # what a future llama-cpp-python might look like
    prompt = list(range(40))
    assert drop_evicted_tokens(model, prompt) == 0
    assert drop_evicted_tokens(model, prompt) == 0  # no crash, and no second warning
    (warning,) = cut_warnings(caplog)
    assert "cut disabled" in warning and "Llama._input_ids" in warning and "LlamaContext.memory" in warning
    assert model.n_tokens == 12  # nothing touched


def test_an_internal_that_changed_behaviour_disables_the_cut_and_forgets_the_cache(caplog):
    """The names are there but a call fails half-way: the cache may be half
    cut, so the next prompt is evaluated from scratch, and the cut stays off."""
    from types import SimpleNamespace

    import llama_cpp

    from LLM.llama_cpp_language_model import drop_evicted_tokens

    calls = []

    def seq_rm(*args):
        calls.append(args)
        raise TypeError("llama_memory_seq_rm() takes 3 arguments")

    cached = list(range(100))
    prompt = cached[:10] + cached[40:] + [500, 501]  # an old exchange (10..39) dropped
    context = SimpleNamespace(memory=object(), kv_cache_seq_rm=seq_rm, kv_cache_seq_shift=lambda *a: None)
    model = SimpleNamespace(_input_ids=cached, input_ids=list(cached), n_tokens=100, _ctx=context)
    original = llama_cpp.llama_memory_can_shift
    llama_cpp.llama_memory_can_shift = lambda memory: True
    try:
        assert drop_evicted_tokens(model, prompt) == 0
        assert model.n_tokens == 0
        assert drop_evicted_tokens(model, prompt) == 0
    finally:
        llama_cpp.llama_memory_can_shift = original
    assert len(calls) == 1  # not tried again
    (warning,) = cut_warnings(caplog)
    assert "TypeError" in warning


def test_the_handler_answers_when_the_internals_moved(monkeypatch, caplog):
    """A real model whose llama-cpp-python lacks the function the cut needs:
    one warning at start, and the conversation goes on past the chat's bound."""
    import llama_cpp

    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    monkeypatch.delattr(llama_cpp, "llama_memory_can_shift")
    handler = make_handler(LlamaCppLanguageModelHandler, model_name="smollm2-135m", chat_size=1)
    (warning,) = cut_warnings(caplog)
    assert "llama_cpp.llama_memory_can_shift" in warning
    for question in ["Say hello.", "Name a color.", "Name a fruit."]:  # the chat drops exchanges
        sentences, out = ask(handler, question)
        assert sentences and isinstance(out[-1], EndOfResponse)
    assert len(cut_warnings(caplog)) == 1


def test_the_kv_cut_never_moves_one_conversations_cache_into_anothers(llm_handler, monkeypatch):
    """Two sessions take turns on one model: the cut (which reuses cached keys
    computed in a conversation's context) runs only on a cache of the
    conversation itself (its live one, or its own parked while the other
    was served, LLM/parked_caches.py), and each session's chat holds only
    its own exchanges."""
    import LLM.llama_cpp_language_model as llama_module
    from conversation.session import Session

    cut_for: list[str] = []

    def cut(model, prompt) -> int:
        # The cache it would cut holds this conversation's words, none of the other's.
        cached = model.detokenize(list(model.input_ids[: model.n_tokens])).decode("utf-8", "ignore").lower()
        others = ("fruit", "tree") if llm_handler.serving is alice else ("colour", "planet")
        assert not any(word in cached for word in others), cached
        cut_for.append(llm_handler.serving.id)
        return 0

    monkeypatch.setattr(llama_module, "drop_evicted_tokens", cut)
    alice, bob = Session(session_id="alice"), Session(session_id="bob")
    for session, question in ((alice, "Name a colour."), (bob, "Name a fruit."), (bob, "Name a tree."),
                              (alice, "Name a planet.")):  # fmt: skip
        list(llm_handler.process(Transcript(question, "en", Turn(session=session))))
    # bob's second turn followed his own first one; alice's cache was parked
    # while bob spoke and put back for her second turn.
    assert cut_for == ["bob", "alice"]
    assert llm_handler.caches.restored >= 1
    assert "colour" in " ".join(m["content"] for m in alice.chat.messages())
    assert "fruit" not in " ".join(m["content"] for m in alice.chat.messages())
    assert "colour" not in " ".join(m["content"] for m in bob.chat.messages())


def test_markdown_from_the_real_model_never_reaches_the_tts_as_symbols():
    """Asked for a formatted list, the packaged model writes markdown; the
    sentences sent on to the TTS carry only words (LLM/spoken_text.py)."""
    import re

    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    handler = make_handler(
        LlamaCppLanguageModelHandler,
        model_name="qwen2.5-0.5b",
        init_chat_prompt="You are a helpful assistant. Format every answer in markdown.",
    )
    pieces: list[str] = []
    generate = handler.generate
    handler.generate = lambda messages, *args: (pieces.append(p) or p for p in generate(messages, *args))
    sentences, out = ask(
        handler,
        "Give me a bulleted markdown list of three fruits in bold, each with its price in dollars "
        "and a link to a shop website.",
    )
    written = "".join(pieces)  # what the model itself wrote
    assert re.search(r"\*\*|^\s*[-*]\s", written, re.M) and "$" in written, f"no markdown to clean: {written!r}"
    spoken = [s.text for s in sentences]
    assert spoken and isinstance(out[-1], EndOfResponse)
    for text in spoken:
        assert not re.search(r"[*#`_|<>\[\]{}$€£%°•]|https?://|www\.|\d", text), text
    assert out[-1].turn.reply == " ".join(spoken)  # the turn records what was said


def test_the_same_question_after_a_reset_is_answered(llm_handler):
    """Found by the soak: after a reset (a new client) the prompt is the
    system prompt and a question the cache holds further on; the cut moved
    that earlier copy into place, the whole prompt counted as evaluated, and
    llama-cpp-python sampled from the previous reply's last logits: an empty
    answer.  At least one prompt token must be decoded afresh."""
    llm_handler.on_reset()
    ask(llm_handler, "Name a fruit.")
    ask(llm_handler, "What is the capital of France?")
    llm_handler.on_reset()
    again, out = ask(llm_handler, "What is the capital of France?")
    assert isinstance(out[-1], EndOfResponse)
    assert "paris" in " ".join(s.text for s in again).lower(), out[-1].turn.reply


def test_interrupted_replies_in_the_history_do_not_become_the_next_answers():
    """The default model, after replies the user cut off (one before a word
    was heard, one mid-sentence), still answers the next questions.  With a
    note in words in the history ("[interrupted: the user heard none of this
    reply]"), the model answered every following question with that note."""
    from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT
    from arguments_classes.llama_cpp_language_model_arguments import LlamaCppLanguageModelHandlerArguments
    from conversation.session import Session
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    handler = make_handler(
        LlamaCppLanguageModelHandler,
        model_name=LlamaCppLanguageModelHandlerArguments().lm_model_name,
        init_chat_prompt=DEFAULT_SYSTEM_PROMPT,
        chat_size=2,
    )
    session = Session()

    def ask_in_session(text: str) -> tuple[Turn, str]:
        turn = Turn(session=session)
        out = handler.process(Transcript(text=text, language="en", turn=turn))
        return turn, " ".join(m.text for m in out if isinstance(m, LLMSentence))

    turn, _ = ask_in_session("Please say hello to my friend, Anna.")
    session.chat.record_heard(turn.turn_id, "")  # cut before a word was heard
    turn, _ = ask_in_session("Can you recommend a good book for a long train ride?")
    session.chat.record_heard(turn.turn_id, "Sure! A great book for a long")  # cut mid-sentence
    assert "interrupted" not in str(session.chat.messages())
    for question, expected in [("How many days are there in a year?", "365|three hundred and sixty"),
                               ("What is the capital of France?", "paris")]:  # fmt: skip
        _, reply = ask_in_session(question)
        assert re.search(expected, reply.lower()), reply
        assert "interrupted" not in reply.lower() and "[" not in reply


def test_a_reply_opening_with_a_filler_sends_it_with_the_words_behind_it():
    """The packaged model told to open with "Certainly!": the handler's
    pacing (the default --first_piece_words 4) never sends those words
    alone; the first piece the TTS gets carries what follows them.  Sentences
    released together come out of one text piece (the same token count)."""
    from LLM.answer_loop import ReplyPacing
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    handler = make_handler(
        LlamaCppLanguageModelHandler,
        model_name="qwen2.5-0.5b",
        init_chat_prompt="Begin every reply with the single word 'Certainly!' and then answer in two sentences.",
        pacing=ReplyPacing(first_clause_words=4, first_phrase_words=5, first_piece_words=4),
    )
    turn = Turn()
    released: list[tuple[int, str]] = []
    for message in handler.process(Transcript("Can you recommend a good book for a train ride?", "en", turn)):
        if isinstance(message, LLMSentence):
            released.append((turn.llm_tokens, message.text))
    assert released and released[0][1].lower().startswith("certainly"), released  # the model did open with it
    first = [text for tokens, text in released if tokens == released[0][0]]
    assert len(" ".join(first).split()) >= 4, released
