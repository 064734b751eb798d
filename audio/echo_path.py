"""A simulated speaker-to-microphone path: what a room does to the assistant's voice.

Echo cancellation can only be tested where the assistant's voice comes back
into its microphone.  Machines without a sound card (CI, headless clients)
get that echo from here: the played signal, delayed (the sound card's buffers
and the air), through a room's impulse response (a direct path and
exponentially decaying reflections), attenuated.  It streams block by block,
so a client can feed it what it plays as it plays it.
"""

from __future__ import annotations

import numpy as np


def room_impulse_response(
    sample_rate: int, decay_ms: float = 12.0, length_ms: float = 60.0, seed: int = 0
) -> np.ndarray:
    """A direct path then random reflections dying away `decay_ms` per e-fold,
    normalised so the loudest echo sample of a full-scale click is 1."""
    size = int(length_ms * sample_rate / 1000)
    rng = np.random.default_rng(seed)
    response = rng.standard_normal(size) * np.exp(-np.arange(size) / (decay_ms * sample_rate / 1000)) * 0.5
    response[0] = 1.0
    return response / np.abs(response).sum() * 3.0


class SimulatedEchoPath:
    """Streams `played` blocks into the echo a microphone would pick up.

    `gain_db` is the echo's level against the played signal (-6 dB: a
    speaker close to the microphone)."""

    def __init__(self, sample_rate: int, delay_ms: float = 120.0, gain_db: float = -6.0, seed: int = 0) -> None:
        self.sample_rate = sample_rate
        self.response = room_impulse_response(sample_rate, seed=seed) * 10 ** (gain_db / 20)
        self._history = np.zeros(int(delay_ms * sample_rate / 1000) + len(self.response) - 1)
        self._delay = int(delay_ms * sample_rate / 1000)

    def echo(self, played: np.ndarray) -> np.ndarray:
        """The echo heard while `played` goes out (int16, same length)."""
        played = np.asarray(played, dtype=np.float64).reshape(-1)
        self._history = np.concatenate([self._history, played])
        taps = len(self.response)
        # Output sample i hears played sample i - delay - k through tap k.
        start = len(self._history) - len(played) - self._delay - (taps - 1)
        window = self._history[start : start + len(played) + taps - 1]
        out = np.convolve(window, self.response, mode="valid")
        self._history = self._history[-(self._delay + taps - 1) :] if self._delay + taps > 1 else self._history[:0]
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)

    def mix(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        """The microphone block with the echo of `played` added."""
        mixed = np.asarray(mic, dtype=np.int32) + self.echo(played)
        return np.clip(mixed, -32768, 32767).astype(np.int16)
