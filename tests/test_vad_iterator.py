"""The end-of-turn state machine alone, driven by scripted probability timelines."""

import numpy as np
import pytest

from VAD.vad_iterator import VADIterator

WINDOW = 512  # 32 ms at 16 kHz
MS = WINDOW / 16  # ms per window


def run(timeline: list[tuple[float, int]], **kwargs):
    """timeline: (probability, number of windows). Window i holds the value i,
    so the returned audio shows exactly which windows were kept."""
    vad = VADIterator(**{"min_silence_ms": 300, "min_speech_ms": 250, "speech_pad_ms": 64, **kwargs})
    utterances, index = [], 0
    for probability, count in timeline:
        for _ in range(count):
            window = np.full(WINDOW, index, dtype=np.float32)
            index += 1
            result = vad(window, probability)
            if result is not None:
                utterances.append((index, result))
    return vad, utterances


def kept_windows(utterance) -> list[int]:
    return sorted(set(utterance.audio.astype(int).tolist()))


def test_one_utterance_with_padding_on_both_sides():
    _, out = run([(0.0, 20), (0.9, 20), (0.0, 20)])
    assert len(out) == 1
    emitted_at, utterance = out[0]
    # 300 ms of silence = 10 windows after the last voiced window (index 39).
    assert emitted_at == 40 + 10
    # 64 ms pad = 2 windows before (18, 19) and after (40, 41).
    assert kept_windows(utterance) == list(range(18, 42))
    assert utterance.speech_ms == pytest.approx(20 * MS)
    assert not utterance.forced


def test_short_noise_is_not_a_turn():
    _, out = run([(0.0, 10), (0.9, 5), (0.0, 30)])  # 160 ms < 250 ms
    assert out == []


def test_a_pause_shorter_than_min_silence_does_not_split_the_turn():
    _, out = run([(0.9, 15), (0.0, 8), (0.9, 15), (0.0, 15)])  # 256 ms pause < 300 ms
    assert len(out) == 1
    assert out[0][1].speech_ms == pytest.approx(38 * MS)


def test_two_turns_separated_by_a_long_pause():
    _, out = run([(0.9, 15), (0.0, 30), (0.9, 15), (0.0, 30)])
    assert len(out) == 2


def test_hysteresis_a_dip_between_thresholds_keeps_speaking():
    # 0.2 is below thresh 0.3 but above thresh - 0.15: still speech.
    _, out = run([(0.9, 10), (0.2, 20), (0.9, 5), (0.0, 20)])
    assert len(out) == 1
    assert out[0][1].speech_ms == pytest.approx(35 * MS)


def test_max_speech_forces_a_cut_and_keeps_listening():
    _, out = run([(0.9, 100), (0.0, 20)], max_speech_ms=1000)  # 1 s = 31.25 windows
    assert len(out) >= 3
    assert out[0][1].forced
    total_speech = sum(u.speech_ms for _, u in out)
    assert total_speech == pytest.approx(100 * MS, abs=MS)


def test_flush_ends_speech_in_progress():
    vad, out = run([(0.0, 5), (0.9, 20)])
    assert out == []
    utterance = vad.flush()
    assert utterance is not None and utterance.speech_ms == pytest.approx(20 * MS)
    assert vad.flush() is None


def test_reset_forgets_partial_speech():
    vad, _ = run([(0.9, 20)])
    vad.reset()
    assert vad.flush() is None


def test_peek_shows_the_utterance_so_far_without_ending_it():
    vad, out = run([(0.0, 5), (0.9, 20), (0.0, 4)])
    assert out == [] and vad.trailing_silence_samples == 4 * WINDOW
    early = vad.peek()
    assert early is not None and early.speech_ms == pytest.approx(20 * MS)
    late = vad.flush()
    assert (early.start_sample, early.end_sample) == (late.start_sample, late.end_sample)


def test_no_peek_before_min_speech():
    vad, _ = run([(0.9, 3), (0.0, 2)])
    assert vad.peek() is None
