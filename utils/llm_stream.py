"""The answer loop every LLM backend shares: text pieces in, sentences out.

Backends differ only in how they turn a list of chat messages into a stream
of text pieces (llama.cpp tokens, a transformers streamer, an HTTP stream, a
whole non-streamed reply).  Everything after that is the same and lives here,
once: record the user's message in the bounded chat (with the "reply in
<language>" hint), cut the pieces into sentences and emit each one the moment
it is complete, rewritten into words a voice can say (`utils.spoken_text`;
the chat keeps the model's own text), stop between pieces when the pipeline
is stopping, keep the history paired when generation fails, and end the turn
with `EndOfResponse`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator

from utils.chat import Chat, language_instruction
from utils.messages import EndOfResponse, LLMSentence, Transcript, Turn
from utils.sentences import SentenceAggregator
from utils.spoken_text import speakable

logger = logging.getLogger(__name__)

Generate = Callable[[list[dict[str, str]]], Iterable[str]]


def answer_transcript(
    message: Transcript,
    chat: Chat,
    generate: Generate,
    stop_event: threading.Event,
    user_role: str = "user",
    first_clause_words: int = 0,
) -> Iterator[LLMSentence | EndOfResponse]:
    """Record the user's words in the chat (with the "reply in <language>"
    hint), then answer them (`answer_chat`)."""
    turn = message.turn
    chat.add_user(language_instruction(message.language) + message.text, role=user_role, turn_id=turn.turn_id)
    yield from answer_chat(turn, chat, generate, stop_event, message.language, first_clause_words)


def answer_chat(
    turn: Turn,
    chat: Chat,
    generate: Generate,
    stop_event: threading.Event,
    language: str | None = None,
    first_clause_words: int = 0,
) -> Iterator[LLMSentence | EndOfResponse]:
    """Answer the conversation as it stands: the body of an LLM handler's `process()`.

    `generate(messages)` yields text pieces of any size.  An exception from it
    propagates (BaseHandler turns it into an `EndOfResponse` carrying
    `turn.error`) after the unanswered user message is dropped from the chat,
    so the next prompt does not hold a question without its answer.
    Generation stops at the next piece once the turn is cancelled: a
    withdrawn speculation leaves no trace in the chat; an interrupted reply
    is remembered as far as the user heard it, and still ends with an
    `EndOfResponse`, so the sink can close it.
    `first_clause_words` lets the reply's first clause go to the TTS early
    (see `SentenceAggregator`).
    """
    turn.mark("llm_start")
    sentences = SentenceAggregator(first_clause_words=first_clause_words)
    reply: list[str] = []
    written: list[str] = []

    def release(found: Iterable[str]) -> Iterator[LLMSentence]:
        for sentence in found:
            written.append(sentence)  # the chat keeps what the model wrote
            spoken = speakable(sentence, language)  # the voice gets words, never symbols
            if spoken:
                turn.mark("llm_first_sentence")
                reply.append(spoken)
                yield LLMSentence(text=spoken, language=language, turn=turn)

    pieces: Iterator[str] | None = None
    try:
        pieces = iter(generate(chat.messages()))
        for piece in pieces:
            yield from release(sentences.push(piece))
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
    turn.reply_sentences = reply
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
    turn.mark("llm_end")
    chat.add_assistant(" ".join(written), turn_id=turn.turn_id)
    logger.info("turn %d reply: %s", turn.number, " ".join(reply) or "<empty>")
    yield EndOfResponse(turn=turn)
