"""One conversation: the key that every message of a user turn carries.

A server holds many conversations at once (one per realtime WebSocket, one
per socket client over time); the models are loaded once and shared, and the
stage threads tell conversations apart by the `Session` their messages carry.
Everything that belongs to one conversation lives here, in one place: its
settings (system prompt, turn detection, output modalities), its chat
history, the per-stage stream state (the VAD's iterator, the STT's early
transcript), its turn numbers and the turn being answered now.

Closing a session makes every turn of it stale at once: each stage checks
`turn.stale` between steps, so a departed client's work in flight stops
(the LLM at its next token) and nothing of it reaches anybody.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from conversation.chat import Chat
from conversation.turn import Turn

T = TypeVar("T")


@dataclass
class TurnDetection:
    """How the server decides that the user finished (the realtime API's
    `server_vad`); `None` in `SessionSettings` means the client commits."""

    threshold: float | None = None  # None: the pipeline's --thresh
    silence_duration_ms: int | None = None  # None: --min_silence_ms
    prefix_padding_ms: int | None = None  # None: --speech_pad_ms
    create_response: bool = True  # answer each committed turn by itself
    interrupt_response: bool = True  # user speech over a reply cancels it
    # How soon the end of a turn is decided on the evidence of a pause
    # (VAD/end_of_turn.py): "low" waits longer for the speaker to go on, "high"
    # answers sooner, "auto" is "medium"; None: the pipeline's --eagerness.  The
    # realtime API's semantic_vad eagerness maps onto it as it is.  Not used
    # while a fixed silence is asked for (silence_duration_ms, or
    # --turn_detector silence).
    eagerness: str | None = None
    unfinished_silence_ms: int | None = None  # None: --unfinished_silence_ms (the words dangle)
    finished_silence_ms: int | None = None  # None: --finished_silence_ms (Smart Turn hears a finished voice)


@dataclass
class SessionSettings:
    """What a client may change about its own conversation."""

    instructions: str | None = None  # None: the LLM's --lm_init_chat_prompt
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    audio_output: bool = True  # False: text replies only (no TTS)
    barge_in: bool = False  # listen while the assistant speaks; speech over it interrupts
    interrupt_min_speech_ms: int = 200  # the false-interruption guard
    # The language the user speaks (a Whisper code) fixed by the client, or
    # 'auto' to detect it; None: the server's --language.
    language: str | None = None
    # The languages detection may choose from (given, they mean detection
    # even where --language fixes one); None: the server's --languages.
    languages: tuple[str, ...] | None = None
    # A sound over the reply pauses it; a backchannel ("uh-huh", "right") or a
    # noise (a cough, a knock) resumes it within this time, anything else stops
    # it.  False: any speech past the guard stops the reply (the seed's barge-in).
    resume_false_interruption: bool = True
    false_interruption_timeout_ms: int = 1500
    # Whether this session's sink holds the reply back while a sound over it is
    # judged.  Realtime clients play their own buffer: for them the judged sound
    # is simply not announced (`speech_started`) until it is an interruption.
    pause_playback: bool = True
    # Whether audio that stops coming counts as silence: the client streams its
    # own microphone at its own pace and may stop in the middle of speech
    # (realtime: a muted mic, a push-to-talk let go).  The local and socket
    # sources hold or drop audio on purpose (the echo canceller's holds, half
    # duplex) and file mode waits between turns: a gap there is audio held back.
    audio_gaps_are_silence: bool = False
    # Function calling.  `tools`: what the client declared (it runs them; the
    # realtime API's session.tools); `server_tools`: what the server runs
    # itself (--tools, the built-ins), offered when the client declared none.
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"  # "auto", "none", "required" or {"type": "function", "name": ...}
    server_tools: list[dict[str, Any]] = field(default_factory=list)


class SessionObserver:
    """Who hears a session's events as they happen (the realtime connection).

    Stages call these from their own threads; the default does nothing, so
    the file, socket and local modes need no observer.
    """

    def speech_started(self, session: Session, audio_ms: int) -> None: ...

    def speech_stopped(self, session: Session, audio_ms: int) -> None: ...

    def input_committed(self, turn: Turn) -> None: ...

    def input_cleared(self, session: Session) -> None: ...

    def transcript_progress(self, session: Session, text: str) -> None:
        """The user's words that have settled while they are still
        speaking (the whole text so far, not just the new words)."""

    def turn_withdrawn(self, turn: Turn) -> None: ...

    def transcript_ready(self, turn: Turn) -> None: ...

    def response_text(self, turn: Turn, text: str) -> None: ...

    def function_call(self, turn: Turn, call_id: str, name: str, arguments: str) -> None:
        """The reply calls a function the client declared (it runs it)."""

    def response_done(self, turn: Turn) -> None: ...

    def error(self, session: Session, code: str, message: str) -> None: ...


_numbers = itertools.count(1)


class Session:
    """One conversation with one client.

    `state(owner, factory)` gives each stage its own per-session object
    (created on first use, dropped with the session), so stage threads keep
    no per-client dictionaries of their own.
    """

    def __init__(
        self,
        settings: SessionSettings | None = None,
        observer: SessionObserver | None = None,
        session_id: str | None = None,
    ) -> None:
        self.number = next(_numbers)
        self.id = session_id or f"sess_{uuid.uuid4().hex[:20]}"
        self.settings = settings or SessionSettings()
        self.observer = observer or SessionObserver()
        self.chat = Chat()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        self._turn_numbers = itertools.count(1)
        self.active_turn: Turn | None = None  # the turn being answered or heard now

    def __repr__(self) -> str:
        return f"Session({self.id}{', closed' if self.closed else ''})"

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """The client left: every turn of it becomes stale, its state is dropped."""
        self._closed.set()
        turn = self.active_turn
        if turn is not None:
            turn.cancel()
        with self._lock:
            self._state.clear()

    def state(self, owner: str, factory: Callable[[], T]) -> T:
        """This session's state for one stage, created by `factory` on first use."""
        with self._lock:
            if owner not in self._state:
                self._state[owner] = factory()
            return self._state[owner]

    def drop_state(self, owner: str) -> None:
        with self._lock:
            self._state.pop(owner, None)

    def next_turn_number(self) -> int:
        """Turn numbers users see: only confirmed turns count."""
        return next(self._turn_numbers)

    def interrupt_reply(self, now: float | None = None) -> Turn | None:
        """Stop the reply where the user is now: the turn is cancelled (every
        stage drops it) and the chat keeps only the words already heard.

        A reply whose audio has all been sent but is still playing on the
        client's side is cut in the chat too.  Returns the interrupted turn,
        or None when nothing audible was going on.
        """
        turn = self.active_turn
        if turn is None or "first_audio_out" not in turn.marks:
            return None
        now = time.perf_counter() if now is None else now
        heard = turn.playback.heard_text(turn.playback.played_samples(now))
        if turn.interrupt(heard, now) or (not turn.stale and turn.playback.playing(now)):
            self.record_heard(turn, heard)
            return turn
        return None

    def audible_reply(self, now: float | None = None) -> Turn | None:
        """The turn whose reply the user may be hearing now (being played, or
        all sent and still playing on the client's side), else None."""
        turn = self.active_turn
        if turn is None or turn.stale or "first_audio_out" not in turn.marks:
            return None
        if "last_audio_out" in turn.marks and not turn.playback.playing(now):
            return None
        return turn

    def pause_reply(self, seconds: float) -> Turn | None:
        """Hold the audible reply back while a sound over it is judged (at most
        `seconds`); returns the turn, or None when nothing was audible."""
        turn = self.audible_reply()
        if turn is not None and self.settings.pause_playback:
            turn.playback.pause(seconds)
        return turn

    def resume_reply(self, turn: Turn) -> None:
        """The sound over `turn`'s reply was a backchannel or a noise: the reply
        goes on from where it paused, whole, in the chat too."""
        turn.playback.resume()
        turn.backchannels += 1

    def record_heard(self, turn: Turn, heard: str) -> None:
        """The user heard `heard` of `turn`'s reply and no more (they spoke
        over it, or their client says where it stopped playing): the turn's
        metrics say so and the chat keeps only those words."""
        turn.interrupted, turn.heard_reply = True, heard
        self.chat.record_heard(turn.turn_id, heard)
