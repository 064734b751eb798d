"""Text to speech with Facebook MMS-TTS (VITS through transformers).

MMS ships one small VITS checkpoint per language (`facebook/mms-tts-<iso3>`,
ISO 639-3 codes), so speaking the user's language means loading that
language's model.  The default language's model is loaded at setup; any other
is loaded the first time a sentence arrives in it and kept (up to
`max_loaded_models`, least recently used dropped first, the default never).
A language without an MMS code, or whose model cannot be loaded (not in the
cache while offline, a typo in the template), falls back to the default
language's voice, with one warning per language, instead of failing the turn.

Whisper reports ISO 639-1 codes ("fr"); `WHISPER_TO_MMS` translates them.
`model_name_template` is where the checkpoints come from: the hub by default,
or a local folder pattern such as `/models/mms-tts-{lang}`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np

from audio.pcm import float_to_int16, resample
from config.registry import missing_package
from models.hub import load_cached_or_online
from TTS.speech_handler import SpeechHandler

logger = logging.getLogger(__name__)

# Whisper (ISO 639-1) -> MMS-TTS (ISO 639-3, the code MMS names its checkpoint
# with; for macrolanguages MMS picked one member, e.g. Malay -> zlm, Swahili -> swh,
# and a script suffix where it has several).
WHISPER_TO_MMS: dict[str, str] = {
    "af": "afr",  # Afrikaans
    "am": "amh",  # Amharic
    "ar": "ara",  # Arabic
    "as": "asm",  # Assamese
    "az": "azj-script_latin",  # Azerbaijani (North, Latin script)
    "be": "bel",  # Belarusian
    "bg": "bul",  # Bulgarian
    "bn": "ben",  # Bengali
    "ca": "cat",  # Catalan
    "cs": "ces",  # Czech
    "cy": "cym",  # Welsh
    "da": "dan",  # Danish
    "de": "deu",  # German
    "el": "ell",  # Greek
    "en": "eng",  # English
    "es": "spa",  # Spanish
    "et": "est",  # Estonian
    "eu": "eus",  # Basque
    "fa": "fas",  # Persian
    "fi": "fin",  # Finnish
    "fr": "fra",  # French
    "gl": "glg",  # Galician
    "gu": "guj",  # Gujarati
    "ha": "hau",  # Hausa
    "he": "heb",  # Hebrew
    "hi": "hin",  # Hindi
    "hu": "hun",  # Hungarian
    "hy": "hyw",  # Armenian (Western)
    "id": "ind",  # Indonesian
    "is": "isl",  # Icelandic
    "it": "ita",  # Italian
    "ja": "jpn",  # Japanese
    "jw": "jav",  # Javanese (Whisper's code)
    "ka": "kat",  # Georgian
    "kk": "kaz",  # Kazakh
    "km": "khm",  # Khmer
    "kn": "kan",  # Kannada
    "ko": "kor",  # Korean
    "ky": "kir",  # Kyrgyz
    "lo": "lao",  # Lao
    "lt": "lit",  # Lithuanian
    "lv": "lav",  # Latvian
    "mg": "mlg",  # Malagasy
    "mk": "mkd",  # Macedonian
    "ml": "mal",  # Malayalam
    "mn": "mon",  # Mongolian
    "mr": "mar",  # Marathi
    "ms": "zlm",  # Malay
    "my": "mya",  # Burmese
    "ne": "npi",  # Nepali
    "nl": "nld",  # Dutch
    "pa": "pan",  # Punjabi
    "pl": "pol",  # Polish
    "ps": "pus",  # Pashto
    "pt": "por",  # Portuguese
    "ro": "ron",  # Romanian
    "ru": "rus",  # Russian
    "sk": "slk",  # Slovak
    "sl": "slv",  # Slovenian
    "so": "som",  # Somali
    "sq": "sqi",  # Albanian
    "sr": "srp",  # Serbian
    "su": "sun",  # Sundanese
    "sv": "swe",  # Swedish
    "sw": "swh",  # Swahili
    "ta": "tam",  # Tamil
    "te": "tel",  # Telugu
    "tg": "tgk",  # Tajik
    "th": "tha",  # Thai
    "tk": "tuk-script_latin",  # Turkmen
    "tl": "tgl",  # Tagalog
    "tr": "tur",  # Turkish
    "uk": "ukr",  # Ukrainian
    "ur": "urd",  # Urdu
    "uz": "uzb-script_cyrillic",  # Uzbek
    "vi": "vie",  # Vietnamese
    "yo": "yor",  # Yoruba
}


def mms_code(language: str | None) -> str | None:
    """The MMS checkpoint code for a Whisper language ('fr' or 'fr-auto'),
    None when MMS has no voice for it.  An ISO 639-3 code passes through, so
    `--tts_language fra` works as well as `--tts_language fr`."""
    if not language:
        return None
    language = language.removesuffix("-auto").lower()
    if language in WHISPER_TO_MMS:
        return WHISPER_TO_MMS[language]
    if language in WHISPER_TO_MMS.values():
        return language
    return None


def _has_uroman() -> bool:
    try:
        import uroman  # noqa: F401
    except ImportError:
        return False
    return True


class _Voice:
    """One language's checkpoint: the VITS model and its character tokenizer."""

    def __init__(self, code: str, name: str, model: Any, tokenizer: Any) -> None:
        self.code = code
        self.name = name
        self.model = model
        self.tokenizer = tokenizer

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)


class FacebookMMSTTSHandler(SpeechHandler):
    voice_per_language = True

    def setup(
        self,
        model_name_template: str = "facebook/mms-tts-{lang}",
        language: str = "en",
        device: str = "cpu",
        torch_dtype: str = "float32",
        max_loaded_models: int = 4,
        speaking_rate: float | None = None,
        noise_scale: float | None = None,
        noise_scale_duration: float | None = None,
        seed: int = 0,
        output_sample_rate: int = 16000,
        gen_kwargs: dict | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoTokenizer, VitsModel
        except ImportError:
            raise missing_package(FacebookMMSTTSHandler) from None
        if "{lang}" not in model_name_template:
            raise ValueError(f"--tts_model_name_template must contain '{{lang}}', got {model_name_template!r}")
        default_code = mms_code(language)
        if default_code is None:
            raise ValueError(
                f"--tts_language {language!r} has no MMS-TTS voice; use one of: {', '.join(WHISPER_TO_MMS)}"
            )
        self._torch = torch
        self._model_class = VitsModel
        self._tokenizer_class = AutoTokenizer
        self.template = model_name_template
        self.device = device
        self.dtype = getattr(torch, torch_dtype)
        self.max_loaded_models = max(2, max_loaded_models)  # the default and the current one
        # None keeps each checkpoint's own value (its config.json).
        self.voice_settings = {
            "speaking_rate": speaking_rate,
            "noise_scale": noise_scale,
            "noise_scale_duration": noise_scale_duration,
        }
        self.seed = seed
        self.output_sample_rate = output_sample_rate
        self.default_code = default_code
        self.voices: OrderedDict[str, _Voice] = OrderedDict()
        self.unavailable: set[str] = set()  # codes that failed once: not retried every sentence
        # The default voice must load: without it there is nothing to fall back to.
        self.voices[default_code] = self._load(default_code)

    def _load(self, code: str) -> _Voice:
        name = self.template.format(lang=code)
        logger.info("loading MMS-TTS voice %s", name)
        model = load_cached_or_online(
            name,
            lambda local_only: self._model_class.from_pretrained(name, dtype=self.dtype, local_files_only=local_only),
            "MMS-TTS voice",
        )
        model = model.to(self.device).eval()
        for attribute, value in self.voice_settings.items():
            if value is not None:
                setattr(model, attribute, value)
        tokenizer = load_cached_or_online(
            name, lambda local_only: self._tokenizer_class.from_pretrained(name, local_files_only=local_only)
        )
        if getattr(tokenizer, "is_uroman", False) and not _has_uroman():
            # Voices of non-Latin scripts were trained on romanized text; the tokenizer
            # romanizes with `uroman` when it is installed and drops the text otherwise.
            logger.warning("MMS voice %s needs romanized text and will be silent: pip install uroman", name)
        return _Voice(code, name, model, tokenizer)

    def voice_for(self, language: str | None) -> _Voice:
        """The voice for a sentence's language, loading it on first use; the
        default voice when the language is unknown, has no MMS voice, or its
        checkpoint cannot be loaded."""
        code = mms_code(language) if language else self.default_code
        if code is None:
            if language not in self.unavailable:
                self.unavailable.add(language)
                logger.warning("MMS-TTS has no voice for language %r: speaking with %r", language, self.default_code)
            code = self.default_code
        if code in self.voices:
            self.voices.move_to_end(code)
            return self.voices[code]
        if code in self.unavailable:
            return self.voices[self.default_code]
        try:
            voice = self._load(code)
        except Exception as error:  # missing offline, bad template, corrupt files
            self.unavailable.add(code)
            logger.warning(
                "cannot load MMS-TTS voice %s (%s): speaking with %r",
                self.template.format(lang=code),
                error,
                self.default_code,
            )
            return self.voices[self.default_code]
        self.voices[code] = voice
        self._evict()
        return voice

    def _evict(self) -> None:
        while len(self.voices) > self.max_loaded_models:
            oldest = next(code for code in self.voices if code != self.default_code)
            logger.info("unloading MMS-TTS voice %s", self.voices[oldest].name)
            del self.voices[oldest]

    def synthesize(self, text: str, language: str | None = None) -> np.ndarray:
        """int16 mono at the output rate (empty when the voice's alphabet has
        none of the text's characters)."""
        voice = self.voice_for(language)
        inputs = voice.tokenizer(text, return_tensors="pt")
        input_ids = inputs["input_ids"].to(self.device)
        if input_ids.shape[-1] == 0:
            logger.warning("MMS-TTS produced no audio for %r", text)
            return np.zeros(0, dtype=np.int16)
        if self.seed >= 0:
            self._torch.manual_seed(self.seed)  # VITS samples noise: same sentence, same audio
        with self._torch.inference_mode():
            waveform = voice.model(
                input_ids=input_ids, attention_mask=inputs["attention_mask"].to(self.device)
            ).waveform
        samples = waveform[0].float().cpu().numpy()
        audio = float_to_int16(resample(samples, voice.sample_rate, self.output_sample_rate))
        if audio.size == 0:
            logger.warning("MMS-TTS produced no audio for %r", text)
        return audio
