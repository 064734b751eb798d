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

from audio.pcm import PIPELINE_SAMPLE_RATE, split_chunks, write_wav
from connections.audio_sink import AudioSink
from connections.server_tools import ServerTools
from conversation.turn import Turn
from utils.messages import AudioChunk, EndOfStream, TTSAudio

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
    """Collects the spoken answers, logs each turn, and writes one WAV at the end.

    It keeps the score the exit status is made of: turns answered, turns
    that failed (and why), turns in which nothing could be transcribed.  The
    WAV is written only when there is reply audio, so a run that answered
    nothing (silent input, an unreachable LLM server, Ctrl-C before the first
    answer) leaves an existing file untouched instead of replacing it with
    silence.
    """

    def setup(
        self,
        should_listen: threading.Event,
        output_file: str | Path,
        sample_rate: int = PIPELINE_SAMPLE_RATE,
        metrics_file: str | Path | None = None,
        echo: bool = True,
        tools: ServerTools | None = None,
    ) -> None:
        self.setup_sink(should_listen, metrics_file, echo, tools=tools)
        self.output_file = Path(output_file)
        self.sample_rate = sample_rate
        self.pieces: list[np.ndarray] = []
        self.answered = 0
        self.failed: list[Turn] = []
        self.unheard = 0
        self.written = False

    def output(self, audio: TTSAudio) -> None:
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"TTS audio at {audio.sample_rate} Hz, sink expects {self.sample_rate}")
        self.pieces.append(audio.samples)

    def finish_turn(self, turn: Turn) -> None:
        if turn.error:
            self.failed.append(turn)
        elif not turn.transcript:
            self.unheard += 1  # the VAD heard speech, the STT no words
        else:
            self.answered += 1
        if self.pieces and self.pieces[-1].any():  # this turn's reply audio, if any, then a pause
            self.pieces.append(np.zeros(int(GAP_BETWEEN_ANSWERS_S * self.sample_rate), np.int16))

    def cleanup(self) -> None:
        if not self.pieces:
            logger.info("no reply audio: %s left untouched", self.output_file)
            return
        audio = np.concatenate(self.pieces)
        write_wav(self.output_file, audio, self.sample_rate)
        self.written = True
        logger.info("wrote %.1f s of answers to %s", audio.size / self.sample_rate, self.output_file)

    def outcome(self, input_file: str | Path, interrupted: bool) -> tuple[int, list[str]]:
        """The exit status and the lines that tell the user how the run went."""
        written = f"audio written to {self.output_file}" if self.written else f"{self.output_file} not written"
        summary = f"{self.answered} turn(s) answered; {written}"
        if interrupted:
            return 130, [f"s2s: interrupted: {summary}"]
        errors = [f"s2s: error: turn {turn.turn_id} failed: {turn.error}" for turn in self.failed]
        if errors:
            return 1, [*errors, summary]
        if self.answered:
            return 0, [summary]
        if self.unheard:
            return 1, [f"s2s: error: speech found in {input_file}, but no words could be made out; {written}"]
        return 1, [f"s2s: error: no speech found in {input_file}; {written}"]
