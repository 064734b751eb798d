"""How a reply is cut for the TTS while it plays: the first piece's floor, and
cuts at a clause when the listener runs low on audio (`--audio_cushion_ms`).
The logic alone, on scripted playback; the real stack plays such replies in
tests/test_conversation.py and tests/test_realtime.py."""

import threading
import time

import pytest

from conversation.chat import Chat
from conversation.playback import PlaybackLog
from conversation.turn import Turn
from LLM.answer_loop import SECONDS_PER_WORD, ReplyPacing, answer_transcript, running_low
from LLM.sentences import SentenceAggregator
from utils.messages import LLMSentence, Transcript

RATE = 16000


def test_a_later_sentence_is_cut_at_its_clause_only_when_hurried():
    hurried = [False]
    aggregator = SentenceAggregator(first_clause_words=4, first_piece_words=4, hurry=lambda: hurried[0])
    assert list(aggregator.push("Paris is the capital of France. It has")) == ["Paris is the capital of France."]
    assert list(aggregator.push(" many museums, old bridges")) == []  # the listener has audio enough
    hurried[0] = True
    assert list(aggregator.push(" and")) == ["It has many museums,"]
    assert list(aggregator.push(" parks,")) == []  # a clause mark counts once the next word starts
    assert list(aggregator.push(" so")) == ["old bridges and parks,"]
    assert list(aggregator.push(" go.")) == []
    assert list(aggregator.flush()) == ["so go."]


def test_a_hurried_cut_keeps_a_few_words_and_never_splits_a_number():
    aggregator = SentenceAggregator(hurry=lambda: True)
    assert list(aggregator.push("Yes. It costs 3,000 dollars, or")) == ["Yes."]  # the first piece has no floor here
    assert list(aggregator.push(" so")) == ["It costs 3,000 dollars,"]


def piece(playback: PlaybackLog, text: str, seconds: float, when: float) -> None:
    playback.add(text, int(seconds * RATE), RATE, when=when)


def test_running_low_counts_the_audio_left_and_the_words_not_yet_spoken():
    playback = PlaybackLog()
    assert not running_low(playback, 5, 1.5, now=0.0)  # nothing played yet: the first piece's own rules
    piece(playback, "Paris is a beautiful city,", 2.0, when=10.0)  # plays until 12.0
    assert not running_low(playback, 5, 1.5, now=10.4)  # 1.6 s left
    assert running_low(playback, 5, 1.5, now=10.6)  # 1.4 s left
    assert not running_low(playback, 5 + 1, 1.5, now=10.6)  # one word more at the TTS: 1.4 + 0.35
    assert running_low(playback, 5, 1.5, now=13.0)  # ran dry already
    assert SECONDS_PER_WORD == 0.35


def spoken(turn: Turn, generate, pacing: ReplyPacing) -> list[str]:
    question = Transcript("Tell me of Paris.", "en", turn)
    out = answer_transcript(question, Chat(), generate, threading.Event(), pacing=pacing)
    return [message.text for message in out if isinstance(message, LLMSentence)]


@pytest.mark.parametrize(
    "cushion_ms,expected",
    [
        (1500, ["Paris is the capital of France.", "It has many museums,", "old bridges and parks."]),
        (0, ["Paris is the capital of France.", "It has many museums, old bridges and parks."]),
    ],
)
def test_a_reply_that_plays_out_faster_than_it_is_written_is_cut_at_its_clauses(cushion_ms, expected):
    """The answer loop asks the turn's playback: here the sink has sent the
    first sentence's audio, 1 s of it, before the second sentence is written,
    so with a cushion the second goes out at its clause mark instead of at
    its end; without one (`--audio_cushion_ms 0`) it stays whole."""
    turn = Turn()

    def generate(messages):
        yield "Paris is the capital of France."
        yield " It has"
        # The sink put the first sentence's audio out (as TTS and sink would).
        piece(turn.playback, "Paris is the capital of France.", 1.0, when=time.perf_counter())
        yield from [" many museums,", " old", " bridges and parks."]

    pacing = ReplyPacing(first_clause_words=4, first_piece_words=4, audio_cushion_ms=cushion_ms)
    assert spoken(turn, generate, pacing) == expected


def test_a_text_only_session_reads_the_reply_as_written_and_a_voiced_one_hears_words():
    """With `output_modalities: ["text"]` the reply was rewritten for a voice
    ("three hundred and ninety-one") though nobody would hear it."""
    from conversation.session import Session, SessionSettings

    def generate(messages):
        yield "17 × 23 = 391."

    pacing = ReplyPacing()
    reading = Turn(session=Session(SessionSettings(audio_output=False)))
    assert spoken(reading, generate, pacing) == ["17 × 23 = 391."]
    (said,) = spoken(Turn(session=Session()), generate, pacing)
    assert "three hundred and ninety-one" in said and "391" not in said
