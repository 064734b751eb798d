"""One realtime WebSocket: one conversation, translated to and from the pipeline.

Client events become pipeline messages stamped with this connection's
`Session` (audio, commits, typed messages, function outputs, response
requests) and go into the shared VAD queue, in order.  The session's
tools and tool_choice are checked here (connections/realtime/tools_config.py)
and kept in its settings; a call the reply makes comes back through
`function_call` and leaves as a `function_call` output item.  What the stages report about the session
(speech started, transcript ready, reply text, reply done) comes back
through the `SessionObserver` methods, and the reply audio from the realtime
sink (`response_audio`), all from the stage threads; it leaves as the API's
server events, in order, through one writer task.

A client that reads too slowly has its outgoing events queue up to a bound,
then it is disconnected: it never holds up the stage threads, which serve
every other conversation too.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from connections.realtime import events as ev
from connections.realtime.audio import FORMAT_RATES, AudioFormatError, InputAudio, OutputAudio, decode_base64
from connections.realtime.language import apply_transcription, reply_metadata
from connections.realtime.tools_config import MAX_OUTPUT_BYTES, checked_tool_choice, checked_tools
from conversation.eagerness import semantic_turn_detection
from conversation.playback import ListenerClock
from conversation.session import Session, SessionObserver, SessionSettings, TurnDetection
from conversation.turn import Turn
from utils.messages import (
    AudioChunk,
    ClearInput,
    CommitInput,
    CreateResponse,
    SessionUpdated,
    ToolResult,
    TTSAudio,
    UserText,
)

logger = logging.getLogger(__name__)

MAX_OUTBOX_EVENTS = 4000  # ~ minutes of audio deltas: a client this far behind is not reading
SEND_TIMEOUT_S = 10.0  # one event the client's TCP window has not taken for this long: it stopped reading
DELTA_SECONDS = 0.2  # reply audio goes out in deltas of at most this long
PACE_STEP_S = 0.01  # how often a paced delta looks again whether it may go
# Events that answer the client or say what happens now, not part of a
# reply: they go out at once, ahead of a paced reply's audio still waiting
# its time.  speech_started over a reply is an interruption (a backchannel is
# never announced): the client must stop playing before the end of the
# reply's events, which were queued when all of its audio had been made.
# The errors that answer a client event are sent the same way (`_fail`).
OUT_OF_BAND = frozenset({
    "session.updated", "conversation.item.retrieved", "conversation.item.deleted",
    "conversation.item.truncated", "input_audio_buffer.cleared", "input_audio_buffer.speech_started",
})  # fmt: skip


@dataclass
class RealtimeOptions:
    """Server-wide settings every connection starts from."""

    model: str
    pipeline_rate: int
    defaults: TurnDetection  # the pipeline's VAD settings, as the API shows them
    barge_in: bool = True
    interrupt_min_speech_ms: int = 200
    resume_false_interruption: bool = True  # a backchannel or a noise over the reply is never announced
    false_interruption_timeout_ms: int = 1500
    max_message_bytes: int = 4 * 1024 * 1024
    server_tools: list[dict[str, Any]] = field(default_factory=list)  # offered to sessions that declare none
    # Reply audio goes out at most this far ahead of the client's playback
    # (0: as fast as it is made, as the real API does).  Paced, a sound over
    # the reply silences the client within the lead while it is judged
    # (nothing more is sent), and a backchannel or a noise lets it play on.
    playback_lead_ms: int = 250


@dataclass(frozen=True)
class PacedDelta:
    """One reply audio delta, held until the client's playback is within
    the lead of its start."""

    text: str
    turn: Turn
    samples: int
    sample_rate: int


@dataclass(frozen=True)
class SentMark:
    """Not an event: the writer marks `turn` with `mark` once everything
    queued before this has gone to the client (paced audio included)."""

    turn: Turn
    mark: str


@dataclass
class ResponseState:
    """The API's view of one turn's reply while it goes out: its spoken (or
    text) message, opened with its first words, and the function calls it
    made, in output order."""

    response_id: str
    audio: bool
    item_id: str | None = None  # the message item, once the reply says something
    encoder: OutputAudio | None = None
    text: list[str] = field(default_factory=list)
    last_sentence: str | None = None
    calls: list[Any] = field(default_factory=list)  # the function_call items, completed


class RealtimeConnection(SessionObserver):
    def __init__(
        self,
        send_text: Any,
        loop: asyncio.AbstractEventLoop,
        pipeline_in: queue.Queue,
        options: RealtimeOptions,
    ) -> None:
        self._send_text = send_text
        self.loop = loop
        self.pipeline_in = pipeline_in
        self.options = options
        # A sound over the reply is announced (speech_started) only once the
        # VAD has judged it an interruption, so a backchannel never stops the
        # client.  Paced, the reply is held back meanwhile (pause_playback):
        # the client runs out of what it has within the lead and falls silent;
        # unpaced, it plays its own buffer on until the verdict.
        self.clock = ListenerClock(options.playback_lead_ms / 1000.0)  # the client's playback, as sent
        settings = SessionSettings(
            barge_in=options.barge_in,
            interrupt_min_speech_ms=options.interrupt_min_speech_ms,
            resume_false_interruption=options.resume_false_interruption,
            false_interruption_timeout_ms=options.false_interruption_timeout_ms,
            pause_playback=self.clock.lead_s > 0,
            audio_gaps_are_silence=True,
            server_tools=list(options.server_tools),
        )
        self.session = Session(settings=settings, observer=self)
        self.input_format = "audio/pcm"
        self.output_format = "audio/pcm"
        self.input = InputAudio(self.input_format, options.pipeline_rate)
        self.outbox: asyncio.Queue[str | PacedDelta | SentMark | None] = asyncio.Queue()
        self._out_of_band: collections.deque[str] = collections.deque()  # OUT_OF_BAND events, sent first
        self._gone = False  # a send timed out: the writer stops
        self.closed = False
        self._lock = threading.Lock()
        self._items: list[str] = []  # conversation order, for previous_item_id
        # Each item as the client last saw it (conversation.item.added / .done),
        # for conversation.item.retrieve: the Agents SDK rebuilds its history
        # from those after a transcription or a truncation.
        self._item_models: dict[str, Any] = {}
        self._item_models_lock = threading.Lock()  # emit() is called with self._lock held
        self._speech_item: str | None = None
        self._captioned = ""  # the speech item's words already sent as transcription deltas
        self._user_items: dict[int, str] = {}
        self._early_transcripts: OrderedDict[int, Turn] = OrderedDict()
        self._responses: dict[int, ResponseState] = {}
        self._assistant_turns: OrderedDict[str, Turn] = OrderedDict()
        self._requested: set[int] = set()  # turns answering a response.create
        self._calls: OrderedDict[str, str] = OrderedDict()  # call_id -> its item id, the calls this client may answer

    # --- sending (any thread) ----------------------------------------------------------
    def emit(self, event: BaseModel, out_of_band: bool = False) -> None:
        if event.type in ("conversation.item.added", "conversation.item.done"):
            with self._item_models_lock:
                self._item_models[event.item.id] = event.item
        self._post(ev.dump(event), out_of_band or event.type in OUT_OF_BAND)

    def mark_when_sent(self, turn: Turn, mark: str) -> None:
        """Mark `turn` with `mark` once all that is queued for the client now has been sent."""
        self._post(SentMark(turn, mark))

    def _post(self, entry: str | PacedDelta | SentMark, out_of_band: bool = False) -> None:
        try:
            self.loop.call_soon_threadsafe(self._enqueue, entry, out_of_band)
        except RuntimeError:  # the loop is closed: the client is gone
            pass

    def _enqueue(self, text: str | PacedDelta | SentMark | None, out_of_band: bool = False) -> None:
        if self.closed:
            return
        if out_of_band and isinstance(text, str) and not self.outbox.empty():
            self._out_of_band.append(text)  # the writer sends it before what waits in the outbox
            return
        if self.outbox.qsize() >= MAX_OUTBOX_EVENTS:
            logger.warning(
                "realtime %s: client not reading (%d events queued); disconnecting",
                self.session.id,
                self.outbox.qsize(),
            )
            self.closed = True
            self.outbox.put_nowait(None)
            return
        self.outbox.put_nowait(text)

    async def writer(self) -> None:
        """Send queued events in order until the connection ends, or until a
        send waits `SEND_TIMEOUT_S` on a client that stopped reading.  A
        paced audio delta waits its time, holding back what follows it."""
        while not self._gone:
            await self._send_out_of_band()
            entry = await self.outbox.get()
            if entry is None:
                return
            if isinstance(entry, SentMark):
                entry.turn.mark(entry.mark)
                continue
            if isinstance(entry, PacedDelta) and not await self._delta_due(entry):
                continue  # the reply was cut or withdrawn: the rest of its audio is for nobody
            if not await self._send(entry.text if isinstance(entry, PacedDelta) else entry):
                return
            if isinstance(entry, PacedDelta):
                self.clock.sent(entry.turn.playback, entry.samples, entry.sample_rate)

    async def _send(self, text: str) -> bool:
        """Send one event; False (and the writer stops) when the client has not
        taken it within `SEND_TIMEOUT_S`."""
        try:
            await asyncio.wait_for(self._send_text(text), SEND_TIMEOUT_S)
            return True
        except asyncio.TimeoutError:
            logger.warning("realtime %s: client read nothing for %.0f s; disconnecting", self.session.id,
                           SEND_TIMEOUT_S)  # fmt: skip
            self._gone = True
            return False

    async def _send_out_of_band(self) -> None:
        while self._out_of_band and not self._gone:
            await self._send(self._out_of_band.popleft())

    async def _delta_due(self, delta: PacedDelta) -> bool:
        """Wait until the client's playback is within the lead of the delta's
        start and its reply is not held back, sending out-of-band events
        meanwhile; False when the reply was cut meanwhile (interrupted, also
        after all of it was made, cancelled, its session closed)."""
        playback = delta.turn.playback
        while not (delta.turn.stale or delta.turn.interrupted or self._gone):
            await self._send_out_of_band()
            wait = self.clock.wait_s()
            if wait <= 0 and not playback.paused():
                return True
            await asyncio.sleep(min(wait, PACE_STEP_S) if wait > 0 else PACE_STEP_S)
        return False

    def start(self) -> None:
        self.emit(ev.session_created(self._session_model()))

    def close(self) -> None:
        """The client left: its work in flight is dropped at once."""
        self.closed = True
        self.session.close()
        self.outbox.put_nowait(None)

    def _previous_item(self) -> str | None:
        return self._items[-1] if self._items else None

    def _session_model(self) -> Any:
        return ev.session_model(
            self.session.settings, self.options.model, self.input_format, self.output_format, self.options.defaults
        )

    # --- client events (event loop thread) ---------------------------------------------
    def receive(self, message: str | bytes) -> None:
        """One WebSocket message; a bad one gets an `error` event, never a close."""
        if len(message) > self.options.max_message_bytes:
            self.emit(
                ev.error(
                    "message_too_large",
                    f"message of {len(message)} bytes; the limit is {self.options.max_message_bytes}",
                ),
                out_of_band=True,
            )
            return
        try:
            event, refused = ev.parse_client_event(message)
            if refused:  # a session.update with fields its types refuse: the rest of it applies
                self.on_session_update(event, refused)
                return
            handler = getattr(self, "on_" + event.type.replace(".", "_"))
            handler(event)
        except ev.ClientEventError as error:  # answers the client now, not after a paced reply's audio
            self.emit(ev.error(error.code, str(error), error.event_id, error.param), out_of_band=True)

    def _fail(self, event: Any, code: str, message: str, param: str | None = None) -> None:
        raise ev.ClientEventError(code, message, getattr(event, "event_id", None), param)

    def on_session_update(self, event: Any, refused: list[ev.ClientEventError] | None = None) -> None:
        """Each field applies on its own: one the server cannot take (or the
        SDK's types refused: `refused`, taken out already) is named in one
        `error` event (all such fields together), and the rest of the update
        applies; `session.updated` then shows the session as it is."""
        request = event.session
        if getattr(request, "type", None) != "realtime":
            self._fail(event, "unsupported", "only 'realtime' sessions are served (no transcription sessions)")
        problems: list[ev.ClientEventError] = list(refused or [])
        for apply in (
            self._update_output_modalities,
            self._update_instructions,
            self._update_tools,
            self._update_unsupported,
            self._update_audio,
        ):
            try:
                apply(event, request)
            except ev.ClientEventError as problem:
                problems.append(problem)
        if problems:
            first = problems[0]
            message = "; ".join(str(problem) for problem in problems)
            if len(problems) > 1 or (refused and request.model_fields_set - {"type"}):
                message += " (the rest of the session.update applied)"
            self.emit(ev.error(first.code, message, getattr(event, "event_id", None), first.param), out_of_band=True)
        if request.model_fields_set & {"instructions", "tools"}:
            self.pipeline_in.put(SessionUpdated(self.session))  # the LLM prepares their prompt
        self.emit(ev.session_updated(self._session_model()))

    def _update_output_modalities(self, event: Any, request: Any) -> None:
        if request.output_modalities is None:
            return
        if request.output_modalities not in (["audio"], ["text"]):
            self._fail(
                event, "invalid_value", "output_modalities must be ['audio'] or ['text']", "session.output_modalities"
            )
        self.session.settings.audio_output = request.output_modalities == ["audio"]

    def _update_instructions(self, event: Any, request: Any) -> None:
        if "instructions" in request.model_fields_set:
            self.session.settings.instructions = request.instructions or None

    def _update_tools(self, event: Any, request: Any) -> None:
        """`tools` (function tools, checked) and `tool_choice` (a named
        function must be among the session's tools, these or the ones before)."""
        settings = self.session.settings
        tools = settings.tools
        if "tools" in request.model_fields_set:
            tools = checked_tools(event, request.tools, "session.tools")
        choice = settings.tool_choice
        if "tool_choice" in request.model_fields_set and request.tool_choice is not None:
            choice = checked_tool_choice(event, request.tool_choice, tools, "session.tool_choice")
        elif "tools" in request.model_fields_set and isinstance(choice, dict):
            choice = checked_tool_choice(event, choice, tools, "session.tools")  # the chosen one must stay
        settings.tools, settings.tool_choice = tools, choice

    def _update_unsupported(self, event: Any, request: Any) -> None:
        """Fields this server does not have, when a client asks for them."""
        named = []  # `tracing` is accepted (the Agents SDK sends it): this server keeps no traces
        if request.prompt is not None:
            named.append("prompt")
        if request.include:
            named.append("include")
        audio_input = request.audio.input if request.audio is not None else None
        if audio_input is not None and audio_input.noise_reduction is not None:
            named.append("audio.input.noise_reduction")
        audio_output = request.audio.output if request.audio is not None else None
        if audio_output is not None and audio_output.speed not in (None, 1, 1.0):
            named.append("audio.output.speed")
        if named:
            fields = ", ".join(f"session.{name}" for name in named)
            self._fail(event, "unsupported", f"not supported by this server: {fields}", f"session.{named[0]}")

    def _update_audio(self, event: Any, request: Any) -> None:
        audio = request.audio
        if audio is not None and audio.input is not None:
            self._update_input(event, audio.input)
        if audio is not None and audio.output is not None and audio.output.format is not None:
            self.output_format = self._format_name(event, audio.output.format, "session.audio.output.format")

    def _update_input(self, event: Any, audio_input: Any) -> None:
        settings = self.session.settings
        if audio_input.format is not None:
            name = self._format_name(event, audio_input.format, "session.audio.input.format")
            if name != self.input_format:
                self.input_format, self.input = name, InputAudio(name, self.options.pipeline_rate)
        if "transcription" in audio_input.model_fields_set:
            problem = apply_transcription(settings, audio_input.transcription)
            if problem is not None:
                self._fail(event, "invalid_value", problem[1], problem[0])
        if "turn_detection" not in audio_input.model_fields_set:
            return
        wanted = audio_input.turn_detection
        create = True if wanted is None or wanted.create_response is None else wanted.create_response
        interrupt = True if wanted is None or wanted.interrupt_response is None else wanted.interrupt_response
        if wanted is None:
            settings.turn_detection = None
        elif wanted.type == "semantic_vad":
            settings.turn_detection = semantic_turn_detection(wanted.eagerness or "auto", create, interrupt)
        else:
            if wanted.threshold is not None and not 0.0 < wanted.threshold < 1.0:
                self._fail(
                    event,
                    "invalid_value",
                    "threshold must be between 0 and 1",
                    "session.audio.input.turn_detection.threshold",
                )
            settings.turn_detection = TurnDetection(
                threshold=wanted.threshold,
                silence_duration_ms=wanted.silence_duration_ms,
                prefix_padding_ms=wanted.prefix_padding_ms,
                create_response=create,
                interrupt_response=interrupt,
            )
        self.session.drop_state("vad")  # the VAD follows the new settings from the next chunk on

    def _format_name(self, event: Any, audio_format: Any, param: str) -> str:
        name = getattr(audio_format, "type", None) or "audio/pcm"
        if name not in FORMAT_RATES:
            self._fail(event, "invalid_value", f"unsupported audio format {name!r}", param)
        rate = getattr(audio_format, "rate", None)
        if name == "audio/pcm" and rate not in (None, 24000):
            self._fail(event, "invalid_value", "audio/pcm is 24000 Hz only", param)
        return name

    def on_input_audio_buffer_append(self, event: Any) -> None:
        try:
            samples = self.input.decode(decode_base64(event.audio))
        except AudioFormatError as error:
            self._fail(event, "invalid_audio", str(error), "audio")
        if samples.size:
            self.pipeline_in.put(
                AudioChunk(samples=samples, sample_rate=self.options.pipeline_rate, session=self.session)
            )

    def on_input_audio_buffer_commit(self, event: Any) -> None:
        self.pipeline_in.put(CommitInput(session=self.session))

    def on_input_audio_buffer_clear(self, event: Any) -> None:
        self.pipeline_in.put(ClearInput(session=self.session))

    def on_conversation_item_create(self, event: Any) -> None:
        item = event.item
        if getattr(item, "type", None) == "function_call_output":
            self._add_function_output(event, item)
            return
        if getattr(item, "type", None) != "message" or getattr(item, "role", None) != "user":
            self._fail(
                event,
                "unsupported",
                "only user messages and function_call_output items can be added (no system or assistant "
                "messages, no function_call items)",
                "item",
            )
        texts = [part.text for part in item.content if part.type == "input_text" and part.text]
        if len(texts) != len(item.content) or not texts:
            self._fail(
                event, "unsupported", "user messages must hold input_text parts (no audio or images)", "item.content"
            )
        item_id = item.id or ev.new_id("item")
        turn = Turn(session=self.session, respond=False)
        self.pipeline_in.put(UserText(text=" ".join(texts), turn=turn))
        self._added(ev.user_item(item_id, text=" ".join(texts)))

    def _add_function_output(self, event: Any, item: Any) -> None:
        """A function's output: it joins the conversation after its call;
        the client's `response.create` then has the model answer from it."""
        with self._lock:
            known = item.call_id in self._calls
        if not known:
            self._fail(
                event,
                "invalid_value",
                f"no function call with call_id {item.call_id!r} in this conversation",
                "item.call_id",
            )
        size = len(item.output.encode("utf-8"))
        if size > MAX_OUTPUT_BYTES:
            self._fail(
                event,
                "invalid_value",
                f"function_call_output of {size} bytes; the limit is {MAX_OUTPUT_BYTES} (64 KB)",
                "item.output",
            )
        self.pipeline_in.put(ToolResult(item.call_id, item.output, Turn(session=self.session, respond=False)))
        self._added(ev.function_call_output_item(item.id or ev.new_id("item"), item.call_id, item.output))

    def _added(self, item: Any) -> None:
        """A client's item joins the conversation: added, then done."""
        with self._lock:
            previous = self._previous_item()
            self._items.append(item.id)
        self.emit(ev.item_added(item, previous))
        self.emit(ev.item_done(item, previous))

    def _active_turn(self) -> Turn | None:
        turn = self.session.active_turn
        if turn is None or turn.stale or "last_audio_out" in turn.marks:
            return None
        return turn

    def on_response_create(self, event: Any) -> None:
        """Answer the conversation now, with the response's own `tools` and
        `tool_choice` when it gives them (checked like the session's)."""
        if self._active_turn() is not None:
            self._fail(
                event,
                "conversation_already_has_active_response",
                "a response is in progress; cancel it first (response.cancel)",
            )
        wanted = event.response
        tools = choice = None
        if wanted is not None and "tools" in wanted.model_fields_set and wanted.tools is not None:
            tools = checked_tools(event, wanted.tools, "response.tools")
        if wanted is not None and wanted.tool_choice is not None:
            declared = tools if tools is not None else self.session.settings.tools or self.session.settings.server_tools
            choice = checked_tool_choice(event, wanted.tool_choice, declared, "response.tool_choice")
        turn = Turn(session=self.session, tools=tools, tool_choice=choice)
        turn.confirm()
        with self._lock:
            self._requested.add(turn.turn_id)
        self.session.active_turn = turn
        self.pipeline_in.put(CreateResponse(turn=turn))

    def on_response_cancel(self, event: Any) -> None:
        turn = self._active_turn()
        if turn is None:
            self._fail(event, "response_cancel_not_active", "there is no response in progress to cancel")
        self.cancel_response(turn, "client_cancelled")

    def cancel_response(self, turn: Turn, reason: str | None) -> None:
        """Stop the reply of `turn` as an interruption does: the stages drop
        it, and its `response.done` (status "cancelled", `reason`) goes out
        as soon as they have."""
        turn.cancel_reason = reason
        if self.session.interrupt_reply() is None and turn.withdraw_unheard():
            # Nothing of it went out yet: the API still owes the client its
            # response.created and response.done.
            with self._lock:
                requested = turn.turn_id in self._requested
            if requested:
                state = self._response(turn)
                self._finish_response(turn, state, "cancelled", "client_cancelled")

    def on_conversation_item_truncate(self, event: Any) -> None:
        with self._lock:
            turn = self._assistant_turns.get(event.item_id)
        if turn is None:
            self._fail(event, "item_not_found", f"no assistant audio item {event.item_id!r}", "item_id")
        if event.content_index != 0:
            self._fail(event, "invalid_value", "assistant messages have one content part (index 0)", "content_index")
        playback = turn.playback
        samples = int(event.audio_end_ms * playback.sample_rate / 1000)
        if event.audio_end_ms < 0 or samples > playback.sent_samples + playback.sample_rate // 100:
            self._fail(
                event,
                "invalid_value",
                f"audio_end_ms {event.audio_end_ms} is beyond the item's {playback.sent_s * 1000:.0f} ms of audio",
                "audio_end_ms",
            )
        heard = playback.heard_text(samples)
        if self._active_turn() is turn:
            turn.interrupt(heard)  # still being made or sent: it stops
        self.session.record_heard(turn, heard)
        self._truncate_item_model(event.item_id, heard)
        self.emit(ev.truncated(event.item_id, 0, event.audio_end_ms))

    def _truncate_item_model(self, item_id: str, heard: str) -> None:
        """A truncated item keeps only the words heard, as the chat does."""
        with self._item_models_lock:
            item = self._item_models.get(item_id)
            if item is None or not item.content:
                return
            part = item.content[0]
            field = "transcript" if part.type == "output_audio" else "text"
            content = [part.model_copy(update={field: heard}), *item.content[1:]]
            self._item_models[item_id] = item.model_copy(update={"content": content, "status": "incomplete"})

    def on_conversation_item_delete(self, event: Any) -> None:
        self._fail(event, "unsupported", "deleting conversation items is not supported by this server")

    def on_conversation_item_retrieve(self, event: Any) -> None:
        """The item as the conversation holds it now (without audio data: this
        server keeps no copy of it), e.g. a user item with its transcript."""
        with self._lock:
            known = event.item_id in self._items
        with self._item_models_lock:
            item = self._item_models.get(event.item_id) if known else None
        if item is None:
            self._fail(event, "item_not_found", f"no item {event.item_id!r} in this conversation", "item_id")
        self.emit(ev.item_retrieved(item))

    def on_output_audio_buffer_clear(self, event: Any) -> None:
        self._fail(
            event,
            "unsupported",
            "output_audio_buffer.clear is for WebRTC and SIP clients; over WebSocket "
            "stop playback on the client and send conversation.item.truncate",
        )

    # --- pipeline events (stage threads) -------------------------------------------------
    def speech_started(self, session: Session, audio_ms: int) -> None:
        item_id = ev.new_id("item")
        with self._lock:
            self._speech_item, self._captioned = item_id, ""
        self.emit(ev.speech_started(item_id, audio_ms))

    def transcript_progress(self, session: Session, text: str) -> None:
        """Live captions: the words that settled while the user speaks go out
        as `conversation.item.input_audio_transcription.delta` on the item
        that `speech_started` announced (before it is committed: the client
        knows its id from that event).  Only growth is sent; a revision that
        does not extend what was sent waits for the completed transcript."""
        with self._lock:
            item_id = self._speech_item
            if item_id is None or text == self._captioned or not text.startswith(self._captioned):
                return
            delta, self._captioned = text[len(self._captioned) :], text
        self.emit(ev.transcription_delta(item_id, delta))

    def speech_stopped(self, session: Session, audio_ms: int) -> None:
        with self._lock:
            item_id = self._speech_item or ev.new_id("item")
        self.emit(ev.speech_stopped(item_id, audio_ms))

    def input_committed(self, turn: Turn) -> None:
        # The VAD thread commits the item and the STT thread completes it: the
        # events are queued under the lock that publishes the item's id, so
        # its `item.added` always goes out before its `item.done`.
        with self._lock:
            item_id, self._speech_item = self._speech_item or ev.new_id("item"), None
            self._user_items[turn.turn_id] = item_id
            previous = self._previous_item()
            self._items.append(item_id)
            early = self._early_transcripts.pop(turn.turn_id, None)
            self.emit(ev.committed(item_id, previous))
            self.emit(ev.item_added(ev.user_item(item_id, transcript=None), previous))
            if early is not None:
                self._transcribed(early, item_id, previous)

    def transcript_ready(self, turn: Turn) -> None:
        with self._lock:
            item_id = self._user_items.get(turn.turn_id)
            if item_id is None:  # a speculative turn, not committed (yet)
                self._early_transcripts[turn.turn_id] = turn
                while len(self._early_transcripts) > 16:
                    self._early_transcripts.popitem(last=False)
                return
            index = self._items.index(item_id) if item_id in self._items else 0
            previous = self._items[index - 1] if index > 0 else None
            self._transcribed(turn, item_id, previous)

    def _transcribed(self, turn: Turn, item_id: str, previous: str | None) -> None:
        self.emit(ev.transcription_completed(item_id, turn.transcript, turn.speech_duration_s, turn.language))
        self.emit(ev.item_done(ev.user_item(item_id, transcript=turn.transcript), previous))

    def turn_withdrawn(self, turn: Turn) -> None:
        with self._lock:
            item_id = self._user_items.pop(turn.turn_id, None)
            if item_id in self._items:
                self._items.remove(item_id)
        if item_id is not None:
            self.emit(ev.item_deleted(item_id))

    def input_cleared(self, session: Session) -> None:
        self.emit(ev.cleared())

    def error(self, session: Session, code: str, message: str) -> None:
        self.emit(ev.error(code, message))

    def _response(self, turn: Turn) -> ResponseState:
        """The turn's response, announced to the client on its first output."""
        with self._lock:
            state = self._responses.get(turn.turn_id)
            if state is not None:
                return state
            state = ResponseState(ev.new_id("resp"), self.session.settings.audio_output)
            self._responses[turn.turn_id] = state
        self.emit(
            ev.response_created(
                ev.response_model(state.response_id, "in_progress", state.audio, [], self.output_format)
            )
        )
        return state

    def _message(self, turn: Turn) -> ResponseState:
        """The turn's response with its assistant message open (the reply's words)."""
        state = self._response(turn)
        with self._lock:
            if state.item_id is not None:
                return state
            state.item_id = ev.new_id("item")
            previous = self._previous_item()
            self._items.append(state.item_id)
            self._assistant_turns[state.item_id] = turn
            while len(self._assistant_turns) > 32:
                self._assistant_turns.popitem(last=False)
        item = ev.assistant_item(state.item_id, state.audio)
        self.emit(ev.output_item_added(state.response_id, item))
        self.emit(ev.item_added(item, previous))
        self.emit(ev.content_part_added(state.response_id, state.item_id, state.audio))
        return state

    def function_call(self, turn: Turn, call_id: str, name: str, arguments: str) -> None:
        """The reply calls a function the client declared: a `function_call`
        output item, its arguments (whole, in one delta), and the item done;
        `response.done` lists it.  The client answers with a
        `function_call_output` item for `call_id` and `response.create`."""
        state = self._response(turn)
        item_id = ev.new_id("item")
        with self._lock:
            index = len(state.calls) + (state.item_id is not None)
            previous = self._previous_item()
            self._items.append(item_id)
            self._calls[call_id] = item_id
            while len(self._calls) > 64:
                self._calls.popitem(last=False)
        rid = state.response_id
        self.emit(ev.output_item_added(rid, ev.function_call_item(item_id, call_id, name, "", "in_progress"), index))
        self.emit(ev.item_added(ev.function_call_item(item_id, call_id, name, "", "in_progress"), previous))
        self.emit(ev.function_call_arguments_delta(rid, item_id, index, call_id, arguments))
        self.emit(ev.function_call_arguments_done(rid, item_id, index, call_id, name, arguments))
        done = ev.function_call_item(item_id, call_id, name, arguments, "completed")
        state.calls.append(done)
        self.emit(ev.output_item_done(rid, done, index))
        self.emit(ev.item_done(done, previous))

    def response_audio(self, audio: TTSAudio) -> None:
        """One piece of a reply's audio (the sink's `output`): the reply's
        transcript delta when a new sentence starts, then the audio encoded
        in the session's output format, in deltas of `DELTA_SECONDS`."""
        state = self._message(audio.turn)
        if state.encoder is None:
            state.encoder = OutputAudio(self.output_format, audio.sample_rate)
        if audio.text != state.last_sentence:
            state.last_sentence = audio.text
            delta = (" " if state.text else "") + audio.text
            state.text.append(audio.text)
            self.emit(ev.transcript_delta(state.response_id, state.item_id, delta))
        step = max(1, int(DELTA_SECONDS * audio.sample_rate))
        for start in range(0, len(audio.samples), step):
            piece = audio.samples[start : start + step]
            payload = state.encoder.encode(piece)
            if not payload:
                continue
            event = ev.audio_delta(state.response_id, state.item_id, base64.b64encode(payload).decode())
            if self.clock.lead_s > 0:
                self._post(PacedDelta(ev.dump(event), audio.turn, len(piece), audio.sample_rate))
            else:
                self.emit(event)

    def response_text(self, turn: Turn, text: str) -> None:
        state = self._message(turn)
        delta = (" " if state.text else "") + text
        state.text.append(text)
        self.emit(ev.text_delta(state.response_id, state.item_id, delta))

    def response_done(self, turn: Turn) -> None:
        with self._lock:
            state = self._responses.pop(turn.turn_id, None)
            requested = turn.turn_id in self._requested
            self._requested.discard(turn.turn_id)
        if turn.error:
            self.emit(ev.error("server_error", f"the reply failed: {turn.error}"))
        if state is None and not (requested or turn.transcript):
            return  # noise the VAD took for speech: nothing was said, nothing to answer
        if state is None or (state.item_id is None and not state.calls):
            state = self._message(turn)  # a reply with no words still has its (empty) message
            with self._lock:
                self._responses.pop(turn.turn_id, None)
        if turn.error:
            self._finish_response(turn, state, "failed", None, turn.error)
        elif turn.interrupted:
            self._finish_response(turn, state, "cancelled", turn.cancel_reason)
        else:
            self._finish_response(turn, state, "completed", None)

    def _finish_response(
        self, turn: Turn, state: ResponseState, status: str, reason: str | None, error: str | None = None
    ) -> None:
        rid, iid, audio = state.response_id, state.item_id, state.audio
        text = " ".join(state.text)
        output: list[Any] = []
        if iid is not None:
            if audio:
                tail = state.encoder.flush() if state.encoder is not None and not turn.interrupted else b""
                if tail:
                    self.emit(ev.audio_delta(rid, iid, base64.b64encode(tail).decode()))
                self.emit(ev.audio_done(rid, iid))
                self.emit(ev.transcript_done(rid, iid, text))
            else:
                self.emit(ev.text_done(rid, iid, text))
            self.emit(ev.content_part_done(rid, iid, audio, text))
            item = ev.assistant_item(iid, audio, text, "completed" if status == "completed" else "incomplete")
            self.emit(ev.output_item_done(rid, item))
            with self._lock:
                index = self._items.index(iid) if iid in self._items else 0
                previous = self._items[index - 1] if index > 0 else None
            self.emit(ev.item_done(item, previous))
            output.append(item)
        output.extend(state.calls)
        words = len(text.split()) + sum(len(call.arguments) // 4 for call in state.calls)
        self.emit(
            ev.response_done(
                ev.response_model(
                    rid,
                    status,
                    audio,
                    output,
                    self.output_format,
                    reason,
                    error,
                    output_tokens=round(words * 1.3),
                    input_tokens=round(len(turn.transcript.split()) * 1.3),
                    metadata=reply_metadata(turn),
                )
            )
        )
