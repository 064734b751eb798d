"""Typed messages that travel between the pipeline's stages.

Every queue in the pipeline carries one of these dataclasses, never raw tuples
or sentinel byte strings, so a stage can tell at a glance what it received and
pass through what it does not handle.  A `Turn` (conversation/turn.py) rides
along with every message that belongs to a user turn; stages stamp their
timings on it so the sink can log the whole turn's latency in one line.
Messages that belong to no turn yet name their conversation (`Session`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from conversation.session import Session
from conversation.turn import Turn


@dataclass
class AudioChunk:
    """Raw microphone (or file, or socket) audio: int16 mono samples."""

    samples: np.ndarray
    sample_rate: int = 16000
    received_at: float = field(default_factory=time.perf_counter)
    # Stamped when the audio arrives, so audio still queued when its client
    # leaves can never become a turn of the next client.
    session: Session | None = None
    # Where the mic's echo canceller could tell (local mode): how much of this
    # audio is still the assistant's own voice (audio/echo_leak.py; 0 to 1,
    # None where unknown).
    echo_leak: float | None = None


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
class Overheard:
    """What the STT heard in a sound over the assistant's reply: filled in by
    the STT thread, read by the VAD's thread once `done` is set."""

    text: str = ""
    likely_speech: bool = True  # False: Whisper's own tests say no speech (its text is a hallucination)
    done: threading.Event = field(default_factory=threading.Event)

    def answer(self, text: str, likely_speech: bool = True) -> None:
        self.text, self.likely_speech = text, likely_speech
        self.done.set()


@dataclass
class OverheardSpeech:
    """A sound heard over the assistant's reply, so far (float32 in [-1, 1]):
    transcribe it now, into `heard`, and hand nothing on.  The VAD judges by
    its words whether it interrupts the reply (VAD/overlap.py).  STT stages
    that cannot (no `hears_overlaps`) never get one."""

    audio: np.ndarray
    sample_rate: int
    heard: Overheard
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
class ToolCall:
    """The assistant calls a function: a turn's output, like a sentence.

    It travels after the sentences said before it (LLM -> TTS -> sink) and
    the sink hands it on: to the client that declared the tool (the realtime
    API's `function_call` item), or, for the server's own tools (`by_server`:
    `--tools`, the built-ins), to the tool worker, whose output comes back
    into the pipeline's input as a `ToolResult` of the same turn."""

    call_id: str
    name: str
    arguments: str  # a JSON object, as text (the API's `arguments`)
    turn: Turn
    by_server: bool = False


@dataclass
class ToolResult:
    """A function's output, back into the conversation it was called in.

    Like a typed message it enters at the pipeline's input and reaches the
    LLM, which adds it to the session's chat and answers when `turn.respond`
    (the server's own tools: the turn that called it goes on; a client's
    output: a later `response.create` answers)."""

    call_id: str
    output: str
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
class SessionUpdated:
    """A client changed its conversation's instructions or tools.  The LLM
    may prepare for them before the next turn asks (llama.cpp evaluates the
    new instructions + tools prompt prefix once, while the user speaks)."""

    session: Session


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
    | ToolCall
    | ToolResult
    | CreateResponse
    | SessionUpdated
    | SpeechProgress
    | PartialTranscript
    | OverheardSpeech
)
