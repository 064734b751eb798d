"""End of turn by evidence: the words, the voice, the speaker's habits and the silence, in one decision.

The decision alone first (no models), then the real VAD, the real STT and
Smart Turn (where installed) on real speech, the early transcript handed to
the VAD as soon as it exists, as in benchmarks/turn_detection.py: a finished
question ends sooner than the previous default's 300 ms of silence, and a
question with a pause before its last word is one turn.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conversation.session import Session, SessionSettings, TurnDetection
from tests.conftest import make_handler
from VAD.end_of_turn import EAGERNESS, EndOfTurn, PauseHabits, Words, words_evidence

RATE = 16000


# --- the decision, no models ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "words"),
    [("What is the capital of France?", Words.QUESTION), ("Go forward ten meters.", Words.STATEMENT),
     ("Press one", Words.NO_END_MARK), ("What is the capital city of", Words.UNFINISHED),
     ("What is the capital of?", Words.UNFINISHED), ("I want to go to the...", Words.UNFINISHED),
     ("", Words.UNKNOWN), (None, Words.UNKNOWN)],
)  # fmt: skip
def test_what_the_early_transcript_says(text, words):
    assert words_evidence(text, "en") is words


@pytest.mark.parametrize("language", ["nl", "cs", "nl-auto"])
def test_in_another_language_an_end_mark_says_nothing_and_a_trailing_comma_still_does(language):
    """The marks' weights were fitted on English with its dangling words: a
    Dutch line cut at a breath ("Ik denk dat we.") is no finished statement."""
    assert words_evidence("Ik denk dat we.", language) is Words.NO_END_MARK
    assert words_evidence("Waar is het station?", language) is Words.NO_END_MARK
    assert words_evidence("Ik denk dat we,", language) is Words.UNFINISHED
    assert words_evidence("Go forward ten meters.", None) is Words.STATEMENT  # unknown: English's fit


def test_the_words_move_the_silence_needed_both_ways():
    decision, habits = EndOfTurn("auto"), PauseHabits()
    needed = {words: decision.silence_needed_ms(words, None, habits) for words in Words}
    assert needed[Words.STATEMENT] < needed[Words.QUESTION] < needed[Words.UNKNOWN] < needed[Words.UNFINISHED]
    assert 250 <= needed[Words.UNKNOWN] <= 320 < needed[Words.UNFINISHED]  # no evidence: about the old fixed silence


def test_a_finished_sounding_voice_ends_sooner_an_unfinished_one_later():
    decision, habits = EndOfTurn("auto"), PauseHabits()
    finished = decision.silence_needed_ms(Words.UNKNOWN, 0.95, habits)
    unfinished = decision.silence_needed_ms(Words.UNKNOWN, 0.05, habits)
    assert finished < decision.silence_needed_ms(Words.UNKNOWN, None, habits) < unfinished


def test_eagerness_orders_the_waits_and_caps_them():
    habits = PauseHabits()
    for words in Words:
        low, medium, high = (EndOfTurn(e).silence_needed_ms(words, None, habits) for e in ("low", "medium", "high"))
        assert low >= medium >= high
        assert low <= EAGERNESS["low"][1]
    assert EndOfTurn("auto") == EndOfTurn("auto") and EAGERNESS["auto"] == EAGERNESS["medium"]
    with pytest.raises(ValueError, match="eagerness"):
        EndOfTurn("eager")


def test_a_speaker_who_pauses_long_inside_turns_is_waited_for_longer():
    decision, usual, hesitant = EndOfTurn("auto"), PauseHabits(), PauseHabits()
    for pause in (600, 750, 900, 650, 800, 700):
        hesitant.observe(pause)
    brisk = PauseHabits()
    for pause in (90, 100, 120, 80, 110, 95):
        brisk.observe(pause)
    waits = [decision.silence_needed_ms(Words.QUESTION, None, habits) for habits in (brisk, usual, hesitant)]
    assert waits[0] < waits[1] < waits[2]
    assert hesitant.outlasting(600) > usual.outlasting(600)


# --- the real VAD on real speech -----------------------------------------------------------------
def ended_after(vad, stt, audio: np.ndarray) -> list[tuple[float, str]]:
    """Feed `audio` (then a second of silence) to the VAD, transcribing each
    early segment at once; (silence waited ms, words) of each turn it ends."""
    from utils.messages import AudioChunk, SpeechSegment

    padded = np.concatenate([audio, np.zeros(RATE, np.int16)])
    turns = []
    for start in range(0, len(padded), 512):
        for segment in vad.process(AudioChunk(samples=padded[start : start + 512])):
            if not isinstance(segment, SpeechSegment):
                continue
            if segment.provisional and segment.turn is not None:
                segment.turn.transcript, _ = stt.transcribe(segment.audio)
                segment.turn.language = "en"
                segment.turn.mark("transcript_ready")
            elif not segment.provisional:
                turns.append(segment.turn)
    return [(turn.silence_waited_ms, turn.transcript) for turn in turns if not turn.withdrawn]


def a_vad(turn_detector: str = "evidence", **detection):
    from VAD.vad_handler import VADHandler

    session = Session(SessionSettings(turn_detection=TurnDetection(**detection)))
    return make_handler(
        VADHandler, should_listen=threading.Event(), session=session, speculative_stt_ms=50,
        speculative_reply=True, turn_detector=turn_detector,
    )  # fmt: skip


def test_a_finished_question_is_answered_after_less_silence_than_before(stt_handler, tts_handler):
    question = np.concatenate([np.zeros(RATE // 4, np.int16), *tts_handler.synthesize("What is the capital of Peru?")])
    before = ended_after(a_vad("silence"), stt_handler, question)
    now = ended_after(a_vad(), stt_handler, question)
    assert len(before) == len(now) == 1, (before, now)
    assert before[0][0] >= 300  # the previous default: 300 ms of silence, to the next 32 ms window
    assert now[0][0] < before[0][0] - 50, (now, before)
    # A client that asks for a fixed silence (server_vad's silence_duration_ms) gets it.
    fixed = ended_after(a_vad(silence_duration_ms=500), stt_handler, question)
    assert fixed[0][0] >= 500


def test_a_pause_before_the_last_word_is_one_turn(stt_handler, tts_handler):
    """'What is the capital city of' ... 700 ms ... 'France?': the words dangle, so the pause is waited out."""
    question = np.concatenate([
        np.zeros(RATE // 4, np.int16), *tts_handler.synthesize("What is the capital city of"),
        np.zeros(int(0.7 * RATE), np.int16), *tts_handler.synthesize("France?"),
    ])  # fmt: skip
    turns = ended_after(a_vad(), stt_handler, question)
    assert len(turns) == 1, turns
    assert "france" in turns[0][1].lower() and "capital" in turns[0][1].lower()
