"""One user turn: the user's utterance, the assistant's answer, and its fate.

A `Turn` rides along with every pipeline message that belongs to it; each
stage stamps its timings on it (`mark`), so the sink can log the whole
turn's latency in one line (`metrics`).  It is also the small state machine
the stages share: speculative until the VAD confirms it, then answered,
interrupted or cancelled (`stale`).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from conversation.playback import PlaybackLog


class TurnSession(Protocol):
    """What a turn asks of the conversation it belongs to (a
    `conversation.session.Session`, which holds its turns)."""

    id: str

    @property
    def closed(self) -> bool: ...

    def next_turn_number(self) -> int: ...


_turn_ids = itertools.count(1)


@dataclass
class Turn:
    """One user utterance and the assistant's answer to it.

    Timestamps are `time.perf_counter()` values keyed by event name; each
    stage writes only its own keys, so sharing the object across threads is
    safe without a lock.

    Cancellation is one flag that every stage checks between steps
    (`stale`): a speculative turn that speech proved wrong, a reply the user
    interrupted, or a session that closed.  The few decisions that race
    between threads (the sink starting playback against the VAD withdrawing
    the turn) take the turn's lock.
    """

    # Unique in the process, for the stages' bookkeeping.  Users see
    # `number` instead: a speculative turn gets it when the VAD confirms it,
    # so a cancelled one leaves no gap in a conversation's numbering.
    turn_id: int = field(default_factory=lambda: next(_turn_ids))
    speech_duration_s: float = 0.0
    transcript: str = ""
    language: str | None = None  # the user's (the STT's decision)
    reply_language: str | None = None  # the language the reply was asked in and spoken in
    voice: str | None = None  # what spoke the reply (a Piper voice, espeak-ng:<code>, ...)
    reply_sentences: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    session: TurnSession | None = field(default=None, repr=False)
    # A speculative turn is opened during a pause, before the VAD has decided
    # that the user finished: the stages answer it at once, and the sink holds
    # its audio until the VAD confirms it (or drops it if speech resumed).
    speculative: bool = False
    cancelled: bool = False
    # Answer the user's words at once (the realtime API's create_response);
    # False: they only join the conversation, a later response.create answers.
    respond: bool = True
    # The user spoke over the reply: only `heard_reply` of it reached them.
    interrupted: bool = False
    heard_reply: str | None = None
    # The realtime API's reasons: "turn_detected", "client_cancelled"; None: the server stopped it.
    cancel_reason: str | None = "turn_detected"
    number: int = 0  # the turn number users see (confirmed turns of the session)
    playback: PlaybackLog = field(default_factory=PlaybackLog, repr=False, compare=False)
    speculations_cancelled: int = 0  # early replies started during this turn's pauses, then dropped
    backchannels: int = 0  # sounds over the reply judged a backchannel or a noise: it went on
    silence_waited_ms: float | None = None  # silence after the last word before the VAD ended the turn (audio time)
    # What one response may call, when it says so itself (the realtime API's
    # response.create `tools` / `tool_choice`); None: the session's.
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    calls_made: int = 0  # functions this turn has called (the server's own run within it)
    llm_tokens: int = 0  # text pieces (llama.cpp: tokens) the LLM wrote for the reply
    words_released: int = 0  # words of the reply handed to the TTS so far (made into audio or not)
    created_at: float = field(default_factory=time.perf_counter, repr=False, compare=False)
    _decided: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.speculative:
            self._decided.set()

    @property
    def stale(self) -> bool:
        """True when nothing more of this turn should be played: its
        conversation has ended, it was a speculation that speech proved wrong,
        or the user interrupted it."""
        return self.cancelled or (self.session is not None and self.session.closed)

    @property
    def withdrawn(self) -> bool:
        """Cancelled before the user heard anything: it leaves no trace."""
        return self.stale and not self.interrupted

    @property
    def decided(self) -> bool:
        return self._decided.is_set()

    def confirm(self) -> None:
        """The VAD saw the end of the turn: a speculative turn becomes real."""
        self.mark("end_of_turn")
        if not self.number:
            self.number = self.session.next_turn_number() if self.session is not None else self.turn_id
        self._decided.set()

    def cancel(self) -> None:
        """Speech resumed after the pause: drop everything done for this turn."""
        self.cancelled = True
        self._decided.set()

    def begin_playback(self) -> bool:
        """The sink is about to put this turn's audio out; False if the turn
        was withdrawn first (then none of it may be played)."""
        with self._lock:
            if self.stale:
                return False
            self.mark("first_audio_out")
            return True

    def withdraw_unheard(self) -> bool:
        """Cancel the turn if the user has heard none of its reply yet (the
        speaker went on after the pause); False once playback has begun."""
        with self._lock:
            if "first_audio_out" in self.marks or "last_audio_out" in self.marks or self.stale:
                return False
            self.cancel()
            return True

    def interrupt(self, heard: str, when: float | None = None) -> bool:
        """The user spoke over the reply after hearing `heard` of it; False
        when the turn was already over or cancelled."""
        with self._lock:
            if self.stale or "last_audio_out" in self.marks:
                return False
            self.interrupted = True
            self.heard_reply = heard
            self.mark("interrupt", when)
            self.cancel()
            return True

    def wait_until_decided(self, stop_event: threading.Event, poll_s: float = 0.02) -> bool:
        """Block until the VAD confirms or cancels the turn; True if it is to
        be answered.  Gives up when the pipeline stops or the client leaves."""
        while not self._decided.wait(poll_s):
            if stop_event.is_set() or self.stale:
                return False
        return not self.stale

    def audio_due(self) -> float:
        """When this turn's listener needs its next reply audio (a perf_counter
        time): before any was sent, since the turn began (overdue: the oldest
        turn's first audio before anyone's later sentences); then when the
        audio sent so far has played out.  The CPU baton lends the cores by it
        (utils/cpu_baton.py)."""
        plays_until = self.playback.plays_until
        return self.created_at if plays_until is None else plays_until

    def count_llm_piece(self, when: float | None = None) -> None:
        """The LLM wrote one more piece of the reply (llama.cpp: one token):
        for the turn's `llm_tokens`, `llm_first_token_ms` and `llm_tokens_per_s`."""
        when = time.perf_counter() if when is None else when
        self.llm_tokens += 1
        self.mark("llm_first_token", when)
        self.marks["llm_last_token"] = when

    def llm_tokens_per_s(self) -> float | None:
        """The LLM's rate over the reply, from its first piece to its last."""
        span = self.elapsed_ms("llm_first_token", "llm_last_token")
        if not span or self.llm_tokens < 2:
            return None
        return round((self.llm_tokens - 1) / (span / 1000.0), 2)

    def mark(self, event: str, when: float | None = None) -> None:
        """Record the first time `event` happened (later calls are ignored)."""
        self.marks.setdefault(event, time.perf_counter() if when is None else when)

    def elapsed_ms(self, start: str, end: str) -> float | None:
        if start not in self.marks or end not in self.marks:
            return None
        return round((self.marks[end] - self.marks[start]) * 1000.0, 1)

    @property
    def reply(self) -> str:
        return " ".join(self.reply_sentences)

    def metrics(self) -> dict[str, object]:
        """The per-turn latency record that the sinks log as one JSON line.

        `speech_end` is when the chunk holding the last voiced sample arrived,
        `end_of_turn` when the VAD decided the user had finished (that gap is
        the silence the VAD waits for).  `stt_ms` is the transcription's own
        time; with speculative STT it may have started before the end of turn,
        so `end_of_turn_to_transcript_ms` (when the STT handed the transcript
        on) can be shorter than `stt_ms`.
        """
        span = self.elapsed_ms
        return {
            "turn": self.number or self.turn_id,
            "turn_id": self.turn_id,
            "session": self.session.id if self.session is not None else None,
            "speech_s": round(self.speech_duration_s, 2),
            "language": self.language,
            "reply_language": self.reply_language,
            "voice": self.voice,
            "vad_wait_ms": span("speech_end", "end_of_turn"),
            "stt_ms": span("stt_start", "stt_end"),
            "llm_first_sentence_ms": span("llm_start", "llm_first_sentence"),
            "llm_total_ms": span("llm_start", "llm_end"),
            "llm_first_token_ms": span("llm_start", "llm_first_token"),
            "llm_tokens": self.llm_tokens,
            "llm_tokens_per_s": self.llm_tokens_per_s(),
            "tts_first_audio_ms": span("tts_start", "tts_first_audio"),
            "end_of_turn_to_transcript_ms": span("end_of_turn", "transcript_ready"),
            "end_of_turn_to_first_sentence_ms": span("end_of_turn", "llm_first_sentence"),
            "end_of_turn_to_tool_call_ms": span("end_of_turn", "tool_call"),
            "end_of_turn_to_first_audio_ms": span("end_of_turn", "first_audio_out"),
            "speech_end_to_first_audio_ms": span("speech_end", "first_audio_out"),
            "end_of_turn_to_last_audio_ms": span("end_of_turn", "last_audio_out"),
            "interrupted": self.interrupted,
            "heard_reply": self.heard_reply,
            "interrupt_to_silence_ms": span("interrupt", "audio_stopped"),
            "speculations_cancelled": self.speculations_cancelled,
            "audio_stalls": len(self.playback.stalls),
            "audio_stalled_ms": round(sum(self.playback.stalls) * 1000.0, 1),
            "silence_waited_ms": self.silence_waited_ms,
            "backchannels": self.backchannels,
            "paused_ms": round(self.playback.paused_s * 1000.0, 1),
            "longest_pause_ms": round(self.playback.longest_pause_s * 1000.0, 1),
            "error": self.error,
            "transcript": self.transcript,
            "reply": self.reply,
        }

    def metrics_json(self) -> str:
        return json.dumps({"event": "turn_metrics", **self.metrics()})
