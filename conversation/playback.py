"""What of a reply the user has heard: audio sent, mapped back onto its words.

The sink records every piece of reply audio it puts out with the sentence it
speaks.  When the user interrupts, the samples played by then are mapped
back onto those sentences (whole sentences, then the share of the words of
the one cut off), so the chat can remember only what the user heard.

Over a network the server cannot know what was played.  It assumes the
client plays each piece as soon as it arrives and the one before it has
finished: real time from the first sample while audio comes faster than it
plays, and a pause wherever the reply was made slower than real time (a busy
machine), so that such gaps are not counted as heard.  A local sound card
knows: its playback buffer reports every block it hands to the device
(`record_device_playback`), and what was heard is what the device had taken
one output latency ago.

A reply that runs dry mid-answer is a stall: a listener that plays each
piece as it arrives has played everything sent so far and waits more than
`STALL_GAP_S` for the next piece (`stalls`).  It is judged from when the
sink put each piece out, the same in every mode.

The log also holds the reply's pause: while a sound heard over the reply is
judged (a backchannel or a cough resumes the reply, a real interruption stops
it), the sinks that pace the audio hold it back (`paused`).  A pause always
ends by itself at its deadline, so a reply can never stay silent for good.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

# A gap in the reply audio a listener notices as a pause that is not speech.
STALL_GAP_S = 0.15


@dataclass
class PlaybackLog:
    """Reply audio of one turn, in the order it went out."""

    sample_rate: int = 16000
    started_at: float | None = None  # when the first sample went out
    pieces: list[tuple[str, int]] = field(default_factory=list)  # (sentence, samples)
    # When each piece starts playing on a client that plays audio as it comes.
    piece_starts: list[float] = field(default_factory=list)
    # Reported by a local device: samples it has taken, when it finished
    # taking them, and how long a sample takes from there to the speaker.
    device_samples: int | None = None
    device_at: float = 0.0
    device_latency_s: float = 0.0
    # When a listener that plays pieces as they arrive has played all that was
    # sent, and how long it waited, each time it ran dry for over STALL_GAP_S.
    plays_until: float | None = None
    stalls: list[float] = field(default_factory=list)
    # Held back until then at most (a sound over the reply is being judged); None: playing.
    paused_until: float | None = None
    pauses: int = 0  # times the reply was paused and went on
    paused_s: float = 0.0  # how long, all together
    longest_pause_s: float = 0.0
    _paused_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, text: str, samples: int, sample_rate: int, when: float | None = None) -> None:
        when = time.perf_counter() if when is None else when
        with self._lock:
            if self.started_at is None:
                self.started_at = when
                self.sample_rate = sample_rate
            elif sample_rate != self.sample_rate:
                samples = round(samples * self.sample_rate / sample_rate)
            start = when if self.plays_until is None else max(when, self.plays_until)
            if self.plays_until is not None and when - self.plays_until > STALL_GAP_S:
                self.stalls.append(when - self.plays_until)
            self.piece_starts.append(start)
            self.pieces.append((text, samples))
            self.plays_until = start + samples / self.sample_rate

    @property
    def sent_samples(self) -> int:
        with self._lock:
            return sum(samples for _, samples in self.pieces)

    @property
    def sent_s(self) -> float:
        return self.sent_samples / self.sample_rate

    def record_device_playback(self, samples: int, sample_rate: int, when: float, latency_s: float) -> None:
        """A local device began taking `samples` more of this reply (at its
        `sample_rate`, in real time) at `when`."""
        with self._lock:
            finished = when + samples / sample_rate
            if sample_rate != self.sample_rate:
                samples = round(samples * self.sample_rate / sample_rate)
            self.device_samples = (self.device_samples or 0) + samples
            self.device_at, self.device_latency_s = finished, latency_s

    def played_samples(self, now: float | None = None) -> int:
        """Samples the listener has heard by `now`: what the device had taken
        one output latency earlier, or (no device reports) what a client
        playing each piece as it arrived has played."""
        if self.started_at is None:
            return 0
        now = time.perf_counter() if now is None else now
        if self.device_samples is not None:
            not_yet_out = max(0.0, self.device_latency_s - (now - self.device_at)) * self.sample_rate
            return max(0, min(self.sent_samples, int(self.device_samples - not_yet_out)))
        with self._lock:
            played = 0
            for start, (_, samples) in zip(self.piece_starts, self.pieces, strict=True):
                if now <= start:
                    break
                played += min(samples, int((now - start) * self.sample_rate))
            return played

    def playing(self, now: float | None = None) -> bool:
        return self.started_at is not None and self.played_samples(now) < self.sent_samples

    def silent_at(self) -> float:
        """When the last sample taken reaches (or reached) the speaker."""
        if self.device_samples is not None:
            return self.device_at + self.device_latency_s
        return self.plays_until if self.plays_until is not None else (self.started_at or 0.0)

    def pause(self, seconds: float, now: float | None = None) -> None:
        """Hold the rest of the reply back for at most `seconds` (until `resume`)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            if self.paused_until is None:
                self._paused_at = now
            self.paused_until = now + seconds

    def resume(self, now: float | None = None) -> None:
        """Play on from where the reply paused."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            if self.paused_until is None:
                return
            paused = max(0.0, min(now, self.paused_until) - self._paused_at)
            self.pauses += 1
            self.paused_s += paused
            self.longest_pause_s = max(self.longest_pause_s, paused)
            self.paused_until = None

    def paused(self, now: float | None = None) -> bool:
        """Whether the sinks should hold the reply back now; a pause past its
        deadline has ended by itself."""
        until = self.paused_until
        if until is None:
            return False
        if (time.perf_counter() if now is None else now) < until:
            return True
        self.resume(until)
        return False

    def heard_text(self, samples: int) -> str:
        """The words spoken by the first `samples` samples of the reply."""
        with self._lock:
            sentences: list[tuple[str, int]] = []
            for text, count in self.pieces:  # a sentence may come in several pieces
                if sentences and sentences[-1][0] == text:
                    sentences[-1] = (text, sentences[-1][1] + count)
                else:
                    sentences.append((text, count))
        heard: list[str] = []
        left = samples
        for text, count in sentences:
            if left >= count:
                heard.append(text)
                left -= count
                continue
            words = text.split()
            spoken = int(len(words) * left / count) if count else 0
            if spoken:
                heard.append(" ".join(words[:spoken]))
            break
        return " ".join(heard)


class ListenerClock:
    """When a listener that plays each piece it is sent in real time, after
    the one before, will have played it all: the pace of a sender that keeps
    a reply at most `lead_s` ahead of its listener (the socket sender, a
    paced realtime connection), so that the listener falls silent within
    the lead once nothing more is sent."""

    def __init__(self, lead_s: float) -> None:
        self.lead_s = lead_s
        self.played_until = 0.0  # perf_counter time the audio sent so far ends

    def wait_s(self, now: float | None = None) -> float:
        """How long until the next piece may go (0 or less: now)."""
        return self.played_until - (time.perf_counter() if now is None else now) - self.lead_s

    def sent(self, playback: PlaybackLog, samples: int, sample_rate: int, now: float | None = None) -> None:
        """The listener took `samples` more of the reply whose log is
        `playback`: it plays them after what it has (from now if it ran
        out), and what the user heard of the reply follows."""
        starts = max(self.played_until, time.perf_counter() if now is None else now)
        self.played_until = starts + samples / sample_rate
        playback.record_device_playback(samples, sample_rate, starts, latency_s=0.0)
