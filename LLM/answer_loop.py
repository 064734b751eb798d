"""The answer loop every LLM backend shares: text pieces in, sentences out.

Backends differ only in how they turn a list of chat messages into a stream
of text pieces (llama.cpp tokens, a transformers streamer, an HTTP stream, a
whole non-streamed reply).  Everything after that is the same and lives here,
once: record the user's message in the bounded chat (with the "reply in
<language>" hint), cut the pieces into sentences and emit each one the moment
it is complete, rewritten into words a voice can say (`LLM.spoken_text`;
the chat keeps the model's own text), stop between pieces when the pipeline
is stopping, keep the history paired when generation fails, and end the turn
with `EndOfResponse`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from conversation.chat import CallRecord, Chat, language_instruction
from conversation.playback import PlaybackLog
from conversation.turn import Turn
from LLM.sentences import SentenceAggregator, word_count
from LLM.spoken_text import speakable
from LLM.tool_calls import FunctionCall
from utils.messages import EndOfResponse, LLMSentence, ToolCall, Transcript

logger = logging.getLogger(__name__)

# A backend's reply: text pieces, and the functions it calls.
Generate = Callable[[list[dict[str, Any]]], Iterable[str | FunctionCall]]


@dataclass(frozen=True)
class ReplyPacing:
    """How the start of a reply is handed to the TTS: the global flags
    (--first_clause_words, --first_phrase_words, --first_audio_wait_ms,
    --first_piece_words, --audio_cushion_ms) that every LLM backend's answer
    loop follows.

    `audio_cushion_ms`: once the reply is playing, a sentence being written
    goes to the TTS at its next clause mark or phrase cut when less than this
    much of the reply's audio is left ahead of the listener (`running_low`),
    rather than at its end, so a slow LLM's pause falls between clauses
    instead of as silence mid-answer.

    `first_audio_wait_ms`: after the reply's first piece goes to the TTS, stop
    pulling tokens until its first audio exists (at most this long).  On a
    small machine the LLM's threads and the TTS's otherwise share the cores
    just when the first audio is being made; the rest of the reply is not
    needed before that first piece has played.  It only pauses backends whose
    tokens are computed as they are pulled (llama.cpp, mlx-lm); the others
    generate in a thread of their own, which keeps going.
    """

    first_clause_words: int = 0
    first_phrase_words: int = 0
    first_audio_wait_ms: int = 0
    first_piece_words: int = 0
    audio_cushion_ms: int = 0

    def aggregator(self, language: str | None = None, hurry: Callable[[], bool] | None = None) -> SentenceAggregator:
        """A sentence cutter for a reply in `language` (its abbreviations and
        phrase words); `hurry` says when the listener runs low on audio."""
        return SentenceAggregator(
            first_clause_words=self.first_clause_words,
            first_phrase_words=self.first_phrase_words,
            language=language,
            first_piece_words=self.first_piece_words,
            hurry=hurry,
        )


# About how long the default voices take to say a word (Piper's English
# voices: 2.5-3 words a second), for audio the TTS has not yet made.
SECONDS_PER_WORD = 0.35


def audio_ahead_s(playback: PlaybackLog, released_words: int, now: float) -> float:
    """How long the listener can go on hearing the reply from `now`: the
    audio sent and not yet played, plus the words released to the TTS
    (`released_words` in all) and not yet made into audio, at
    `SECONDS_PER_WORD`."""
    made = sum(word_count(text) for text, _ in list(playback.pieces))
    playing = 0.0 if playback.plays_until is None else max(0.0, playback.plays_until - now)
    return playing + max(0, released_words - made) * SECONDS_PER_WORD


def running_low(playback: PlaybackLog, released_words: int, cushion_s: float, now: float | None = None) -> bool:
    """Whether the listener will run out of the reply's audio within
    `cushion_s` (`audio_ahead_s`).  False before any audio went out: the
    first piece has rules of its own."""
    if playback.plays_until is None:
        return False
    now = time.perf_counter() if now is None else now
    return audio_ahead_s(playback, released_words, now) < cushion_s


def wait_for_first_audio(turn: Turn, stop_event: threading.Event, limit_s: float, poll_s: float = 0.005) -> None:
    """Block until the TTS has made the turn's first audio, for at most `limit_s`."""
    deadline = time.perf_counter() + limit_s
    while "tts_first_audio" not in turn.marks and time.perf_counter() < deadline:
        if stop_event.is_set() or turn.stale:
            return
        time.sleep(poll_s)


def user_content(text: str, language: str | None, english_too: bool = False) -> str:
    """The user's message as the LLM reads it: the words, asking for a reply
    in their language when it is not English (or always, `english_too`: the
    conversation has instructions of its own, perhaps in another language)."""
    return language_instruction(language, english_too) + text


def answer_transcript(
    message: Transcript,
    chat: Chat,
    generate: Generate,
    stop_event: threading.Event,
    user_role: str = "user",
    pacing: ReplyPacing | None = None,
) -> Iterator[LLMSentence | EndOfResponse]:
    """Record the user's words in the chat (with the "reply in <language>"
    hint), then answer them (`answer_chat`)."""
    turn = message.turn
    chat.add_user(user_content(message.text, message.language), role=user_role, turn_id=turn.turn_id)
    yield from answer_chat(turn, chat, generate, stop_event, message.language, pacing)


def answer_chat(
    turn: Turn,
    chat: Chat,
    generate: Generate,
    stop_event: threading.Event,
    language: str | None = None,
    pacing: ReplyPacing | None = None,
    calls_run_by_server: bool = False,
) -> Iterator[LLMSentence | ToolCall | EndOfResponse]:
    """Answer the conversation as it stands: the body of an LLM handler's `process()`.

    A function the model calls goes out as a `ToolCall`, after the sentences
    said before it, and stays in the chat.  A call the client runs ends the
    response (`EndOfResponse`); one the server runs (`calls_run_by_server`)
    does not: its output comes back as a `ToolResult` of the same turn, and
    the answer to it ends the turn.

    `generate(messages)` yields text pieces of any size.  An exception from it
    propagates (BaseHandler turns it into an `EndOfResponse` carrying
    `turn.error`) after the unanswered user message is dropped from the chat,
    so the next prompt does not hold a question without its answer.
    Generation stops at the next piece once the turn is cancelled: a
    withdrawn speculation leaves no trace in the chat; an interrupted reply
    is remembered as far as the user heard it, and still ends with an
    `EndOfResponse`, so the sink can close it.
    `pacing` says when the reply's first clause or phrase goes to the TTS
    (see `SentenceAggregator`) and whether to wait for its audio.
    """
    turn.mark("llm_start")
    turn.reply_language = (language or "").removesuffix("-auto") or None
    pacing = pacing or ReplyPacing()
    reply: list[str] = []
    hurry = None
    if pacing.audio_cushion_ms > 0:
        cushion_s = pacing.audio_cushion_ms / 1000.0

        def hurry() -> bool:
            return running_low(turn.playback, turn.words_released, cushion_s)

    sentences = pacing.aggregator(language, hurry)
    written: list[str] = []
    calls: list[FunctionCall] = []

    # A text-only session (realtime `output_modalities: ["text"]`) reads the reply: it keeps its
    # digits and symbols ("17 × 23 = 391"), which only a voice needs written out as words.
    voiced = turn.session is None or turn.session.settings.audio_output

    def release(found: Iterable[str]) -> Iterator[LLMSentence]:
        for sentence in found:
            written.append(sentence)  # the chat keeps what the model wrote
            spoken = speakable(sentence, language) if voiced else sentence.strip()  # a voice gets words
            if spoken:
                turn.mark("llm_first_sentence")
                turn.words_released += word_count(spoken)
                reply.append(spoken)
                yield LLMSentence(text=spoken, language=language, turn=turn)

    pieces: Iterator[str] | None = None
    try:
        pieces = iter(generate(chat.messages()))
        for piece in pieces:
            if isinstance(piece, FunctionCall):
                yield from release(sentences.flush())  # what was said before the call is spoken first
                turn.mark("tool_call")
                turn.calls_made += 1
                calls.append(piece)
                yield ToolCall(piece.call_id, piece.name, piece.arguments, turn, by_server=calls_run_by_server)
                continue
            turn.count_llm_piece()
            first = not reply
            yield from release(sentences.push(piece))
            if first and reply and pacing.first_audio_wait_ms > 0:
                wait_for_first_audio(turn, stop_event, pacing.first_audio_wait_ms / 1000.0)
            if stop_event.is_set() or turn.stale:
                break
        if not turn.stale:
            yield from release(sentences.flush())
    except Exception:
        chat.discard_pending()
        raise
    finally:
        close = getattr(pieces, "close", None)  # None when generate() itself raised
        if close is not None:
            close()  # stops a background generation or an HTTP stream left early
    turn.wait_until_decided(stop_event)
    turn.reply_sentences = [*turn.reply_sentences, *reply]  # a server-run call's answer adds to what came before
    if turn.interrupted:
        turn.mark("llm_end")
        chat.add_assistant(" ".join(reply), turn_id=turn.turn_id)  # cut to what was heard
        logger.info("turn %d reply interrupted after: %s", turn.number, turn.heard_reply or "<nothing>")
        yield EndOfResponse(turn=turn)
        return
    if turn.stale or not turn.decided:
        # A speculative turn that speech proved wrong, or a client that left:
        # its question and answer never happened, as far as the conversation goes.
        chat.discard_pending()
        logger.debug("turn %d: reply dropped", turn.turn_id)
        return
    if calls:
        records = [CallRecord(call.call_id, call.name, call.arguments) for call in calls]
        chat.add_tool_calls(" ".join(written), records, turn_id=turn.turn_id)
        logger.info("turn %d calls: %s", turn.number, ", ".join(f"{call.name}({call.arguments})" for call in calls))
        if calls_run_by_server:
            return  # the outputs come back into this turn, and the answer to them ends it
    else:
        chat.add_assistant(" ".join(written), turn_id=turn.turn_id)
        logger.info("turn %d reply: %s", turn.number, " ".join(reply) or "<empty>")
    turn.mark("llm_end")
    yield EndOfResponse(turn=turn)
