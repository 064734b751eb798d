"""Several conversations' replies on one LLM stage (LLM/reply_interleave.py).

The policy alone, then the stage's thread body on a scripted backend
(messages in, messages out, in order), then the packaged 0.5B on llama.cpp,
whose paused reply must go on exactly as it would have alone.
"""

from __future__ import annotations

import threading

import pytest

from conversation.session import Session
from conversation.turn import Turn
from LLM.language_model import LanguageModelHandler
from LLM.reply_interleave import (
    SWITCH_MARGIN_S,
    PausedReply,
    most_urgent,
    runs_dry_at,
    should_pause,
    waits_for_paused,
)
from tests.conftest import drain, make_handler
from utils.messages import EndOfResponse, EndOfStream, LLMSentence, PartialTranscript, Transcript

# --- the policy --------------------------------------------------------------------------


def paused(turn: Turn) -> PausedReply:
    return PausedReply(turn, iter(()))


def test_a_reply_pauses_only_at_a_sentence_and_only_for_a_waiting_question():
    turn = Turn(session=Session())
    sentence = LLMSentence("One.", "en", turn=turn)
    assert should_pause(sentence, turn, [], question_waiting=True)
    assert not should_pause(sentence, turn, [], question_waiting=False)
    assert not should_pause(EndOfResponse(turn=turn), turn, [], question_waiting=True)  # the end is no pause
    turn.cancel()
    assert not should_pause(sentence, turn, [], question_waiting=True)  # a withdrawn reply just ends


def test_a_paused_reply_whose_listener_runs_dry_sooner_takes_the_model_back():
    writing, waiting = Turn(session=Session()), Turn(session=Session())
    sentence = LLMSentence("One.", "en", turn=writing)
    writing.playback.add("a long sentence", 24000 * 6, 24000, when=100.0)  # plays until 106
    waiting.playback.add("short", 24000 * 1, 24000, when=100.0)  # plays until 101
    assert should_pause(sentence, writing, [paused(waiting)], question_waiting=False, now=100.0)
    waiting.playback.add("more", int(24000 * (5 - SWITCH_MARGIN_S / 2)), 24000, when=100.0)  # about as due
    assert not should_pause(sentence, writing, [paused(waiting)], question_waiting=False, now=100.0)


def test_words_with_the_tts_count_as_audio_the_listener_will_have():
    """A reply whose sentence is still being made into audio is not out of
    audio: its words count at about 0.35 s each."""
    writing, waiting = Turn(session=Session()), Turn(session=Session())
    sentence = LLMSentence("One.", "en", turn=writing)
    writing.playback.add("a long sentence", 24000 * 3, 24000, when=100.0)  # plays until 103
    assert should_pause(sentence, writing, [paused(waiting)], question_waiting=False, now=100.0)
    waiting.words_released = 12  # about 4.2 s of speech on its way
    assert runs_dry_at(waiting, 100.0) > 104
    assert not should_pause(sentence, writing, [paused(waiting)], question_waiting=False, now=100.0)


def test_a_reply_yields_only_once_its_listener_has_enough_audio_ahead():
    """With a cover, a reply whose listener would run dry while another
    conversation's sentence is written goes on to its next sentence first."""
    writing = Turn(session=Session())
    sentence = LLMSentence("One.", "en", turn=writing)
    writing.playback.add("short", 24000 * 1, 24000, when=100.0)  # 1 s ahead
    assert not should_pause(sentence, writing, [], question_waiting=True, now=100.0, cover_s=2.5)
    writing.words_released = 1 + 6  # six more words on their way: about 3.1 s ahead
    assert should_pause(sentence, writing, [], question_waiting=True, now=100.0, cover_s=2.5)


def test_a_reply_yields_at_once_for_a_paused_reply_that_was_cut():
    """An interrupted paused reply only has to end (its client waits for its
    response.done): the reply being written yields at its next sentence,
    whatever audio it has ahead."""
    writing, cut = Turn(session=Session()), Turn(session=Session())
    sentence = LLMSentence("One.", "en", turn=writing)
    assert not should_pause(sentence, writing, [paused(cut)], question_waiting=False, now=100.0, cover_s=4.0)
    cut.interrupt("Hello")
    assert should_pause(sentence, writing, [paused(cut)], question_waiting=False, now=100.0, cover_s=4.0)


def test_the_most_urgent_paused_reply_is_a_withdrawn_one_then_the_one_due_first():
    early, late, withdrawn = Turn(session=Session()), Turn(session=Session()), Turn(session=Session())
    early.playback.add("x", 24000, 24000, when=10.0)
    late.playback.add("x", 24000, 24000, when=20.0)
    withdrawn.playback.add("x", 24000, 24000, when=30.0)
    assert most_urgent([paused(late), paused(early)], now=0.0).turn is early
    withdrawn.cancel()
    assert most_urgent([paused(late), paused(withdrawn), paused(early)], now=0.0).turn is withdrawn
    assert most_urgent([]) is None


def test_messages_of_a_paused_conversation_and_the_input_end_wait():
    mine, other = Session(), Session()
    replies = [paused(Turn(session=mine))]
    assert waits_for_paused(Transcript("Next?", "en", Turn(session=mine)), replies)
    assert waits_for_paused(PartialTranscript("Next", "en", session=mine), replies)
    assert waits_for_paused(EndOfStream(), replies)
    assert not waits_for_paused(Transcript("Hi?", "en", Turn(session=other)), replies)
    assert not waits_for_paused(EndOfStream(), [])


# --- the stage, on a scripted backend ------------------------------------------------------


class ScriptedModel(LanguageModelHandler):
    """Replies with the sentences named in the question ("say: One. Two."),
    and records what it saved and restored for paused replies."""

    can_interleave = True

    def setup(self) -> None:
        self.saved: list[str] = []
        self.restored: list[str] = []
        self.on_piece = None  # called with each piece as it is generated

    def generate(self, messages, max_tokens=None, tools=None):
        question = messages[-1]["content"]
        for word in question.split("say:", 1)[1].split():
            if self.on_piece is not None:
                self.on_piece(word)
            yield word + " "

    def pause_state(self):
        state = self.answering.session.chat.messages()[-1]["content"]
        self.saved.append(state)
        return state

    def resume_state(self, state, session):
        self.restored.append(state)


def serve(handler: LanguageModelHandler, *messages) -> list:
    """Run the stage's thread body over `messages` (then the input's end)
    and return what it handed on."""
    for message in messages:
        handler.queue_in.put(message)
    handler.queue_in.put(EndOfStream())
    thread = threading.Thread(target=handler.run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return drain(handler.queue_out)


def spoken(outputs: list, sessions: dict[str, Session]) -> list[str]:
    """The outputs as 'A: One.' / 'A: end' lines, A naming the session."""
    names = {id(session): name for name, session in sessions.items()}
    lines = []
    for output in outputs:
        if isinstance(output, LLMSentence):
            lines.append(f"{names[id(output.turn.session)]}: {output.text}")
        elif isinstance(output, EndOfResponse):
            lines.append(f"{names[id(output.turn.session)]}: end")
    return lines


def ask(session: Session, sentences: str) -> Transcript:
    return Transcript(f"say: {sentences}", "en", Turn(session=session))


def test_another_conversations_question_is_answered_before_a_reply_goes_on():
    handler = make_handler(ScriptedModel)
    a, b = Session(), Session()
    out = serve(handler, ask(a, "One. Two. Three."), ask(b, "Hello."))
    assert spoken(out, {"A": a, "B": b}) == ["A: One.", "B: Hello.", "B: end", "A: Two.", "A: Three.", "A: end"]
    assert handler.saved == handler.restored == ["say: One. Two. Three."]  # A's state, put back for A
    assert [m["role"] for m in a.chat.messages()] == ["user", "assistant"]  # each chat whole, apart
    assert a.chat.messages()[-1]["content"] == "One. Two. Three."
    assert b.chat.messages()[-1]["content"] == "Hello."


def test_a_conversations_next_question_waits_for_its_own_paused_reply():
    handler = make_handler(ScriptedModel)
    a, b = Session(), Session()
    out = serve(handler, ask(a, "One. Two."), ask(a, "Again."), ask(b, "Hi. There."))
    # A's second question never pauses A's first reply; B's does, and A's
    # second question is answered only after A's first reply has ended.
    assert spoken(out, {"A": a, "B": b}) == [
        "A: One.", "B: Hi.", "B: There.", "B: end", "A: Two.", "A: end", "A: Again.", "A: end",
    ]  # fmt: skip
    assert [m["content"] for m in a.chat.messages() if m["role"] == "assistant"] == ["One. Two.", "Again."]


def test_first_sentences_of_four_conversations_come_before_anyones_second():
    handler = make_handler(ScriptedModel)
    sessions = {name: Session() for name in "ABCD"}
    out = serve(handler, *(ask(session, "First. Second.") for session in sessions.values()))
    lines = spoken(out, sessions)
    firsts = [lines.index(f"{name}: First.") for name in "ABCD"]
    seconds = [lines.index(f"{name}: Second.") for name in "ABCD"]
    assert max(firsts) < min(seconds)
    assert all(lines.count(f"{name}: end") == 1 for name in "ABCD")


def test_a_backend_that_cannot_pause_answers_one_whole_reply_after_another():
    """A backend that generates in a thread of its own (transformers) or
    over HTTP keeps `can_interleave` False: the flag does not turn it on."""

    class Threaded(ScriptedModel):
        can_interleave = False

    handler = make_handler(Threaded, interleave_replies=True)
    a, b = Session(), Session()
    out = serve(handler, ask(a, "One. Two."), ask(b, "Hello."))
    assert spoken(out, {"A": a, "B": b}) == ["A: One.", "A: Two.", "A: end", "B: Hello.", "B: end"]


def test_without_interleaving_one_whole_reply_follows_another():
    handler = make_handler(ScriptedModel, interleave_replies=False)
    a, b = Session(), Session()
    out = serve(handler, ask(a, "One. Two."), ask(b, "Hello."))
    assert spoken(out, {"A": a, "B": b}) == ["A: One.", "A: Two.", "A: end", "B: Hello.", "B: end"]
    assert handler.saved == []


def test_a_paused_reply_that_was_withdrawn_ends_before_the_next_question():
    """A reply withdrawn while paused (its client left) is closed as soon
    as it can be, even with another question waiting: nothing more of it is
    computed or said, and its conversation's messages no longer wait."""
    handler = make_handler(ScriptedModel)
    a, b, c = Session(), Session(), Session()
    first = ask(a, "One. Two. Three.")

    def withdraw_a(piece: str) -> None:
        if piece == "Hi.":
            first.turn.cancel()

    handler.on_piece = withdraw_a
    out = serve(handler, first, ask(b, "Hi. There."), ask(c, "Hey."))
    assert spoken(out, {"A": a, "B": b, "C": c}) == ["A: One.", "B: Hi.", "C: Hey.", "C: end", "B: There.", "B: end"]
    assert a.chat.messages() == []  # withdrawn: its question and answer never happened


def test_a_paused_reply_that_cannot_be_restored_ends_with_an_error_and_the_stage_goes_on():
    class Forgetful(ScriptedModel):
        def resume_state(self, state, session):
            raise RuntimeError("the paused reply's KV cache could not be restored")

    handler = make_handler(Forgetful)
    a, b = Session(), Session()
    out = serve(handler, ask(a, "One. Two."), ask(b, "Hello."), ask(b, "Bye."))
    # B's next question (a first sentence) goes before A's later ones; A's
    # reply then cannot go on and ends with the error, and nothing else fails.
    assert spoken(out, {"A": a, "B": b}) == ["A: One.", "B: Hello.", "B: end", "B: Bye.", "B: end", "A: end"]
    ends = [o for o in out if isinstance(o, EndOfResponse) and o.turn.session is a]
    assert len(ends) == 1 and "could not be restored" in ends[0].turn.error
    assert a.chat.messages() == []  # the unanswered question is not left in A's chat


def test_a_paused_reply_cut_meanwhile_ends_as_cut_without_being_restored():
    """The user talked over A's reply while it was paused: it only has to
    close (its generator stops before its next token), so its state is not
    put back, and a restore that would have failed cannot turn the cut into
    an error (it ended as failed, its response "failed" instead of "cancelled")."""

    a, b = Session(), Session()

    class ForgetsA(ScriptedModel):
        def resume_state(self, state, session):
            if session is a:
                raise RuntimeError("the paused reply's KV cache could not be restored")
            super().resume_state(state, session)

    handler = make_handler(ForgetsA)
    first = ask(a, "One. Two. Three.")

    def interrupt_a(piece: str) -> None:
        if piece == "Hello.":
            first.turn.interrupt("One.")

    handler.on_piece = interrupt_a
    out = serve(handler, first, ask(b, "Hello. There."))
    # A, cut, is closed at B's first sentence; B goes on.
    assert spoken(out, {"A": a, "B": b}) == ["A: One.", "B: Hello.", "A: end", "B: There.", "B: end"]
    assert first.turn.error is None and first.turn.interrupted
    assert a.chat.messages()[-1] == {"role": "assistant", "content": "One."}  # what was heard


# --- the packaged 0.5B on llama.cpp ---------------------------------------------------------


@pytest.mark.slow
def test_llama_cpp_goes_on_with_a_paused_reply_from_its_own_cache():
    """A reply paused for another conversation and resumed from its saved KV
    cache goes on with its own words, as it does alone (the 0.5B repeating
    three sentences: no near-ties for greedy decoding to tip either way; a
    reply resumed on the other conversation's cache says something else);
    the other conversation's reply is spoken before its second sentence."""
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    def questions() -> tuple[Transcript, Transcript]:
        a, b = Session(), Session()
        b.settings.instructions = "You are a helpful assistant. Answer in one short sentence."
        return (
            Transcript(f"Repeat after me, word for word: {' '.join(REPEATED)}", "en", Turn(session=a)),
            Transcript("What is the capital of France?", "en", Turn(session=b)),
        )

    handler = make_handler(LlamaCppLanguageModelHandler, model_name="qwen2.5-0.5b")
    alone = [[o.text for o in serve(handler, message) if isinstance(o, LLMSentence)] for message in questions()]
    assert alone[0] == REPEATED and len(alone[1]) == 1
    first, second = questions()
    out = serve(handler, first, second)
    together = spoken(out, {"A": first.turn.session, "B": second.turn.session})
    assert together == [
        f"A: {REPEATED[0]}",
        f"B: {alone[1][0]}",
        "B: end",
        *(f"A: {s}" for s in REPEATED[1:]),
        "A: end",
    ]
    assert first.turn.session.chat.messages()[-1]["content"] == " ".join(REPEATED)


REPEATED = ["The sky is blue on a clear day.", "Grass is green in the spring.", "Snow is white and cold in winter."]
