"""Headless file mode: a WAV file stands in for the microphone, another for the speaker.

The source feeds the file in 512-sample chunks as fast as the pipeline takes
them, but behaves like a polite user: once a turn has been handed on it waits
for the answer before "speaking" again, so a file with three questions gets
three answers, in order, and nothing of it is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np

from connections.audio_sink import AudioSink
from utils.audio import PIPELINE_SAMPLE_RATE, split_chunks, write_wav
from utils.messages import AudioChunk, EndOfStream, TTSAudio, Turn

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = 512
GAP_BETWEEN_ANSWERS_S = 0.5


class FileAudioSource:
    """Pushes a loaded file into the pipeline; a thread body, not a handler
    (it has no input queue)."""

    name = "FileAudioSource"

    def __init__(
        self,
        samples: np.ndarray,
        queue_out: queue.Queue,
        should_listen: threading.Event,
        stop_event: threading.Event,
        sample_rate: int = PIPELINE_SAMPLE_RATE,
    ) -> None:
        self.samples = samples
        self.queue_out = queue_out
        self.should_listen = should_listen
        self.stop_event = stop_event
        self.sample_rate = sample_rate

    def run(self) -> None:
        for chunk in split_chunks(self.samples, CHUNK_SAMPLES):
            # Wait for the reply to finish, and for the VAD to have taken the
            # previous chunk, so no audio is fed while the assistant speaks.
            while not (self.should_listen.is_set() and self.queue_out.empty()):
                if self.stop_event.wait(0.005):
                    return
            self.queue_out.put(AudioChunk(samples=chunk, sample_rate=self.sample_rate))
        self.queue_out.put(EndOfStream())


class FileAudioSink(AudioSink):
    """Collects the spoken answers, logs each turn, and writes one WAV at the end."""

    def setup(
        self,
        should_listen: threading.Event,
        output_file: str | Path,
        sample_rate: int = PIPELINE_SAMPLE_RATE,
        metrics_file: str | Path | None = None,
        echo: bool = True,
    ) -> None:
        self.setup_sink(should_listen, metrics_file, echo)
        self.output_file = Path(output_file)
        self.sample_rate = sample_rate
        self.pieces: list[np.ndarray] = []
        self.answered = 0

    def output(self, audio: TTSAudio) -> None:
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"TTS audio at {audio.sample_rate} Hz, sink expects {self.sample_rate}")
        self.pieces.append(audio.samples)

    def finish_turn(self, turn: Turn) -> None:
        self.answered += 1
        self.pieces.append(np.zeros(int(GAP_BETWEEN_ANSWERS_S * self.sample_rate), np.int16))

    def cleanup(self) -> None:
        audio = np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.int16)
        write_wav(self.output_file, audio, self.sample_rate)
        logger.info("wrote %.1f s of answers to %s", audio.size / self.sample_rate, self.output_file)
