"""Echo cancellation on real speech: a Piper reply played back into the
microphone through a simulated room must vanish, a recorded human voice on
top of it must stay (the VAD hears it, Whisper understands it).

The echo path (delay, reflections, -6 dB) comes from audio/echo_path.py; the
canceller is never told the delay.
"""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest

from audio.echo_cancel import (
    EchoCanceller,
    EchoCancellerUnavailable,
    SpeexEchoCanceller,
    WebRtcEchoCanceller,
    create_echo_canceller,
)
from audio.echo_path import SimulatedEchoPath
from audio.pcm import int16_to_float, load_audio
from benchmarks.wer import corpus_wer
from tests.conftest import HUMAN, make_handler, read_transcripts
from utils.messages import AudioChunk
from VAD.vad_handler import VADHandler

RATE = 16000
BLOCK = 512  # the local streamer's block: not a multiple of the 10 ms frame


def wer(references: list[str], hypotheses: list[str]) -> float:
    return corpus_wer(list(zip(references, hypotheses, strict=True)))


def level_db(samples: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(samples, dtype=np.float64) ** 2) + 1e-9)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2)))


@pytest.fixture(scope="module")
def reply(tts_handler) -> np.ndarray:
    """About nine seconds of the assistant's voice, then a second of silence."""
    text = (
        "The capital of France is Paris. It is a large city on the river Seine, famous for the Eiffel Tower "
        "and its museums. Many people visit it every year."
    )
    return np.concatenate([*tts_handler.synthesize(text), np.zeros(RATE, np.int16)])


@pytest.fixture(scope="module")
def user_clips() -> list[tuple[str, np.ndarray]]:
    """Eight recorded English prompts of 2-6 s (every sixth, so not hand-picked)."""
    rows = [row for row in read_transcripts(HUMAN) if row["file"].startswith("asterisk_en/")]
    clips = [(row["transcript"], load_audio(HUMAN / row["file"])) for row in rows]
    return [clip for clip in clips if 2 * RATE < len(clip[1]) < 6 * RATE][::6][:8]


@pytest.fixture(scope="module")
def vad():
    return make_handler(VADHandler, should_listen=threading.Event())


def echo_of(played: np.ndarray, delay_ms: float = 120.0) -> np.ndarray:
    path = SimulatedEchoPath(RATE, delay_ms=delay_ms)
    return np.concatenate([path.echo(played[start : start + BLOCK]) for start in range(0, len(played), BLOCK)])


def cancel(mic: np.ndarray, played: np.ndarray, canceller: EchoCanceller | None = None) -> np.ndarray:
    """The cleaned mic, in the streamer's blocks, realigned with the input."""
    canceller = canceller or create_echo_canceller(RATE)
    out = np.concatenate(
        [
            canceller.process(mic[start : start + BLOCK], played[start : start + BLOCK])
            for start in range(0, len(mic), BLOCK)
        ]
    )
    return np.concatenate([out[canceller.latency_samples :], np.zeros(canceller.latency_samples, np.int16)])


def speech_segments(vad: VADHandler, samples: np.ndarray) -> int:
    vad.on_reset()
    found = 0
    for start in range(0, len(samples), BLOCK):
        found += len(list(vad.process(AudioChunk(samples=samples[start : start + BLOCK]))))
    return found + len(list(vad.flush()))


def over_the_echo(reply: np.ndarray, user: np.ndarray, start: int, gain_db: float) -> tuple[np.ndarray, np.ndarray]:
    """The mic hears the reply's echo and the user, `gain_db` louder than the
    echo while they overlap; returns (mic, the user's part of it)."""
    echo = echo_of(reply)
    voice = np.zeros(len(reply))
    length = min(len(user), len(reply) - start)
    overlap = slice(start, start + length)
    voice[overlap] = user[:length] * rms(echo[overlap]) / rms(user[:length]) * 10 ** (gain_db / 20)
    mic = np.clip(echo + voice, -32768, 32767).astype(np.int16)
    return mic, voice


# --- the canceller alone ----------------------------------------------------------------------
@pytest.mark.parametrize("delay_ms", [30, 120, 400])
def test_the_echo_of_a_reply_loses_more_than_30_db(reply, delay_ms):
    """From a cold start (measured 33-42 dB over the whole reply), and more
    once the canceller has found the path (40-56 dB after its first second)."""
    mic = echo_of(reply, delay_ms)
    cleaned = cancel(mic, reply)
    assert level_db(mic) - level_db(cleaned) >= 30
    converged = slice(RATE, None)
    assert level_db(mic[converged]) - level_db(cleaned[converged]) >= 35


def test_the_vad_hears_the_echo_without_cancellation_and_nothing_with_it(reply, vad):
    mic = echo_of(reply)
    assert speech_segments(vad, mic) >= 1  # the test can fail: the raw echo is speech
    assert speech_segments(vad, cancel(mic, reply)) == 0


def test_a_user_speaking_over_the_echo_is_kept(reply, user_clips, vad, stt_handler):
    """Double talk as loud as the echo (the hard case for a canceller): every
    clip is still speech to the VAD and loses only a few dB (3-6 measured),
    and Whisper understands it far better than the raw mic (measured over
    three Piper renderings of the reply: WER 47-67% against 104-113%; the
    reply stops within a few hundred ms of a barge-in, so little of a turn is
    double talk)."""
    start = 2 * RATE
    references, raw_texts, cleaned_texts = [], [], []
    for transcript, user in user_clips:
        mic, voice = over_the_echo(reply, user, start, gain_db=0.0)
        cleaned = cancel(mic, reply)
        window = slice(start, start + len(user))
        assert level_db(voice[window]) - level_db(cleaned[window]) < 8.0, transcript
        assert speech_segments(vad, cleaned) >= 1, transcript
        references.append(transcript)
        raw_texts.append(stt_handler.transcribe(int16_to_float(mic[window]))[0])
        cleaned_texts.append(stt_handler.transcribe(int16_to_float(cleaned[window]))[0])
    raw_wer = wer(references, raw_texts)
    cleaned_wer = wer(references, cleaned_texts)
    assert cleaned_wer < 0.8 * raw_wer, (cleaned_wer, raw_wer, cleaned_texts)


def test_a_user_speaking_after_the_reply_passes_unchanged(reply, user_clips, stt_handler):
    start = len(reply)
    references, clean_texts, cleaned_texts = [], [], []
    for transcript, user in user_clips[:4]:
        played = np.concatenate([reply, np.zeros(len(user) + RATE // 2, np.int16)])
        mic = np.clip(echo_of(played) + np.pad(user, (start, RATE // 2)).astype(np.int32), -32768, 32767)
        cleaned = cancel(mic.astype(np.int16), played)[start : start + len(user)]
        references.append(transcript)
        clean_texts.append(stt_handler.transcribe(int16_to_float(user))[0])
        cleaned_texts.append(stt_handler.transcribe(int16_to_float(cleaned))[0])
    assert wer(references, cleaned_texts) <= wer(references, clean_texts) + 0.05


# --- blocks, frames, engines -----------------------------------------------------------------------
def test_any_block_size_gives_the_same_cleaned_audio(reply):
    mic = echo_of(reply[: 3 * RATE])
    played = reply[: 3 * RATE]
    framewise = WebRtcEchoCanceller(RATE)
    by_frames = np.concatenate(
        [framewise.process(mic[s : s + 160], played[s : s + 160]) for s in range(0, len(mic), 160)]
    )
    canceller = WebRtcEchoCanceller(RATE)
    odd = np.concatenate([canceller.process(mic[s : s + 333], played[s : s + 333]) for s in range(0, len(mic), 333)])
    assert len(odd) == len(mic) and canceller.latency_samples == 160
    assert np.array_equal(odd[: len(by_frames)], by_frames[: len(odd)])


def test_a_short_played_block_counts_as_silence():
    canceller = WebRtcEchoCanceller(RATE)
    assert canceller.process(np.zeros(512, np.int16), np.zeros(100, np.int16)).shape == (512,)
    assert canceller.process(np.zeros(512, np.int16), np.zeros(900, np.int16)).shape == (512,)


def test_device_rates_other_than_16_khz_are_cancelled(reply):
    from audio.pcm import resample

    played = resample(reply, RATE, 48000)
    path = SimulatedEchoPath(48000)
    mic = np.concatenate([path.echo(played[s : s + 1536]) for s in range(0, len(played), 1536)])
    canceller = create_echo_canceller(48000, "webrtc")
    cleaned = np.concatenate(
        [canceller.process(mic[s : s + 1536], played[s : s + 1536]) for s in range(0, len(mic), 1536)]
    )
    converged = slice(48000, None)  # after the first second (28 dB over the whole, measured)
    assert level_db(mic[converged]) - level_db(cleaned[converged]) >= 30


def test_speex_fallback_cancels_once_converged(reply):
    pytest.importorskip("pyaec", reason="the optional Speex fallback (pip install pyaec)")
    mic = echo_of(reply)
    cleaned = cancel(mic, reply, SpeexEchoCanceller(RATE))
    converged = slice(RATE, len(reply) - RATE)
    assert level_db(mic[converged]) - level_db(cleaned[converged]) >= 12


def test_unknown_or_missing_engines_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown echo canceller 'nope'"):
        create_echo_canceller(RATE, "nope")
    monkeypatch.setattr("audio.echo_cancel.installed_engines", lambda: [])
    with pytest.raises(EchoCancellerUnavailable, match="pip install livekit"):
        create_echo_canceller(RATE)
    monkeypatch.setattr("audio.echo_cancel.installed_engines", lambda: ["speex"])
    with pytest.raises(EchoCancellerUnavailable, match="'webrtc'"):
        create_echo_canceller(RATE, "webrtc")
    if importlib.util.find_spec("pyaec") is not None:
        assert create_echo_canceller(RATE).engine == "speex"  # auto falls back
