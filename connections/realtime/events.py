"""The realtime API's events, typed by the `openai` SDK's own models.

Client events are parsed with the SDK's `RealtimeClientEvent` union, so what
the server accepts is exactly what the SDK sends.  Server events are built
from the SDK's server-event models and serialised with every declared field,
so a client that reads any field the SDK declares finds it (the SDK does not
validate what it receives: a missing field would break a client only when
read).
"""

from __future__ import annotations

import copy
import json
import re
import typing
import uuid
from typing import Any

from openai.types.audio.transcription_language import TranscriptionLanguage
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemDeletedEvent,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemTruncatedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeClientEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeResponse,
    RealtimeResponseStatus,
    RealtimeResponseUsage,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.audio_transcription import AudioTranscription
from openai.types.realtime.realtime_audio_formats import AudioPCM, AudioPCMA, AudioPCMU
from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad, ServerVad
from openai.types.realtime.realtime_server_event import ConversationItemRetrieved
from pydantic import BaseModel, ValidationError

from conversation.session import SessionSettings, TurnDetection
from utils.metrics import METRICS

# Each client event type -> the SDK model that types it.
CLIENT_EVENTS: dict[str, type[BaseModel]] = {
    model.model_fields["type"].annotation.__args__[0]: model
    for model in typing.get_args(typing.get_args(RealtimeClientEvent)[0])
}


class ClientEventError(ValueError):
    """A client event the server cannot take: answered with an `error` event."""

    def __init__(self, code: str, message: str, event_id: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.event_id = event_id
        self.param = param


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


def parse_client_event(text: str | bytes) -> tuple[Any, list[ClientEventError]]:
    """One WebSocket message -> the SDK's typed client event, and the
    session fields a `session.update` had that its types refuse (taken out,
    so that the rest applies; empty for every other event)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ClientEventError("invalid_json", f"message is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ClientEventError("invalid_event", "an event must be a JSON object")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data.get("type")
    if kind not in CLIENT_EVENTS:
        raise ClientEventError("unknown_event_type", f"unknown event type {kind!r}", event_id, "type")
    try:
        return CLIENT_EVENTS[kind].model_validate(data), []
    except ValidationError as error:
        salvaged = salvage_session_update(data, event_id) if kind == "session.update" else None
        if salvaged is not None:
            return salvaged
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise ClientEventError("invalid_value", f"{kind}: {where}: {first['msg']}", event_id, where) from None


def salvage_session_update(
    data: dict[str, Any], event_id: str | None
) -> tuple[Any, list[ClientEventError]] | None:
    """A `session.update` applies field by field: the update without the
    values the SDK's types refuse, each taken out as narrowly as it can be
    (`audio.input.turn_detection.eagerness`, not the whole `audio` with its
    formats and language), and an error naming each; None when the fault is
    not in the session's fields."""
    session = data.get("session")
    if not isinstance(session, dict) or session.get("type") != "realtime":
        return None
    session = copy.deepcopy(session)
    refused: list[ClientEventError] = []
    for _ in range(MAX_REFUSED_FIELDS):
        try:
            RealtimeSessionCreateRequest.model_validate(session)
            break
        except ValidationError as error:
            path, message = refusal(error)
            removed = remove_value(session, path)
            if not removed or removed == ["type"]:
                return None
            where = "session." + ".".join(map(str, path))
            if removed != path:
                message += f" (session.{'.'.join(map(str, removed))} not applied)"
            refused.append(ClientEventError("invalid_value", f"{where}: {message}", event_id, where))
    else:
        return None
    try:
        return CLIENT_EVENTS["session.update"].model_validate({**data, "session": session}), refused
    except ValidationError:
        return None


MAX_REFUSED_FIELDS = 16


def refusal(error: ValidationError) -> tuple[list[str | int], str]:
    """The first of pydantic's complaints that is about what the client
    sent: a union's members whose `type` is not the one sent are left out
    (a "semantic_vad" with a wrong eagerness is not "not a server_vad"), and
    so are the members' names in the path."""
    problems = error.errors()
    mismatched = [p["loc"][:-1] for p in problems if len(p["loc"]) > 1 and p["loc"][-1] == "type"
                  and is_union_member(p["loc"][-2])]  # fmt: skip
    for problem in problems:
        loc = problem["loc"]
        if any(loc[: len(member)] == member for member in mismatched):
            continue
        return [part for part in loc if not is_union_member(part)], problem["msg"]
    first = problems[0]
    return [part for part in first["loc"] if not is_union_member(part)], first["msg"]


def is_union_member(part: str | int) -> bool:
    """pydantic names the union member it tried in an error's path ("ServerVad", "literal['none','auto']")."""
    return isinstance(part, str) and bool(re.match(r"[A-Z]|\w+\[", part))


def remove_value(document: dict[str, Any], path: list[str | int]) -> list[str | int] | None:
    """Take out of `document` the value at `path`, or the nearest enclosing
    field that holds it: a list is taken out whole (half a list of tools
    means something else), and a value missing a required field goes with
    its object.  Returns the path taken out, None when there is nothing."""
    cut = next((index for index, part in enumerate(path) if isinstance(part, int)), len(path))
    path = list(path[:cut])
    while path:
        parent: Any = document
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent:
            del parent[path[-1]]
            return path
        path = path[:-1]
    return None


def dump(event: BaseModel) -> str:
    """Every declared field, also those without a value (as null)."""
    return json.dumps(event.model_dump(mode="json", exclude_unset=False, warnings=False))


# --- session ------------------------------------------------------------------------------
def audio_format_model(name: str) -> Any:
    return {
        "audio/pcm": AudioPCM(type="audio/pcm", rate=24000),
        "audio/pcmu": AudioPCMU(type="audio/pcmu"),
        "audio/pcma": AudioPCMA(type="audio/pcma"),
    }[name]


def session_model(
    settings: SessionSettings, model: str, input_format: str, output_format: str, defaults: TurnDetection
) -> RealtimeSessionCreateRequest:
    detection = settings.turn_detection
    turn_detection: ServerVad | SemanticVad | None = None
    if detection is not None and detection.eagerness is not None:
        turn_detection = SemanticVad(
            type="semantic_vad",
            eagerness=detection.eagerness,
            create_response=detection.create_response,
            interrupt_response=detection.interrupt_response,
        )
    elif detection is not None:
        turn_detection = ServerVad(
            type="server_vad",
            threshold=detection.threshold if detection.threshold is not None else defaults.threshold,
            silence_duration_ms=detection.silence_duration_ms
            if detection.silence_duration_ms is not None
            else defaults.silence_duration_ms,
            prefix_padding_ms=detection.prefix_padding_ms
            if detection.prefix_padding_ms is not None
            else defaults.prefix_padding_ms,
            create_response=detection.create_response,
            interrupt_response=detection.interrupt_response,
            idle_timeout_ms=None,
        )
    return RealtimeSessionCreateRequest(
        type="realtime",
        model=model,
        instructions=settings.instructions or "",
        output_modalities=["audio"] if settings.audio_output else ["text"],
        max_output_tokens="inf",
        tool_choice=settings.tool_choice,
        tools=settings.tools,
        tracing=None,
        truncation="auto",
        audio=RealtimeAudioConfig(
            input=RealtimeAudioConfigInput(
                format=audio_format_model(input_format),
                turn_detection=turn_detection,
                transcription=transcription_model(settings),
                noise_reduction=None,
            ),
            output=RealtimeAudioConfigOutput(format=audio_format_model(output_format), voice="alloy", speed=1.0),
        ),
    )


def session_created(session: RealtimeSessionCreateRequest) -> SessionCreatedEvent:
    return SessionCreatedEvent(event_id=new_id("event"), type="session.created", session=session)


def session_updated(session: RealtimeSessionCreateRequest) -> SessionUpdatedEvent:
    return SessionUpdatedEvent(event_id=new_id("event"), type="session.updated", session=session)


def error(code: str, message: str, event_id: str | None = None, param: str | None = None) -> RealtimeErrorEvent:
    kind = "server_error" if code == "server_error" else "invalid_request_error"
    METRICS.error_sent(code)  # every error event is built here to be sent: counted once, by its code
    return RealtimeErrorEvent(
        event_id=new_id("event"),
        type="error",
        error=RealtimeError(type=kind, code=code, message=message, param=param, event_id=event_id),
    )


# --- input ----------------------------------------------------------------------------------
def speech_started(item_id: str, audio_start_ms: int) -> InputAudioBufferSpeechStartedEvent:
    return InputAudioBufferSpeechStartedEvent(
        event_id=new_id("event"),
        type="input_audio_buffer.speech_started",
        item_id=item_id,
        audio_start_ms=audio_start_ms,
    )


def speech_stopped(item_id: str, audio_end_ms: int) -> InputAudioBufferSpeechStoppedEvent:
    return InputAudioBufferSpeechStoppedEvent(
        event_id=new_id("event"), type="input_audio_buffer.speech_stopped", item_id=item_id, audio_end_ms=audio_end_ms
    )


def committed(item_id: str, previous_item_id: str | None) -> InputAudioBufferCommittedEvent:
    return InputAudioBufferCommittedEvent(
        event_id=new_id("event"),
        type="input_audio_buffer.committed",
        item_id=item_id,
        previous_item_id=previous_item_id,
    )


def cleared() -> InputAudioBufferClearedEvent:
    return InputAudioBufferClearedEvent(event_id=new_id("event"), type="input_audio_buffer.cleared")


def user_item(
    item_id: str, transcript: str | None = None, text: str | None = None
) -> RealtimeConversationItemUserMessage:
    content = (
        {"type": "input_text", "text": text} if text is not None else {"type": "input_audio", "transcript": transcript}
    )
    return RealtimeConversationItemUserMessage(
        id=item_id, object="realtime.item", type="message", role="user", status="completed", content=[content]
    )


def item_added(item: Any, previous_item_id: str | None) -> ConversationItemAdded:
    return ConversationItemAdded(
        event_id=new_id("event"), type="conversation.item.added", item=item, previous_item_id=previous_item_id
    )


def item_done(item: Any, previous_item_id: str | None) -> ConversationItemDone:
    return ConversationItemDone(
        event_id=new_id("event"), type="conversation.item.done", item=item, previous_item_id=previous_item_id
    )


def item_retrieved(item: Any) -> ConversationItemRetrieved:
    return ConversationItemRetrieved(event_id=new_id("event"), type="conversation.item.retrieved", item=item)


def item_deleted(item_id: str) -> ConversationItemDeletedEvent:
    return ConversationItemDeletedEvent(event_id=new_id("event"), type="conversation.item.deleted", item_id=item_id)


def transcription_delta(item_id: str, delta: str) -> ConversationItemInputAudioTranscriptionDeltaEvent:
    return ConversationItemInputAudioTranscriptionDeltaEvent(
        event_id=new_id("event"),
        type="conversation.item.input_audio_transcription.delta",
        item_id=item_id,
        content_index=0,
        delta=delta,
        logprobs=None,
    )


def transcription_model(settings: SessionSettings) -> AudioTranscription | None:
    """The session's `audio.input.transcription`: the language the client fixed
    (`language`) or the ones detection chooses from (`languages`); None when it set neither."""
    if settings.language is None and settings.languages is None:
        return None
    return AudioTranscription(
        model=None,
        language=settings.language,
        languages=list(settings.languages) if settings.languages is not None else None,
        prompt=None,
        delay=None,
        keywords=None,
    )


def transcription_completed(
    item_id: str, transcript: str, seconds: float, language: str | None = None
) -> ConversationItemInputAudioTranscriptionCompletedEvent:
    return ConversationItemInputAudioTranscriptionCompletedEvent(
        event_id=new_id("event"),
        type="conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=0,
        transcript=transcript,
        usage={"type": "duration", "seconds": round(seconds, 3)},
        languages=[TranscriptionLanguage(code=language)] if language else [],
        logprobs=None,
    )


def truncated(item_id: str, content_index: int, audio_end_ms: int) -> ConversationItemTruncatedEvent:
    return ConversationItemTruncatedEvent(
        event_id=new_id("event"),
        type="conversation.item.truncated",
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=audio_end_ms,
    )


# --- response -------------------------------------------------------------------------------
def assistant_item(
    item_id: str, audio: bool, transcript: str = "", status: str = "in_progress"
) -> RealtimeConversationItemAssistantMessage:
    content = []
    if transcript or status != "in_progress":
        part = (
            {"type": "output_audio", "transcript": transcript} if audio else {"type": "output_text", "text": transcript}
        )
        content = [part]
    return RealtimeConversationItemAssistantMessage(
        id=item_id, object="realtime.item", type="message", role="assistant", status=status, content=content
    )


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> RealtimeConversationItemFunctionCall:
    return RealtimeConversationItemFunctionCall(
        id=item_id, object="realtime.item", type="function_call", status=status, call_id=call_id, name=name,
        arguments=arguments,
    )  # fmt: skip


def function_call_output_item(item_id: str, call_id: str, output: str) -> RealtimeConversationItemFunctionCallOutput:
    return RealtimeConversationItemFunctionCallOutput(
        id=item_id, object="realtime.item", type="function_call_output", status="completed", call_id=call_id,
        output=output,
    )  # fmt: skip


def function_call_arguments_delta(
    response_id: str, item_id: str, output_index: int, call_id: str, delta: str
) -> ResponseFunctionCallArgumentsDeltaEvent:
    return ResponseFunctionCallArgumentsDeltaEvent(
        event_id=new_id("event"), type="response.function_call_arguments.delta", response_id=response_id,
        item_id=item_id, output_index=output_index, call_id=call_id, delta=delta,
    )  # fmt: skip


def function_call_arguments_done(
    response_id: str, item_id: str, output_index: int, call_id: str, name: str, arguments: str
) -> ResponseFunctionCallArgumentsDoneEvent:
    return ResponseFunctionCallArgumentsDoneEvent(
        event_id=new_id("event"), type="response.function_call_arguments.done", response_id=response_id,
        item_id=item_id, output_index=output_index, call_id=call_id, name=name, arguments=arguments,
    )  # fmt: skip


def response_model(
    response_id: str,
    status: str,
    audio: bool,
    output: list[Any],
    output_format: str,
    reason: str | None = None,
    error_message: str | None = None,
    output_tokens: int = 0,
    input_tokens: int = 0,
    metadata: dict[str, str] | None = None,
) -> RealtimeResponse:
    details = None
    if status != "in_progress":
        details = RealtimeResponseStatus(
            type=status,
            reason=reason,
            error={"type": "server_error", "code": "turn_failed", "message": error_message} if error_message else None,
        )
    return RealtimeResponse(
        id=response_id,
        object="realtime.response",
        status=status,
        status_details=details,
        output=output,
        output_modalities=["audio"] if audio else ["text"],
        conversation_id=None,
        max_output_tokens="inf",
        metadata=metadata,
        audio={"output": {"format": audio_format_model(output_format).model_dump(), "voice": "alloy"}},
        usage=RealtimeResponseUsage(
            total_tokens=input_tokens + output_tokens,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            input_token_details={
                "cached_tokens": 0,
                "text_tokens": input_tokens,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens_details": None,
            },
            output_token_details={"text_tokens": output_tokens, "audio_tokens": 0},
        ),
    )


def response_created(response: RealtimeResponse) -> ResponseCreatedEvent:
    return ResponseCreatedEvent(event_id=new_id("event"), type="response.created", response=response)


def response_done(response: RealtimeResponse) -> ResponseDoneEvent:
    return ResponseDoneEvent(event_id=new_id("event"), type="response.done", response=response)


def output_item_added(response_id: str, item: Any, output_index: int = 0) -> ResponseOutputItemAddedEvent:
    return ResponseOutputItemAddedEvent(
        event_id=new_id("event"), type="response.output_item.added", response_id=response_id,
        output_index=output_index, item=item,
    )  # fmt: skip


def output_item_done(response_id: str, item: Any, output_index: int = 0) -> ResponseOutputItemDoneEvent:
    return ResponseOutputItemDoneEvent(
        event_id=new_id("event"), type="response.output_item.done", response_id=response_id,
        output_index=output_index, item=item,
    )  # fmt: skip


def _part(audio: bool, transcript: str) -> dict[str, Any]:
    return {"type": "audio", "transcript": transcript} if audio else {"type": "text", "text": transcript}


def content_part_added(response_id: str, item_id: str, audio: bool) -> ResponseContentPartAddedEvent:
    return ResponseContentPartAddedEvent(
        event_id=new_id("event"),
        type="response.content_part.added",
        response_id=response_id,
        item_id=item_id,
        output_index=0,
        content_index=0,
        part=_part(audio, ""),
    )


def content_part_done(response_id: str, item_id: str, audio: bool, transcript: str) -> ResponseContentPartDoneEvent:
    return ResponseContentPartDoneEvent(
        event_id=new_id("event"),
        type="response.content_part.done",
        response_id=response_id,
        item_id=item_id,
        output_index=0,
        content_index=0,
        part=_part(audio, transcript),
    )


def _indexed(response_id: str, item_id: str) -> dict[str, Any]:
    return {
        "event_id": new_id("event"),
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
    }


def audio_delta(response_id: str, item_id: str, delta: str) -> ResponseAudioDeltaEvent:
    return ResponseAudioDeltaEvent(type="response.output_audio.delta", delta=delta, **_indexed(response_id, item_id))


def audio_done(response_id: str, item_id: str) -> ResponseAudioDoneEvent:
    return ResponseAudioDoneEvent(type="response.output_audio.done", **_indexed(response_id, item_id))


def transcript_delta(response_id: str, item_id: str, delta: str) -> ResponseAudioTranscriptDeltaEvent:
    return ResponseAudioTranscriptDeltaEvent(
        type="response.output_audio_transcript.delta", delta=delta, **_indexed(response_id, item_id)
    )


def transcript_done(response_id: str, item_id: str, transcript: str) -> ResponseAudioTranscriptDoneEvent:
    return ResponseAudioTranscriptDoneEvent(
        type="response.output_audio_transcript.done", transcript=transcript, **_indexed(response_id, item_id)
    )


def text_delta(response_id: str, item_id: str, delta: str) -> ResponseTextDeltaEvent:
    return ResponseTextDeltaEvent(type="response.output_text.delta", delta=delta, **_indexed(response_id, item_id))


def text_done(response_id: str, item_id: str, text: str) -> ResponseTextDoneEvent:
    return ResponseTextDoneEvent(type="response.output_text.done", text=text, **_indexed(response_id, item_id))
