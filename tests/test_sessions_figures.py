"""benchmarks/sessions.py's figures from a client's events, without models:
gaps a listener playing each audio delta as it arrives hears, seconds
stalled, and cross-talk between sessions asking at the same moment."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from benchmarks.sessions import count_sentences, crossed, dry_spells
from connections.realtime.client import RATE, Conversation, Received


def delta(at: float, seconds: float, response_id: str = "resp_1") -> Received:
    pcm = bytes(2 * round(seconds * RATE))
    event = SimpleNamespace(
        type="response.output_audio.delta", response_id=response_id, delta=base64.b64encode(pcm).decode()
    )
    return Received(at, event)


def conversation_of(*events: Received) -> Conversation:
    """A Conversation whose reader has nothing to read: its events are the ones given."""
    conversation = Conversation(connection=[])
    conversation.closed.wait(5)
    conversation.events.extend(events)
    return conversation


def test_a_reply_that_arrives_ahead_of_playback_has_no_gap():
    # 0.5 s of audio every 0.3 s: playback never waits, however late the first delta came.
    conversation = conversation_of(*(delta(10.0 + 0.3 * i, 0.5) for i in range(6)))
    assert dry_spells(conversation.playback("resp_1")) == ([], 0.0)


def test_gaps_are_counted_from_when_playback_runs_dry_not_from_the_last_arrival():
    conversation = conversation_of(
        delta(0.0, 1.0),  # plays 0.0-1.0
        delta(0.5, 1.0),  # queued: plays 1.0-2.0
        delta(2.1, 0.5),  # dry 0.1 s (under 150 ms: not a gap, but stalled): plays 2.1-2.6
        delta(3.0, 0.5),  # dry 0.4 s: a gap; plays 3.0-3.5
        delta(3.2, 0.5, response_id="resp_2"),  # another reply's audio is not this one's
        delta(4.5, 0.2),  # dry 1.0 s: a gap
    )
    gaps, stalled = dry_spells(conversation.playback("resp_1"))
    assert gaps == pytest.approx([0.4, 1.0])
    assert stalled == pytest.approx(0.1 + 0.4 + 1.0)


def test_a_reply_without_audio_has_no_figures():
    assert dry_spells(conversation_of().playback("resp_1")) == ([], 0.0)


def test_cross_talk_is_a_better_match_with_another_sessions_question():
    asked = ["What is the capital of France?", "Tell me a fun fact about octopuses.", "front center"]
    assert crossed("what is the capital of france", asked[0], asked) is None
    assert crossed("tell me a fun fact about octopuses", asked[0], asked) == asked[1]
    # A mishearing of one's own question is not cross-talk.
    assert crossed("what is the capitol of fronts", asked[0], asked) is None
    # "front right" shares a word with "front center", but holds more of its own.
    assert crossed("front right", "front right", [*asked, "front right"]) is None
    # A reply touching another topic by one word of three does not cross...
    reply = "Paris is the capital of France, where octopuses are served."
    assert crossed(reply, asked[0], asked, at_least=1 / 3) is None
    # ...one that answers the other question does.
    reply = "Octopuses have three hearts, a fun fact."
    assert crossed(reply, asked[0], asked, at_least=1 / 3) == asked[1]


def test_sentences_are_counted_at_their_ends():
    assert count_sentences("Sleep at fixed hours. Keep it dark! Why coffee? No screens.") == 4
    assert count_sentences("It costs 2.50 euros") == 0
