"""espeak-ng's own voice, from the copy of the library inside Piper's wheel.

Piper's wheel carries espeak-ng (statically linked into `piper/espeakbridge.so`,
with its data for about a hundred languages) to turn text into phonemes; the
same library can also speak, with its formant synthesiser.  That voice is
robotic, but it is a voice *of the language*: for a language that has no
neural voice installed, it says a Dutch or Czech sentence with Dutch or Czech
sounds instead of an English voice guessing at the spelling (measured in
benchmarks/RESULTS_languages.md).  Nothing is installed for it: no apt
package, no download.

The library is driven through ctypes (`espeak_Initialize` in synchronous
mode, a callback that collects the samples).  espeak-ng keeps one global state
per process, which Piper's phonemizer shares; every call sets the voice it
needs, under one lock.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
ESPEAK_OK = 0
# Whisper's code -> espeak-ng's voice name, where they differ.
ESPEAK_NAMES = {"en": "en-us", "zh": "cmn", "no": "nb", "jw": "jv", "haw": "haw", "yue": "yue", "la": "la"}

_lock = threading.Lock()
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _library() -> tuple[ctypes.CDLL, Path]:
    """Piper's espeak-ng and its data folder (ImportError when piper-tts is missing)."""
    from piper import espeakbridge
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    return ctypes.CDLL(espeakbridge.__file__), Path(ESPEAK_DATA_DIR)


def espeak_name(language: str) -> str:
    return ESPEAK_NAMES.get(language, language)


class EspeakVoice:
    """espeak-ng speaking any of its languages: `synthesize(text, language)`
    gives int16 mono at `sample_rate` (22050 Hz)."""

    def __init__(self) -> None:
        self.lib, data = _library()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        with _lock:
            self.sample_rate = int(self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(), 0))
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak-ng did not start (data folder {data})")
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept alive as long as the library may call it

    def _collect(self, samples: ctypes.Array, count: int, events: int) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # go on

    def speaks(self, language: str) -> bool:
        """Whether espeak-ng has a voice for this Whisper language code."""
        with _lock:
            return self.lib.espeak_SetVoiceByName(espeak_name(language).encode()) == ESPEAK_OK

    def synthesize(self, text: str, language: str) -> np.ndarray:
        data = text.encode()
        with _lock:
            if self.lib.espeak_SetVoiceByName(espeak_name(language).encode()) != ESPEAK_OK:
                raise ValueError(f"espeak-ng has no voice for language {language!r}")
            self.lib.espeak_SetSynthCallback(self._callback)
            self._chunks = []
            self.lib.espeak_Synth(ctypes.c_char_p(data), len(data) + 1, 0, 0, 0, ESPEAK_CHARS_UTF8, None, None)
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
