"""Smart Turn v3.2: does the speaker sound finished?  The audio's side of end-of-turn detection.

Pipecat's open turn-detection model (ONNX, 8.7 MB, BSD-2) ships inside the
`pipecat-ai` wheel; only the model file is used (found through the
package's file list, so `pipecat` itself is never imported, and nothing is
downloaded).  It hears the prosody of the last 8 s of the turn: a falling,
final intonation against a voice that trails off mid-thought.  Its input is
Whisper's 80-bin log-mel of 8 s of 16 kHz audio (normalised to zero mean and
unit variance, zero-padded at the start), computed by faster-whisper's numpy
feature extractor: `transformers`' own imports torch (1 s of CPU at every
start, and torch's memory) for the same features to within 5e-5.

Install: `pip install --no-deps pipecat-ai==1.14.0` (its full dependency set pins
packages this project needs newer).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from models.packaged import ModelNotInstalledError

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
SAMPLE_RATE = 16000
WINDOW_S = 8
INSTALL = "pip install --no-deps pipecat-ai==1.14.0"


def model_path() -> Path:
    try:
        files = importlib.metadata.files("pipecat-ai") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if str(file).endswith(MODEL_FILE):
            path = Path(file.locate())
            if path.is_file():
                return path
    raise ModelNotInstalledError(f"--turn_detector smart-turn needs the Smart Turn model: {INSTALL}")


class SmartTurnModel:
    """One loaded model, shared by every conversation (it keeps no state)."""

    def __init__(self) -> None:
        import onnxruntime

        path = model_path()
        try:
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as error:  # optional here: end of turn goes on without Smart Turn
            raise ModelNotInstalledError(f"Smart Turn's features need faster-whisper ({error})") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.features = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE, chunk_length=WINDOW_S)

    def finished_probability(self, audio: np.ndarray) -> float:
        """Probability that the turn in `audio` (float32, 16 kHz) is finished."""
        window = WINDOW_S * SAMPLE_RATE
        audio = audio[-window:].astype(np.float32, copy=False)
        if len(audio) < window:
            audio = np.pad(audio, (window - len(audio), 0))
        normalized = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        features = self.features(normalized, padding=0)[None].astype(np.float32)
        output = self.session.run(None, {"input_features": features})[0]
        return float(output.reshape(-1)[0])
