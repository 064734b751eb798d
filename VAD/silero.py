"""Silero VAD shared by every conversation, with each stream's state kept apart.

Silero is a small recurrent network: its verdict on a window depends on the
windows before it.  The TorchScript model keeps that memory inside the model
object, so one object could follow only one audio stream.  The ONNX export in
the same wheel takes the memory as an input and returns the new one, so one
loaded model scores any number of streams, each `SileroStream` carrying its
own memory (the recurrent state and the last samples of the previous window,
which the model expects in front of each new one).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

CONTEXT_SAMPLES = {16000: 64, 8000: 32}
WINDOW_SAMPLES = {16000: 512, 8000: 256}


def onnx_path() -> Path:
    """The ONNX file inside the `silero-vad` wheel, found without importing the
    package: its `__init__` loads the TorchScript helpers and with them torch
    (1.1 s of CPU at every start), which the ONNX model does not need."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("Silero VAD is not installed: pip install silero-vad")
    return Path(spec.origin).parent / "data" / "silero_vad.onnx"


class SileroModel:
    """The ONNX Silero VAD from the `silero-vad` wheel, on one CPU thread."""

    def __init__(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(onnx_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def stream(self, sample_rate: int = 16000) -> SileroStream:
        return SileroStream(self, sample_rate)


class SileroStream:
    """One audio stream's memory; `probability(window)` scores the next window."""

    def __init__(self, model: SileroModel, sample_rate: int) -> None:
        if sample_rate not in CONTEXT_SAMPLES:
            raise ValueError(f"Silero VAD runs at 16000 or 8000 Hz, not {sample_rate}")
        self.model = model
        self.sample_rate = sample_rate
        self.window = WINDOW_SAMPLES[sample_rate]
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES[self.sample_rate], dtype=np.float32)

    def probability(self, window: np.ndarray) -> float:
        if len(window) != self.window:
            raise ValueError(f"Silero needs {self.window}-sample windows at {self.sample_rate} Hz, not {len(window)}")
        frame = np.concatenate([self._context, window.astype(np.float32, copy=False)])[None, :]
        output, self._state = self.model.session.run(
            None, {"input": frame, "state": self._state, "sr": np.array(self.sample_rate, dtype=np.int64)}
        )
        self._context = frame[0, -len(self._context) :]
        return float(output[0, 0])
