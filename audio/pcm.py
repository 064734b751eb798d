"""Audio conversions the pipeline needs at its edges.

Inside the pipeline audio is always mono; microphone and socket audio is int16
at 16 kHz, TTS output int16 at the output rate.  Everything that arrives in
another shape (a 44.1 kHz stereo WAV, a 22.05 kHz voice) is converted here,
once, with a real band-limited resampler (soxr), never by dropping samples.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile
import soxr

PIPELINE_SAMPLE_RATE = 16000


class AudioInputError(ValueError):
    """Audio that cannot be used; the message is meant for the user as is."""


class AudioOutputError(OSError):
    """An output file that cannot be written; the message is meant for the user as is."""


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono audio, keeping the dtype family (int16 stays int16)."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    if samples.dtype == np.int16:
        return soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return soxr.resample(samples.astype(np.float32), from_rate, to_rate, quality="HQ")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels; soundfile gives (frames, channels) for multichannel audio."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1)


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def int16_to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def load_audio(path: str | Path, target_rate: int = PIPELINE_SAMPLE_RATE) -> np.ndarray:
    """Read any soundfile-readable file as int16 mono at `target_rate`.

    Raises AudioInputError with a one-line explanation for a missing, empty,
    corrupt or silent-by-construction (zero frames) file.
    """
    path = Path(path)
    if not path.exists():
        raise AudioInputError(f"input audio file not found: {path}")
    if path.is_dir():
        raise AudioInputError(f"input audio path is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise AudioInputError(f"input audio file is empty (0 bytes): {path}")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioInputError(f"cannot decode audio file {path}: {error}") from None
    if samples.size == 0:
        raise AudioInputError(f"input audio file has no samples: {path}")
    mono = to_mono(samples)
    return float_to_int16(resample(mono, rate, target_rate))


def check_output_file(path: str | Path) -> None:
    """Fail now, before any model loads, if `path` cannot become an audio file:
    a directory, a name whose extension is no format that holds 16-bit PCM
    (.mp3 and .ogg compress, and failed only at the end of the run), or a
    folder that is a file, not writable, or refuses new files (/proc, a
    read-only mount: os.access says yes to root there).  Leaves nothing behind."""
    path = Path(path)
    if path.is_dir():
        raise AudioOutputError(f"output file is a directory: {path}")
    extension = path.suffix.lstrip(".").upper()
    if extension not in soundfile.available_formats() or not soundfile.check_format(extension, "PCM_16"):
        what = f"{path.suffix} files" if path.suffix else "a name without an extension"
        raise AudioOutputError(f"cannot write 16-bit audio to {what} ({path}): end it in .wav (or .flac)")
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise AudioOutputError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AudioOutputError(f"cannot write {path}: no permission to write in {folder}")
    if folder == path.absolute().parent and not os.path.lexists(path):  # a link is written through, as before
        try:
            path.open("xb").close()
            path.unlink()
        except OSError as error:
            raise AudioOutputError(f"cannot write {path}: {error.strerror or error}") from None


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write int16 mono audio; AudioOutputError (one line) when it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), samples, sample_rate, subtype="PCM_16")
    except (OSError, RuntimeError, TypeError, ValueError) as error:  # soundfile raises all four
        detail = getattr(error, "strerror", None) or str(error)
        raise AudioOutputError(f"cannot write {path}: {detail}") from None


def split_chunks(samples: np.ndarray, chunk_samples: int) -> list[np.ndarray]:
    """Cut into fixed-size chunks, zero-padding the last one."""
    if samples.size == 0:
        return []
    padded_len = -(-samples.size // chunk_samples) * chunk_samples
    padded = np.zeros(padded_len, dtype=samples.dtype)
    padded[: samples.size] = samples
    return list(padded.reshape(-1, chunk_samples))
