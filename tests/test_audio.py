"""Audio loading and conversion at the pipeline's edges."""

import numpy as np
import pytest
import soundfile

from audio.pcm import AudioInputError, AudioOutputError, check_output_file, load_audio, resample, split_chunks
from tests.conftest import QUESTIONS


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


def test_resample_keeps_pitch_and_length():
    out = resample(tone(1000, 22050), 22050, 16000)
    assert abs(out.size - 16000) <= 1
    assert peak_hz(out, 16000) == pytest.approx(1000, abs=2)


def test_resample_is_band_limited():
    """A 10 kHz tone cannot exist at 16 kHz; a real resampler removes it
    instead of folding it back as a 6 kHz alias (what sample dropping does)."""
    out = resample(tone(10000, 44100), 44100, 16000)
    assert np.sqrt(np.mean(out**2)) < 0.01


def test_int16_stays_int16():
    out = resample((tone(440, 48000) * 32767).astype(np.int16), 48000, 16000)
    assert out.dtype == np.int16 and abs(out.size - 16000) <= 1


def test_stereo_44k_file_becomes_mono_16k(tmp_path):
    mono = load_audio(QUESTIONS / "q01.wav")
    data, rate = soundfile.read(QUESTIONS / "q01.wav", dtype="float32")
    stereo = np.stack([resample(data, rate, 44100)] * 2, axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 44100)
    converted = load_audio(path)
    assert converted.ndim == 1 and converted.dtype == np.int16
    assert abs(converted.size - mono.size) <= 2


@pytest.mark.parametrize(
    "content,message",
    [(None, "not found"), (b"", "empty"), (b"RIFF\x00\x00garbage" * 10, "cannot decode")],
)
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioInputError, match=message):
        load_audio(path)


def test_a_wav_with_no_frames_is_rejected(tmp_path):
    path = tmp_path / "zero.wav"
    soundfile.write(path, np.zeros(0, np.int16), 16000)
    with pytest.raises(AudioInputError, match="no samples"):
        load_audio(path)


def test_split_chunks_pads_the_last_chunk():
    chunks = split_chunks(np.arange(1000, dtype=np.int16), 512)
    assert [c.size for c in chunks] == [512, 512]
    assert chunks[1][-1] == 0 and chunks[1][1000 - 512 - 1] == 999


@pytest.mark.parametrize("name", ["answer.mp3", "answer.ogg", "answer.txt", "answer"])
def test_an_output_name_whose_format_holds_no_16_bit_pcm_is_refused_at_once(tmp_path, name):
    """.mp3 and .ogg are formats libsndfile knows, but it writes no 16-bit PCM
    to them: those runs failed only at the end, after every answer was made."""
    with pytest.raises(AudioOutputError, match=r"end it in \.wav"):
        check_output_file(tmp_path / name)


def test_a_folder_that_refuses_new_files_is_found_before_the_run_and_nothing_is_left(tmp_path):
    with pytest.raises(AudioOutputError, match=r"cannot write /proc/answer\.wav"):
        check_output_file("/proc/answer.wav")  # writable to root by os.access, yet no file can be made there
    for name in ("answer.wav", "answer.flac", "new folder/answer.wav"):
        check_output_file(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_a_link_is_written_through_as_before(tmp_path):
    link = tmp_path / "answer.wav"
    link.symlink_to(tmp_path / "elsewhere.wav")  # dangling until the run writes it
    check_output_file(link)
    assert link.is_symlink() and not (tmp_path / "elsewhere.wav").exists()
