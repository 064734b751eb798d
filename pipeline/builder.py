"""Wire VAD -> STT -> LLM -> TTS between an audio source and an audio sink.

Each mode (file, socket, local) brings its own source and sink; the four
model stages in between are the same for all of them and are built here from
the parsed configuration and the backend registry.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from baseHandler import BaseHandler
from config.parse import PipelineConfig
from connections.server_tools import ServerTools
from conversation.session import Session
from LLM.answer_loop import ReplyPacing
from pipeline.stage_setup import BackendUnavailableError, set_up_handler
from tools.worker import ToolWorker
from utils.cpu_baton import CpuBaton
from utils.queues import LiveAudioQueue, StageQueue
from VAD.vad_handler import VADHandler

logger = logging.getLogger(__name__)


@dataclass
class Channels:
    """The events and queues shared by the stages of one pipeline."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    should_listen: threading.Event = field(default_factory=threading.Event)
    audio_in: queue.Queue = field(default_factory=LiveAudioQueue)
    audio_out: queue.Queue = field(default_factory=StageQueue)
    session: Session = field(default_factory=Session)
    tools: ServerTools | None = None  # the server's own tools, run by the sink (see `serve_tools`)

    def __post_init__(self) -> None:
        self.should_listen.set()

    def serve_tools(self, worker: ToolWorker | None) -> None:
        """Offer the worker's tools to the default session and run their calls:
        outputs come back into `audio_in`, the pipeline's input."""
        if worker is None:
            return
        self.tools = ServerTools(worker, self.audio_in)
        self.session.settings.server_tools = list(worker.declarations)

    @property
    def server_tools(self) -> list[dict[str, Any]]:
        """The declarations of the server's own tools (none without a worker)."""
        return list(self.tools.declarations) if self.tools is not None else []


def _handler_class(config: PipelineConfig, stage: str) -> type[BaseHandler]:
    backend = getattr(config, f"{stage}_backend")
    try:
        return backend.handler_class()
    except ImportError as error:
        raise BackendUnavailableError(
            f"--{stage} {backend.name} cannot be imported ({error}); install it: {backend.extra}"
        ) from None


def stage_kwargs(
    config: PipelineConfig, stage: str, server_tools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What one model stage's setup() is given: its backend's own arguments,
    and for the LLM the reply pacing every backend's answer loop follows
    (the global flags --first_clause_words, --first_phrase_words,
    --first_audio_wait_ms, ...), whether it interleaves conversations'
    replies, and the server's own tools (its warm-up prepares their
    prompt)."""
    kwargs = config.stage_kwargs(stage)
    if stage == "llm":
        module = config.module
        kwargs["pacing"] = ReplyPacing(
            module.first_clause_words,
            module.first_phrase_words,
            module.first_audio_wait_ms,
            module.first_piece_words,
            module.audio_cushion_ms,
        )
        kwargs["server_tools"] = list(server_tools or [])
        kwargs["interleave_replies"] = module.interleave_replies
        kwargs["interleave_cover_ms"] = module.interleave_cover_ms
    return kwargs


def build_model_stages(
    config: PipelineConfig, channels: Channels, yield_floor_at_end_of_turn: bool = False
) -> list[BaseHandler]:
    """Load the four model stages (in this thread, so failures surface before
    any audio flows) and chain them with queues.

    `yield_floor_at_end_of_turn`: the input stops at each end of turn until
    the reply is out (file mode, whose input is not live); live modes keep
    listening, so speech resumed before the reply is heard joins its turn."""
    spoken, transcripts, sentences = StageQueue(), StageQueue(), StageQueue()
    stop = channels.stop_event
    stages: list[BaseHandler] = []
    # One per pipeline (one per process: every session shares these stages),
    # lent to the STT, the LLM and the TTS in turn (utils/cpu_baton.py).
    baton = CpuBaton(enabled=config.module.cpu_baton)

    started = time.perf_counter()
    vad_kwargs = vars(config.vad).copy()
    vad_kwargs["should_listen"] = channels.should_listen
    vad_kwargs["session"] = channels.session
    vad_kwargs["yield_floor_at_end_of_turn"] = yield_floor_at_end_of_turn
    stt_class = _handler_class(config, "stt")
    if vad_kwargs["speculative_stt_ms"] and not getattr(stt_class, "accepts_provisional", False):
        logger.warning(
            "--stt %s cannot transcribe ahead of the turn: --speculative_stt_ms ignored", config.stt_backend.name
        )
        vad_kwargs["speculative_stt_ms"] = 0
    if not getattr(stt_class, "follows_speech", False):
        vad_kwargs["incremental_stt_ms"] = 0  # nobody to transcribe the speech as it comes
    # Sounds over the reply are judged by their words only where the STT can
    # transcribe them at once; elsewhere barge-in stops at any speech past the guard.
    vad_kwargs["hears_overlaps"] = getattr(stt_class, "hears_overlaps", False)
    vad = partial(VADHandler, stop, channels.audio_in, spoken, setup_kwargs=vad_kwargs)
    stages.append(set_up_handler("the VAD (Silero)", "pip install silero-vad", vad))
    for stage, queue_in, queue_out in (
        ("stt", spoken, transcripts),
        ("llm", transcripts, sentences),
        ("tts", sentences, channels.audio_out),
    ):
        backend = getattr(config, f"{stage}_backend")
        handler_class = _handler_class(config, stage)
        began = time.perf_counter()
        kwargs = stage_kwargs(config, stage, channels.server_tools)
        build = partial(handler_class, stop, queue_in, queue_out, setup_kwargs=kwargs, baton=baton)
        stages.append(set_up_handler(f"--{stage} {backend.name}", backend.extra, build))
        logger.info("%s %r ready in %.1f s", stage.upper(), backend.name, time.perf_counter() - began)
    logger.info("models loaded and warmed up in %.1f s", time.perf_counter() - started)
    return stages
