"""A microphone that stays open while the assistant speaks, without hearing it.

Local mode and `listen_and_play.py --barge_in` play the replies through a
speaker next to the microphone.  `FullDuplexMic.process(mic, played)` gives
the mic block with the reply's echo removed (WebRTC AEC3 behind a delay line
that follows the sound card's echo delay, audio/echo_delay.py), so the user
can talk over the assistant and the assistant never answers itself.

Where the canceller cannot be trusted, echo must not reach the VAD:
- until the canceller has heard `warmup_s` of the assistant's voice (it
  learns the room from it: the first second of the first reply leaks), the
  mic is muted while echo may be in it (as in half duplex);
- after the sound card missed a deadline, the mic audio is held back for
  `hold_s`.  An underrun puts silence into the speaker's stream and every
  later echo arrives later; the delay line and the canceller need a moment
  to follow (measured through PulseAudio on a loaded machine: up to a second
  of echo 30-70 dB above the settled residual).  If the echo path did move
  (the delay line moved, or mic audio that piled up had to be caught up),
  the held audio that may hold echo is replaced by silence of the same
  length; the rest (the path held, or the reply had already fallen silent)
  is passed on late but whole, so a user who spoke then is still heard;
- when a reply begins after a silence: the echo path may have moved while
  nothing played and nothing could measure it (a sound server's latency
  moves under load, and so does ours after an underrun), and the reply's
  first echo would reach the VAD until the delay tracker measures the new
  delay (on a loaded core: once 2 s after the reply resumed from a stall,
  and the leak had interrupted it).  The mic audio is held from the reply's
  first sound until the tracker has measured the echo (within a second for
  delays up to half a second on a clean path): the path held, and it is
  passed on whole at once; it moved, and what may hold echo is replaced by
  silence.  No measurement while the reply's echo lasted (at most
  `3 * hold_s`; the user talking over the echo blurs it) is no evidence of
  a move, and the audio goes on whole, late: the user's words are kept.
Muting costs the user the chance to interrupt in those moments; letting a
leak through would make the assistant interrupt itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from audio.echo_cancel import create_echo_canceller
from audio.echo_delay import DelayCompensatedEchoCanceller
from audio.echo_leak import EchoLeakMeter

logger = logging.getLogger(__name__)

AUDIBLE = 100  # int16 peak: quieter played audio leaves no echo worth cancelling


@dataclass
class DuplexStats:
    """What the mic went through, for logs and benchmarks."""

    hiccups: int = 0
    muted_s: float = 0.0  # mic audio replaced by silence
    held_s: float = 0.0  # mic audio held back, then passed on whole


class FullDuplexMic:
    def __init__(
        self,
        sample_rate: int,
        engine: str = "auto",
        warmup_s: float = 2.0,
        hold_s: float = 1.5,
        echo_tail_s: float = 0.3,
        path_may_move: bool = True,
    ) -> None:
        """`engine`: see audio/echo_cancel.py (raises EchoCancellerUnavailable
        when none is installed); `echo_tail_s`: how long a room rings on
        after the echo's delay; `path_may_move`: False for a simulated room
        (listen_and_play.py's --simulate_echo_db) whose delay is fixed, so a
        reply's start needs no hold against a move nobody saw."""
        self.sample_rate = sample_rate
        self.canceller = DelayCompensatedEchoCanceller(create_echo_canceller(sample_rate, engine))
        self.engine = self.canceller.engine
        self.leak_meter = EchoLeakMeter(sample_rate, latency_s=self.canceller.latency_samples / sample_rate)
        self.warmup_s = warmup_s
        self.hold_s = hold_s
        self.echo_tail_s = echo_tail_s
        self.heard_reply_s = 0.0  # played audio the canceller has learned from
        self.last_played_at = float("-inf")
        self.hold_until = float("-inf")
        self.path_may_move = path_may_move
        self.max_hold_s = 3 * hold_s  # longer (hiccup after hiccup): let time go on, as silence
        self._moves = 0
        self._measurements = 0
        # A reply began after a silence: held until the echo is measured, or this time at most.
        self._measured_by = float("-inf")
        self._held: list[tuple[np.ndarray, bool]] = []  # (cleaned block, echo possible in it)
        self._held_is_echo = False
        self.stats = DuplexStats()

    def hiccup(self, now: float | None = None) -> None:
        """The sound card missed a deadline (underrun, overflow, a late read):
        the echo may have moved."""
        now = time.perf_counter() if now is None else now
        if self.echo_possible(now) and now >= self.hold_until:
            logger.debug("sound card hiccup: mic audio held back while the echo canceller re-settles")
        self.hold_until = max(self.hold_until, now + self.hold_s)
        self.stats.hiccups += 1

    def echo_possible(self, now: float) -> bool:
        delay = self.canceller.delay_s or 0.5
        return now < self.last_played_at + delay + self.echo_tail_s

    @property
    def echo_leak(self) -> float | None:
        """How much of the cleaned audio of the last quarter second is still
        the played audio (audio/echo_leak.py): the canceller's failures, seen
        from outside."""
        return self.leak_meter.leak

    def warmed_up(self) -> bool:
        return self.heard_reply_s >= self.warmup_s

    def process(self, mic: np.ndarray, played: np.ndarray, now: float | None = None) -> np.ndarray:
        """The mic audio without the echo of `played` (what the speaker put
        out meanwhile): usually the block itself, cleaned; silence while the
        canceller is still learning; nothing while a hiccup's audio is held
        back, and all of it (or silence as long) once the hold is over."""
        now = time.perf_counter() if now is None else now
        audible = played.size > 0 and int(np.abs(played).max()) > AUDIBLE
        if audible and self.path_may_move and not self.echo_possible(now):
            self._await_measurement(now)
        cleaned = self.canceller.process(mic, played)
        self.leak_meter.push(cleaned, played, self.canceller.delay_s)
        if audible:
            self.last_played_at = now
            self.heard_reply_s += played.size / self.sample_rate
        if self.canceller.measurements != self._measurements:
            # The echo was measured: held audio goes on whole now (unless a hiccup's own hold
            # goes on), or, where the measurement moved the path, as `_path_moved` says.
            self._measurements = self.canceller.measurements
            self._measured_by = float("-inf")
        if self.canceller.moves != self._moves:
            self._moves = self.canceller.moves
            self._path_moved(now)
        return self._gate(cleaned, now)

    def _await_measurement(self, now: float) -> None:
        """A reply begins after a silence, on a path that may have moved
        unseen: hold the mic audio until the echo is measured (a move mutes
        what may hold echo, `_path_moved`), for at most `max_hold_s`."""
        self._measured_by = now + self.max_hold_s
        if not self._held:
            self._held_is_echo = False  # a move while nothing was held: the measurement will tell

    def catch_up(self, mic: np.ndarray, now: float | None = None) -> np.ndarray:
        """Mic audio that piled up in the device during a stall: the speaker
        played nothing (it ran dry) while it was recorded, and the echo path
        moved by its length."""
        now = time.perf_counter() if now is None else now
        silence = np.zeros(len(mic), dtype=np.int16)
        cleaned = self.canceller.process(mic, silence)
        self.leak_meter.push(cleaned, silence, self.canceller.delay_s)
        self._path_moved(now)
        return self._gate(cleaned, now)

    def _path_moved(self, now: float) -> None:
        self.hold_until = max(self.hold_until, now + self.hold_s)
        self._held_is_echo = True

    def _gate(self, cleaned: np.ndarray, now: float) -> np.ndarray:
        echo_possible = self.echo_possible(now)
        if echo_possible and not self.warmed_up():
            self.stats.muted_s += len(cleaned) / self.sample_rate
            return np.zeros_like(cleaned)
        held = sum(len(block) for block, _ in self._held)
        awaiting = now < self._measured_by and echo_possible
        if awaiting or (now < self.hold_until and (self._held or echo_possible)):
            if held < self.max_hold_s * self.sample_rate:
                self._held.append((cleaned, echo_possible))
                return cleaned[:0]
            self._held_is_echo = True  # hiccup after hiccup: the path is not to be trusted
        if not self._held:
            return cleaned
        # Held audio goes on now, and any wait for a measurement ends with it.
        # No measurement while the reply's echo lasted (or for `max_hold_s`):
        # no evidence of a move either.  The user talking over the echo
        # blurs it (measured: a question asked as a stalled reply resumed
        # went unmeasured, and muting it left the turn its last 0.5 s).
        self._measured_by = float("-inf")
        released = []
        for block, echo_was_possible in self._held:
            if self._held_is_echo and echo_was_possible:
                self.stats.muted_s += len(block) / self.sample_rate
                released.append(np.zeros_like(block))
            else:  # the path held, or the reply had fallen silent: the user's words go on
                self.stats.held_s += len(block) / self.sample_rate
                released.append(block)
        self._held, self._held_is_echo = [], False
        return np.concatenate([*released, cleaned])
