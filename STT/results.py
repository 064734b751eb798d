"""What every STT stage does with a segment's audio before, and its text after, transcription, and when it is needed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from audio.pcm import resample
from conversation.turn import Turn
from utils.cpu_baton import later
from utils.messages import EndOfResponse, SpeechProgress, SpeechSegment, Transcript

logger = logging.getLogger("STT")

AUTO_SUFFIX = "-auto"


def transcription_due(message: Any) -> float:
    """When the transcription of `message` is needed (the CPU baton's
    priority, utils/cpu_baton.py): a turn's transcript as soon as its reply's
    audio is due (at once: nothing of it was sent yet); a pause's transcript
    or a sound over the reply (is it an interruption?) now; speech followed
    while it is still spoken, and a turn nobody asked to answer (it only
    joins the conversation), later: background work."""
    turn = getattr(message, "turn", None)
    if isinstance(message, SpeechProgress) or (turn is not None and not turn.respond):
        return later()
    return turn.audio_due() if turn is not None else time.perf_counter()


def segment_audio(message: SpeechSegment, model_rate: int) -> np.ndarray:
    """The segment as float32 at the model's rate."""
    audio = message.audio.astype(np.float32, copy=False)
    if message.sample_rate != model_rate:
        audio = resample(audio, message.sample_rate, model_rate)
    return audio


def transcript_messages(turn: Turn, text: str, language: str | None) -> Iterator[Transcript | EndOfResponse]:
    """Record the result on the turn and hand it on.

    `language` may carry the seed's "-auto" suffix (detected, not forced); the
    Transcript keeps it for the LLM, the turn's metrics get the bare code.  An
    empty text is noise the VAD took for speech: the turn ends unanswered, so
    the pipeline listens again.
    """
    turn.mark("stt_end")  # kept if the STT stamped it itself (a speculative transcript)
    turn.mark("transcript_ready")
    turn.transcript = text
    turn.language = (language or "").removesuffix(AUTO_SUFFIX) or None
    if turn.decided and not turn.stale:
        log_heard(turn)
    else:  # the VAD may still cancel it (or just did): "heard" is said once it confirms (see log_heard)
        logger.debug("speculative transcript (%s): %s", language, text or "<nothing>")
    if turn.session is not None:
        turn.session.observer.transcript_ready(turn)
    if not text:
        yield EndOfResponse(turn=turn)
        return
    yield Transcript(text=text, language=language, turn=turn)


def log_heard(turn: Turn) -> None:
    """What the user said, once the turn is real (a speculative turn: when the
    VAD confirms it and its final segment reaches the STT).  Once per turn."""
    if "heard" in turn.marks:
        return
    turn.mark("heard")
    logger.info("turn %d heard (%s): %s", turn.number or turn.turn_id, turn.language, turn.transcript or "<nothing>")
