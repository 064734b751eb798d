"""The melo and chatTTS TTS backends: wiring, conversions, and handler logic.

Neither model can run here.  MeloTTS installs only from its repository (the
`melotts` sdist on PyPI does not build), pins transformers 4.27 and downloads
its checkpoints from the hub.  ChatTTS (`pip install chattts`) pulls
torchaudio, whose PyPI wheel is built for another torch than this project's,
and downloads its weights (2Noise/ChatTTS) from the hub.  The real-model tests
below run where the package and its weights are present and skip otherwise.

What is tested everywhere: flags and registry, the missing-package message,
the 24 kHz -> 16 kHz conversion on synthetic audio, and the handlers' own
logic (language switching, speakers, fall-back, streaming) driven through
their real setup()/process() by small stand-in `melo.api` / `ChatTTS` modules
that return sine tones; these check this project's code, not the models.
"""

from __future__ import annotations

import logging
import sys
import types
from typing import ClassVar

import numpy as np
import pytest

from audio.stream_resample import StreamResampler
from config.parse import parse_config
from config.registry import lookup
from conversation.turn import Turn
from tests.conftest import make_handler
from TTS.chattts_handler import CHATTTS_SAMPLE_RATE, ChatTTSHandler, chattts_mono, to_output_rate
from TTS.melo_handler import WHISPER_TO_MELO, MeloTTSHandler, melo_language
from utils.messages import LLMSentence, TTSAudio

MELO_RATE = 44100


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


def tone(hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


# --- melo ------------------------------------------------------------------------------
def test_melo_language_codes():
    assert set(WHISPER_TO_MELO) == {"en", "es", "fr", "zh", "ja", "ko"}
    assert melo_language("ja") == "JP" and melo_language("ko-auto") == "KR" and melo_language("FR") == "FR"
    assert melo_language("de") is None and melo_language(None) is None


def test_melo_flags_reach_the_handler():
    config = parse_config(
        ["--tts", "melo", "--tts_language", "fr", "--tts_speaker", "FR", "--tts_gen_speed", "1.2", "--device", "cuda"]
    )
    assert config.tts_backend is lookup("tts", "melo")
    assert config.tts_backend.handler_class() is MeloTTSHandler
    kwargs = config.stage_kwargs("tts")
    assert kwargs["language"] == "fr" and kwargs["speaker"] == "FR" and kwargs["device"] == "cuda"
    assert kwargs["gen_kwargs"] == {"speed": 1.2, "sdp_ratio": None, "noise_scale": None, "noise_scale_w": None}


def test_melo_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "melo", None)
    monkeypatch.setitem(sys.modules, "melo.api", None)
    with pytest.raises(ImportError, match="MeloTTS"):
        make_handler(MeloTTSHandler)


def test_melo_real_model():
    try:
        from melo.api import TTS  # noqa: F401
    except ImportError:
        pytest.skip(
            "MeloTTS is not installed: it installs from its repository only, pins transformers 4.27 "
            "(this project needs 5) and downloads its checkpoints from the hub; see README, Optional backends"
        )
    handler = make_handler(MeloTTSHandler, language="en")
    (audio,) = handler.process(LLMSentence("Hello, how are you?", "en", Turn()))
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.int16 and audio.samples.size > 8000


class _StandInMelo:
    """melo.api.TTS's interface: hps.data.spk2id / sampling_rate, tts_to_file()."""

    loads: ClassVar[list[str]] = []
    speakers: ClassVar[dict] = {"EN": {"EN-US": 0, "EN-BR": 1}, "FR": {"FR": 0}, "ES": {"ES": 0}, "ZH": {"ZH": 0}}

    def __init__(self, language: str, device: str = "auto") -> None:
        if language not in self.speakers:
            raise FileNotFoundError(f"no checkpoint for {language}")
        _StandInMelo.loads.append(language)
        self.language = language
        self.hps = types.SimpleNamespace(
            data=types.SimpleNamespace(spk2id=self.speakers[language], sampling_rate=MELO_RATE)
        )

    def tts_to_file(self, text, speaker_id, output_path=None, speed=1.0, quiet=False, **kwargs):
        # pitch names the language and speaker, length the speed: the test reads them back
        hz = {"EN": 200, "FR": 300, "ES": 400, "ZH": 500}[self.language] + 50 * speaker_id
        return tone(hz, 0.5 / speed, MELO_RATE)


@pytest.fixture
def stand_in_melo(monkeypatch):
    module = types.ModuleType("melo.api")
    module.TTS = _StandInMelo
    monkeypatch.setitem(sys.modules, "melo", types.ModuleType("melo"))
    monkeypatch.setitem(sys.modules, "melo.api", module)
    _StandInMelo.loads = []
    return _StandInMelo


def test_melo_handler_switches_language_and_falls_back(stand_in_melo, caplog):
    handler = make_handler(MeloTTSHandler, language="en", speaker="EN-BR", gen_kwargs={"speed": 1.0})
    assert stand_in_melo.loads == ["EN"]

    def spoken(text, language):
        (audio,) = handler.process(LLMSentence(text, language, Turn()))
        assert isinstance(audio, TTSAudio) and audio.sample_rate == 16000 and audio.samples.dtype == np.int16
        assert audio.samples.size == 8000  # 0.5 s at 44.1 kHz -> 16 kHz
        return round(dominant_hz(audio.samples, 16000))

    assert spoken("Hello.", "en") == 250  # EN, speaker EN-BR (id 1)
    assert spoken("Bonjour.", "fr-auto") == 300  # French model loaded on first use
    assert stand_in_melo.loads == ["EN", "FR"]
    assert spoken("Encore.", "fr") == 300 and stand_in_melo.loads == ["EN", "FR"]  # cached
    with caplog.at_level(logging.WARNING, logger="TTS.melo_handler"):
        assert spoken("Hallo.", "de") == 250  # Melo has no German: default voice
        assert spoken("Annyeong.", "ko") == 250  # KR's checkpoint fails to load: default voice
        assert spoken("Annyeong.", "ko") == 250
    assert "does not speak 'de'" in caplog.text
    assert caplog.text.count("cannot load MeloTTS KR") == 1  # not retried every sentence
    assert spoken("Hola.", "es") == 400
    assert set(handler.models) == {"EN", "ES"}  # at most two: FR dropped, the default kept


def test_melo_handler_passes_generation_arguments(stand_in_melo):
    handler = make_handler(MeloTTSHandler, gen_kwargs={"speed": 2.0, "sdp_ratio": None})
    (audio,) = handler.process(LLMSentence("Fast.", "en", Turn()))
    assert audio.samples.size == 4000  # speed 2: half as long


# --- chatTTS ---------------------------------------------------------------------------
def test_chattts_flags_reach_the_handler():
    config = parse_config(
        ["--tts", "chatTTS", "--tts_stream", "false", "--tts_speaker_seed", "7", "--tts_gen_temperature", "0.5"]
    )
    assert config.tts_backend is lookup("tts", "chatTTS")
    assert config.tts_backend.handler_class() is ChatTTSHandler
    kwargs = config.stage_kwargs("tts")
    assert kwargs["stream"] is False and kwargs["speaker_seed"] == 7 and kwargs["source"] == "huggingface"
    assert kwargs["gen_kwargs"] == {"temperature": 0.5, "top_P": 0.7, "top_K": 20}


def test_chattts_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ChatTTS", None)
    with pytest.raises(ImportError, match="pip install chattts"):
        make_handler(ChatTTSHandler)


def test_chattts_24k_audio_becomes_16k_int16():
    wav = tone(440.0, 1.5, CHATTTS_SAMPLE_RATE, amplitude=0.6)[None, :]  # ChatTTS's (batch, samples)
    out = to_output_rate(wav, 16000)
    assert out.dtype == np.int16 and out.ndim == 1
    assert out.size == 24000  # 1.5 s at 16 kHz
    assert dominant_hz(out, 16000) == pytest.approx(440.0, abs=1.0)
    assert np.abs(out[1000:-1000]).max() == pytest.approx(0.6 * 32767, rel=0.02)  # level kept
    assert chattts_mono(np.full((1, 3), np.nan)).tolist() == [0.0, 0.0, 0.0]  # NaN never reaches int16


def test_chattts_streamed_pieces_join_like_the_whole():
    wav = tone(330.0, 2.0, CHATTTS_SAMPLE_RATE)
    resampler = StreamResampler(CHATTTS_SAMPLE_RATE, 16000)
    pieces = [resampler.push(chattts_mono(part[None, :])) for part in np.array_split(wav, 4)]
    pieces.append(resampler.flush())
    assert np.array_equal(np.concatenate(pieces), to_output_rate(wav, 16000))


def test_chattts_real_model():
    try:
        import ChatTTS
    except ImportError:
        pytest.skip(
            "chattts is not installed: `pip install chattts` pulls torchaudio, whose PyPI wheel is built for "
            "another torch, and its weights (2Noise/ChatTTS) come from the hub; see README, Optional backends"
        )
    if not ChatTTS.Chat().load(source="huggingface"):
        pytest.skip("ChatTTS weights (2Noise/ChatTTS) are not in the local Hugging Face cache")
    handler = make_handler(ChatTTSHandler, stream=True)
    out = list(handler.process(LLMSentence("Hello, how are you?", "en", Turn())))
    assert out and all(m.sample_rate == 16000 and m.samples.dtype == np.int16 for m in out)


class _StandInChat:
    """ChatTTS.Chat's interface: load(), sample_random_speaker(), infer(), params classes."""

    class RefineTextParams:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    class InferCodeParams(RefineTextParams):
        pass

    loaded_from: ClassVar[list] = []
    have_weights = True

    def __init__(self, logger=None):
        pass

    def load(self, source="local", custom_path=None, device=None, compile=False):
        _StandInChat.loaded_from.append((source, custom_path))
        return _StandInChat.have_weights

    def sample_random_speaker(self):
        return "speaker-embedding"

    def infer(self, text, stream=False, skip_refine_text=False, split_text=True, params_infer_code=None, **kwargs):
        assert params_infer_code.spk_emb == "speaker-embedding" and split_text is False
        wav = tone(440.0, 1.0, CHATTTS_SAMPLE_RATE)
        if not stream:
            return [wav]
        return (part[None, :] for part in np.array_split(wav, 4))  # (batch, samples) pieces


@pytest.fixture
def stand_in_chattts(monkeypatch):
    module = types.ModuleType("ChatTTS")
    module.Chat = _StandInChat
    monkeypatch.setitem(sys.modules, "ChatTTS", module)
    _StandInChat.loaded_from = []
    _StandInChat.have_weights = True
    return _StandInChat


@pytest.mark.parametrize("stream", [True, False])
def test_chattts_handler_streams_or_not(stand_in_chattts, stream):
    handler = make_handler(ChatTTSHandler, stream=stream, gen_kwargs={"temperature": 0.3})
    assert handler.params_infer_code.temperature == 0.3
    out = list(handler.process(LLMSentence("Hello.", "en", Turn())))
    assert all(isinstance(m, TTSAudio) and m.sample_rate == 16000 and m.samples.dtype == np.int16 for m in out)
    assert len(out) >= (4 if stream else 1) and (stream or len(out) == 1)
    joined = np.concatenate([m.samples for m in out])
    assert joined.size == 16000  # 1 s of 24 kHz audio
    assert dominant_hz(joined, 16000) == pytest.approx(440.0, abs=1.0)


def test_chattts_without_weights_says_where_they_were_looked_for(stand_in_chattts, tmp_path):
    stand_in_chattts.have_weights = False
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        make_handler(ChatTTSHandler, source="custom", model_path=str(tmp_path))
    assert stand_in_chattts.loaded_from == [("custom", str(tmp_path))]
