"""Text to speech with MeloTTS, one model per language.

MeloTTS ships a VITS-style model per language (EN, ES, FR, ZH, JP, KR), each
with its own speakers (English has accents: EN-US, EN-BR, EN_INDIA, EN-AU,
EN-Default).  The default language's model is loaded at setup; a sentence in
another language Melo speaks loads that language's model on first use and
keeps it (up to `max_loaded_models`); a language Melo does not speak is said
with the default voice, with one warning per language.

MeloTTS is installed from its repository (the `melotts` sdist on PyPI does not
build) and pins an old transformers, so it needs its own environment, and it
downloads its checkpoints from the hub on first use (see README).  Melo
speaks at 44.1 kHz; the audio is resampled to the output rate with soxr.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np

from audio.stream_resample import resample_to_int16
from config.registry import missing_package
from TTS.speech_handler import SpeechHandler

logger = logging.getLogger(__name__)


# Whisper language code -> Melo language, and the speaker used when none is chosen.
WHISPER_TO_MELO = {"en": "EN", "es": "ES", "fr": "FR", "zh": "ZH", "ja": "JP", "ko": "KR"}
DEFAULT_SPEAKERS = {"EN": "EN-US", "ES": "ES", "FR": "FR", "ZH": "ZH", "JP": "JP", "KR": "KR"}


def melo_language(language: str | None) -> str | None:
    """'fr' / 'fr-auto' / 'FR' -> 'FR'; None when Melo does not speak it."""
    if not language:
        return None
    code = language.removesuffix("-auto")
    if code.upper() in DEFAULT_SPEAKERS:
        return code.upper()
    return WHISPER_TO_MELO.get(code.lower())


class MeloTTSHandler(SpeechHandler):
    voice_per_language = True

    def setup(
        self,
        language: str = "en",
        speaker: str = "",
        device: str = "cpu",
        max_loaded_models: int = 2,
        output_sample_rate: int = 16000,
        gen_kwargs: dict | None = None,
    ) -> None:
        try:
            from melo.api import TTS
        except ImportError as error:
            raise missing_package(MeloTTSHandler, error) from None
        default = melo_language(language)
        if default is None:
            raise ValueError(f"--tts_language {language!r}: Melo speaks {', '.join(WHISPER_TO_MELO)}")
        self._tts_class = TTS
        self.device = device
        self.default_language = default
        self.speaker = speaker
        self.max_loaded_models = max(2, max_loaded_models)  # the default and the current one
        self.output_sample_rate = output_sample_rate
        # sdp_ratio, noise_scale, noise_scale_w, speed: passed to every synthesis.
        self.gen_kwargs = {k: v for k, v in (gen_kwargs or {}).items() if v is not None}
        self.models: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # language -> (model, speaker id)
        self.warned: set[str] = set()
        self.models[default] = self._load(default, speaker)

    def _load(self, language: str, speaker: str = "") -> tuple[Any, int]:
        logger.info("loading MeloTTS %s", language)
        model = self._tts_class(language=language, device=self.device)
        speakers = dict(model.hps.data.spk2id)
        name = speaker or DEFAULT_SPEAKERS[language]
        if name not in speakers:
            raise ValueError(f"Melo {language} has no speaker {name!r}; choose one of: {', '.join(speakers)}")
        return model, int(speakers[name])

    def model_for(self, language: str | None) -> tuple[Any, int]:
        """The model and speaker id for a sentence's language (the default's when
        Melo does not speak it or its model cannot be loaded)."""
        code = melo_language(language) if language else self.default_language
        if code is None:
            if language not in self.warned:
                self.warned.add(language)
                logger.warning("Melo does not speak %r: using %s", language, self.default_language)
            code = self.default_language
        if code not in self.models:
            if code in self.warned:
                return self.models[self.default_language]
            try:
                # The chosen speaker belongs to the default language; others use their own.
                self.models[code] = self._load(code)
            except Exception as error:
                self.warned.add(code)
                logger.warning("cannot load MeloTTS %s (%s): using %s", code, error, self.default_language)
                return self.models[self.default_language]
            while len(self.models) > self.max_loaded_models:
                del self.models[next(c for c in self.models if c not in (self.default_language, code))]
        self.models.move_to_end(code)
        return self.models[code]

    def synthesize(self, text: str, language: str | None = None) -> np.ndarray:
        """The whole sentence at once (Melo makes it in one pass), int16 at the output rate."""
        model, speaker_id = self.model_for(language)
        audio = model.tts_to_file(text, speaker_id, output_path=None, quiet=True, **self.gen_kwargs)
        return resample_to_int16(np.asarray(audio), int(model.hps.data.sampling_rate), self.output_sample_rate)
