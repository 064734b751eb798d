"""Typed messages that travel between the pipeline's stages.

Every queue in the pipeline carries one of these dataclasses, never raw tuples
or sentinel byte strings, so a stage can tell at a glance what it received and
pass through what it does not handle.  A `Turn` object rides along with every
message that belongs to a user turn; stages stamp their timings on it so the
sink can log the whole turn's latency in one line.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from utils.playback import PlaybackLog
from utils.session import Session

__all__ = ["Session"]  # re-exported: every message names its conversation

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
    language: str | None = None
    reply_sentences: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    session: Session | None = field(default=None, repr=False)
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
    cancel_reason: str = "turn_detected"  # or "client_cancelled" (the realtime API's reasons)
    number: int = 0  # the turn number users see (confirmed turns of the session)
    playback: PlaybackLog = field(default_factory=PlaybackLog, repr=False, compare=False)
    speculations_cancelled: int = 0  # early replies started during this turn's pauses, then dropped
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
            "vad_wait_ms": span("speech_end", "end_of_turn"),
            "stt_ms": span("stt_start", "stt_end"),
            "llm_first_sentence_ms": span("llm_start", "llm_first_sentence"),
            "llm_total_ms": span("llm_start", "llm_end"),
            "tts_first_audio_ms": span("tts_start", "tts_first_audio"),
            "end_of_turn_to_transcript_ms": span("end_of_turn", "transcript_ready"),
            "end_of_turn_to_first_sentence_ms": span("end_of_turn", "llm_first_sentence"),
            "end_of_turn_to_first_audio_ms": span("end_of_turn", "first_audio_out"),
            "speech_end_to_first_audio_ms": span("speech_end", "first_audio_out"),
            "end_of_turn_to_last_audio_ms": span("end_of_turn", "last_audio_out"),
            "interrupted": self.interrupted,
            "heard_reply": self.heard_reply,
            "interrupt_to_silence_ms": span("interrupt", "audio_stopped"),
            "speculations_cancelled": self.speculations_cancelled,
            "error": self.error,
            "transcript": self.transcript,
            "reply": self.reply,
        }

    def metrics_json(self) -> str:
        return json.dumps({"event": "turn_metrics", **self.metrics()})


@dataclass
class AudioChunk:
    """Raw microphone (or file, or socket) audio: int16 mono samples."""

    samples: np.ndarray
    sample_rate: int = 16000
    received_at: float = field(default_factory=time.perf_counter)
    # Stamped when the audio arrives, so audio still queued when its client
    # leaves can never become a turn of the next client.
    session: Session | None = None


@dataclass
class SpeechSegment:
    """One complete user utterance cut out by the VAD, float32 in [-1, 1].

    A `provisional` segment is sent while the VAD is still waiting for the
    end-of-turn silence, so the STT can start early.  With `turn=None` the
    STT only transcribes it, and reuses that work when the final segment
    (same `speech_key`) ends at the same sample.  With a speculative turn
    the whole reply starts on it; the final segment then carries the same,
    now confirmed, turn and needs no second transcription.
    """

    audio: np.ndarray
    sample_rate: int
    turn: Turn | None
    provisional: bool = False
    speech_key: tuple[int, int] = (0, 0)  # (speech start, last voiced sample) in the stream
    session: Session | None = None


@dataclass
class SpeechProgress:
    """The user's speech so far, sent by the VAD while they are still speaking
    (every `--incremental_stt_ms` of new speech), so the STT can transcribe
    the turn as it goes instead of all at its end.  Float32 in [-1, 1], from
    the same first sample as the turn's `SpeechSegment`; `speech_key` as there.
    It belongs to no turn yet (the turn is opened at the pause), only to its
    conversation.  Stages that do not follow speech pass it on."""

    audio: np.ndarray
    sample_rate: int
    speech_key: tuple[int, int] = (0, 0)
    session: Session | None = None


@dataclass
class Transcript:
    text: str
    language: str | None
    turn: Turn


@dataclass
class PartialTranscript:
    """The stable start of what the user is saying, while they still speak:
    words two transcriptions agreed on, which later audio will not change.
    An LLM may read it ahead (evaluate the conversation's prompt so far), so
    that at the end of the turn only the last words are left.  It answers
    nothing: only a `Transcript` does."""

    text: str
    language: str | None
    speech_key: tuple[int, int] = (0, 0)
    session: Session | None = None


@dataclass
class LLMSentence:
    """One complete sentence of the reply, sent to TTS as soon as it exists."""

    text: str
    language: str | None
    turn: Turn


@dataclass
class TTSAudio:
    """Synthesised speech for one sentence: int16 mono at the output rate."""

    samples: np.ndarray
    sample_rate: int
    text: str
    turn: Turn


@dataclass
class EndOfResponse:
    """The assistant has finished answering `turn` (also sent after a failure).

    It still travels when the user interrupted the turn (`survives_interruption`): the sink
    closes an interrupted turn with it (metrics, response.done cancelled)."""

    turn: Turn
    survives_interruption: ClassVar[bool] = True


@dataclass
class ResetConversation:
    """Control message: forget chat history and partial audio (new client)."""

    session: Session | None = None


@dataclass
class CommitInput:
    """The client says its audio so far is one turn (no server turn detection)."""

    session: Session
    turn: Turn | None = None


@dataclass
class ClearInput:
    """The client drops the audio it sent since the last turn."""

    session: Session


@dataclass
class UserText:
    """A typed user message: joins the conversation; answered when `turn.respond`."""

    text: str
    turn: Turn


@dataclass
class CreateResponse:
    """Answer the conversation as it stands (the client asked for a response)."""

    turn: Turn


@dataclass
class EndOfStream:
    """No more input: each stage flushes what it holds, forwards this, and exits."""


PipelineMessage = (
    AudioChunk
    | SpeechSegment
    | Transcript
    | LLMSentence
    | TTSAudio
    | EndOfResponse
    | ResetConversation
    | EndOfStream
    | CommitInput
    | ClearInput
    | UserText
    | CreateResponse
    | SpeechProgress
    | PartialTranscript
)
