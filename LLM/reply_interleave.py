"""Several conversations' replies on one language model: first sentences before anyone's later ones.

One LLM stage answers every session, one token at a time.  Left to answer
one whole reply after another, four sessions asking at once wait for each
other's entire replies: the fourth hears its first word after three full
answers.  Instead the stage pauses a reply at a sentence it has just handed
to the TTS when another conversation's question is waiting, answers that
one up to its own first sentence, and then goes back to whichever paused
reply's listener will run out of audio first.  A reply's later sentences
are needed only once its earlier ones have played, so they can wait.

The model keeps one conversation in its cache at a time; a backend that
computes as it is pulled (llama.cpp) saves the paused reply's cache when it
pauses and puts it back when it resumes (`LanguageModelHandler.pause_state`
/ `resume_state`), a few milliseconds each, instead of reading its prompt
again.

Messages of a conversation whose reply is paused stay queued until that
reply ends: a conversation's turns are answered in order, each after the
one before it is in the chat.  This module is the policy alone (which reply
pauses, which resumes, which messages wait), tested without a model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from conversation.turn import Turn
from LLM.answer_loop import audio_ahead_s
from utils.messages import EndOfStream, LLMSentence

# A paused reply takes the model from the one being written only when its
# listener runs dry this much sooner: switching back and forth costs a cache
# save and load each time, and a reply whose audio is due at about the same
# time is as urgent as the one being written.
SWITCH_MARGIN_S = 0.75


@dataclass
class PausedReply:
    """A reply whose generator stopped at a sentence it handed on, with the
    model state the backend saved to go on from there."""

    turn: Turn
    outputs: Iterator[Any]
    state: Any = None


def runs_dry_at(turn: Turn, now: float) -> float:
    """When the reply's listener runs out of its audio: what was sent and
    not yet played, then the words handed to the TTS and not yet made into
    audio (`audio_ahead_s`)."""
    return now + audio_ahead_s(turn.playback, turn.words_released, now)


def most_urgent(paused: Iterable[PausedReply], now: float | None = None) -> PausedReply | None:
    """The paused reply whose listener runs out of audio first (a withdrawn
    or interrupted one first of all: it only has to end)."""
    now = time.perf_counter() if now is None else now
    return min(paused, key=lambda reply: (not reply.turn.stale, runs_dry_at(reply.turn, now)), default=None)


def should_pause(
    output: Any,
    turn: Turn | None,
    paused: Iterable[PausedReply],
    question_waiting: bool,
    now: float | None = None,
    cover_s: float = 0.0,
) -> bool:
    """Whether to pause the reply being written right after it handed on
    `output`: only at one of its sentences (the model is between tokens, the
    sentence is with the TTS); at once when a paused reply was cut (its
    client waits for its end); else only once its listener has at least `cover_s`
    of audio ahead (what was sent and not yet played, and the words with the
    TTS: a reply paused with less runs dry while the others are written),
    and only when another conversation's question waits for its first
    sentence, or a paused reply's listener runs dry `SWITCH_MARGIN_S`
    sooner than this one's."""
    if not isinstance(output, LLMSentence) or turn is None or turn.stale:
        return False
    paused = list(paused)
    if any(reply.turn.stale for reply in paused):
        return True  # a paused reply was interrupted or withdrawn: it only has to end, and its client waits for that
    now = time.perf_counter() if now is None else now
    ahead = runs_dry_at(turn, now)
    if ahead - now < cover_s:
        return False
    if question_waiting:
        return True
    other = most_urgent(paused, now)
    return other is not None and runs_dry_at(other.turn, now) < ahead - SWITCH_MARGIN_S


def waits_for_paused(message: Any, paused: Iterable[PausedReply], besides: Turn | None = None) -> bool:
    """Whether `message` must stay queued until the paused replies (and the
    reply `besides`, being written) end: it belongs to one of their
    conversations (its turns are answered in order; a reset of it too), or
    it is the input's end."""
    busy = [reply.turn.session for reply in paused] + ([besides.session] if besides is not None else [])
    if not busy:
        return False
    if isinstance(message, EndOfStream):
        return True
    session = getattr(message, "session", None)
    if session is None:
        turn = getattr(message, "turn", None)
        session = turn.session if turn is not None else None
    return any(busy_session is session for busy_session in busy)
