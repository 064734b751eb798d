"""The facebookMMS TTS on tiny random-weight VITS checkpoints built here.

Each language's checkpoint is a real `VitsModel` + `VitsTokenizer` saved with
save_pretrained in an `mms-tts-<iso3>` folder, and the handler loads them
through its real setup() with `model_name_template` pointing at those folders,
exactly as it would load `facebook/mms-tts-<iso3>` from the hub.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from config.parse import parse_config
from config.registry import lookup
from conversation.turn import Turn
from tests.conftest import drain, make_handler
from utils.messages import EndOfStream, LLMSentence, TTSAudio

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from TTS.facebookmms_handler import WHISPER_TO_MMS, FacebookMMSTTSHandler, mms_code  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz '.,!?-"
ACCENTS = "àâçéèêëîïôûùüÿœ"


def build_voice(folder: Path, alphabet: str, sampling_rate: int, seed: int, is_uroman: bool = False) -> None:
    """A ~20k-parameter VITS with MMS's layout: character vocab, blank between characters."""
    folder.mkdir(parents=True)
    vocab = {symbol: index for index, symbol in enumerate(["<pad>", "<unk>", *alphabet])}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = transformers.VitsTokenizer(
        str(folder / "vocab.json"), phonemize=False, add_blank=True, is_uroman=is_uroman
    )
    config = transformers.VitsConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=17,
        upsample_initial_channel=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1]],
        duration_predictor_filter_channels=16,
        duration_predictor_num_flows=1,
        depth_separable_num_layers=1,
        prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        sampling_rate=sampling_rate,
    )
    torch.manual_seed(seed)
    transformers.VitsModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> Path:
    """English at 16 kHz (like MMS), French at 22.05 kHz (so resampling is exercised), Spanish,
    and Korean, which like MMS's non-Latin-script voices was "trained" on romanized text."""
    root = tmp_path_factory.mktemp("mms")
    build_voice(root / "mms-tts-eng", LETTERS, 16000, seed=1)
    build_voice(root / "mms-tts-fra", LETTERS + ACCENTS, 22050, seed=2)
    build_voice(root / "mms-tts-spa", LETTERS + "ñáíóú", 16000, seed=3)
    build_voice(root / "mms-tts-kor", LETTERS, 16000, seed=4, is_uroman=True)
    return root


@pytest.fixture(scope="module")
def handler(voices) -> FacebookMMSTTSHandler:
    return make_handler(
        FacebookMMSTTSHandler, model_name_template=str(voices / "mms-tts-{lang}"), language="en", max_loaded_models=4
    )


def count_calls(model) -> list[int]:
    calls = [0]
    model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_language_codes_map_whisper_to_mms():
    assert len(WHISPER_TO_MMS) >= 40
    assert mms_code("en") == "eng" and mms_code("fr") == "fra" and mms_code("de") == "deu"
    assert mms_code("fr-auto") == "fra"  # the STT's marker for a detected language
    assert mms_code("fra") == "fra"  # an MMS code passes through
    assert mms_code("xx") is None and mms_code(None) is None
    assert all(len(code.split("-")[0]) == 3 for code in WHISPER_TO_MMS.values())


def test_english_sentence_is_int16_at_16k(handler):
    turn = Turn()
    out = list(handler.process(LLMSentence("Hello there, how are you?", "en", turn)))
    assert len(out) == 1 and isinstance(out[0], TTSAudio)
    audio = out[0]
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.int16 and audio.samples.ndim == 1
    # 25 characters + blanks, 16 samples per frame, >= 1 frame per token
    assert audio.samples.size >= 16 * 25
    assert np.abs(audio.samples).max() > 0
    assert audio.text == "Hello there, how are you?"
    assert turn.elapsed_ms("tts_start", "tts_first_audio") >= 0


def test_same_sentence_same_audio(handler):
    first = handler.synthesize("Same words twice.", "en")
    second = handler.synthesize("Same words twice.", "en")
    assert np.array_equal(first, second)  # seeded: VITS noise is reproducible


def test_french_sentence_loads_the_french_voice(handler, voices):
    eng_calls = count_calls(handler.voices["eng"].model)
    out = list(handler.process(LLMSentence("Ça va très bien, merci.", "fr-auto", Turn())))
    assert "fra" in handler.voices and handler.voices["fra"].name == str(voices / "mms-tts-fra")
    assert eng_calls == [0]  # spoken by the French model, not the English one
    (audio,) = out
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.int16
    # The French model speaks at 22.05 kHz: the same (seeded) waveform, resampled to 16 kHz.
    fra = handler.voices["fra"]
    assert fra.sample_rate == 22050
    torch.manual_seed(0)
    with torch.inference_mode():
        native = fra.model(**fra.tokenizer("Ça va très bien, merci.", return_tensors="pt")).waveform[0]
    assert abs(audio.samples.size - native.shape[-1] * 16000 / 22050) <= 1
    fra_calls = count_calls(fra.model)
    handler.synthesize("Encore une phrase.", "fr")
    assert fra_calls == [1]  # cached: not loaded again


def test_unknown_language_falls_back_to_default(handler, caplog):
    eng_calls = count_calls(handler.voices["eng"].model)
    with caplog.at_level(logging.WARNING, logger="TTS.facebookmms_handler"):
        (audio,) = handler.process(LLMSentence("Hello again.", "xx", Turn()))
    assert audio.samples.size > 0 and eng_calls == [1]
    assert "no voice for language 'xx'" in caplog.text
    assert "xx" not in handler.voices


def test_missing_checkpoint_falls_back_and_is_not_retried(handler, voices, caplog):
    # German has an MMS code (deu) but no checkpoint folder here.
    eng_calls = count_calls(handler.voices["eng"].model)
    with caplog.at_level(logging.WARNING, logger="TTS.facebookmms_handler"):
        (audio,) = handler.process(LLMSentence("Guten Tag.", "de", Turn()))
        handler.synthesize("Noch einmal.", "de")
    assert audio.samples.size > 0 and eng_calls == [2]
    assert caplog.text.count("cannot load MMS-TTS voice") == 1
    assert str(voices / "mms-tts-deu") in caplog.text
    assert "deu" in handler.unavailable and "deu" not in handler.voices


def test_no_language_uses_default(handler):
    eng_calls = count_calls(handler.voices["eng"].model)
    (audio,) = handler.process(LLMSentence("No language given.", None, Turn()))
    assert audio.samples.size > 0 and eng_calls == [1]


def test_non_latin_script_is_romanized_for_uroman_voices(handler):
    hangul = handler.synthesize("안녕하세요", "ko")
    assert handler.voices["kor"].tokenizer.is_uroman
    assert hangul.size > 0
    assert np.array_equal(hangul, handler.synthesize("annyeonghaseyo", "ko"))  # seeded: the same text


def test_uroman_voice_without_uroman_is_reported(voices, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "uroman", None)
    with caplog.at_level(logging.WARNING, logger="TTS.facebookmms_handler"):
        make_handler(FacebookMMSTTSHandler, model_name_template=str(voices / "mms-tts-{lang}"), language="ko")
    assert "pip install uroman" in caplog.text and "mms-tts-kor" in caplog.text


def test_least_recently_used_voice_is_dropped_default_kept(voices):
    small = make_handler(FacebookMMSTTSHandler, model_name_template=str(voices / "mms-tts-{lang}"), max_loaded_models=2)
    small.synthesize("Bonjour.", "fr")
    assert list(small.voices) == ["eng", "fra"]
    small.synthesize("Hola.", "es")
    assert list(small.voices) == ["eng", "spa"]  # fra dropped, eng (the default) kept
    small.synthesize("Bonjour.", "fr")  # loaded again on demand
    assert set(small.voices) == {"eng", "fra"}


def test_runs_as_a_pipeline_stage(voices):
    stage = make_handler(FacebookMMSTTSHandler, model_name_template=str(voices / "mms-tts-{lang}"), language="fr")
    assert list(stage.voices) == ["fra"]
    turn = Turn()
    stage.queue_in.put(LLMSentence("Première phrase.", "fr", turn))
    stage.queue_in.put(LLMSentence("Second sentence.", "en", turn))
    stage.queue_in.put(EndOfStream())
    stage.run()
    out = drain(stage.queue_out)
    assert [type(m) for m in out] == [TTSAudio, TTSAudio, EndOfStream]
    assert [m.text for m in out[:2]] == ["Première phrase.", "Second sentence."]
    assert set(stage.voices) == {"fra", "eng"}


def test_bad_setup_is_reported(voices):
    with pytest.raises(ValueError, match="no MMS-TTS voice"):
        make_handler(FacebookMMSTTSHandler, model_name_template=str(voices / "mms-tts-{lang}"), language="xx")
    with pytest.raises(ValueError, match="must contain"):
        make_handler(FacebookMMSTTSHandler, model_name_template=str(voices / "mms-tts-eng"))
    with pytest.raises(OSError):  # the default voice has nothing to fall back to
        make_handler(FacebookMMSTTSHandler, model_name_template=str(voices / "missing-{lang}"))


def test_flags_reach_the_handler(voices):
    config = parse_config(
        [
            "--tts", "facebookMMS",
            "--tts_model_name_template", str(voices / "mms-tts-{lang}"),
            "--tts_language", "fr",
            "--tts_speaking_rate", "1.5",
            "--tts_seed", "-1",
        ]
    )  # fmt: skip
    assert config.tts_backend is lookup("tts", "facebookMMS")
    kwargs = config.stage_kwargs("tts")
    assert kwargs["model_name_template"] == str(voices / "mms-tts-{lang}")
    assert kwargs["language"] == "fr" and kwargs["speaking_rate"] == 1.5 and kwargs["seed"] == -1
    assert kwargs["output_sample_rate"] == 16000
    built = make_handler(config.tts_backend.handler_class(), **kwargs)
    assert built.voices["fra"].model.speaking_rate == 1.5
    (audio,) = built.process(LLMSentence("Vite.", "fr", Turn()))
    assert audio.samples.dtype == np.int16 and audio.samples.size > 0


# --- no network, no cached voice: fail fast with the offline hint -----------------------

HUB_LOAD = """
import queue, sys, threading, time
import torch
from transformers import AutoTokenizer, VitsModel  # imported before the clock starts: slow on a busy machine
from TTS.facebookmms_handler import FacebookMMSTTSHandler
began = time.perf_counter()
try:
    FacebookMMSTTSHandler(threading.Event(), queue.Queue(), queue.Queue())
except OSError as error:
    print(f"{time.perf_counter() - began:.1f} s: {error}")
"""


def load_from_an_unreachable_hub(tmp_path, **env_changes: str) -> str:
    """A child process whose hub refuses connections and whose cache is empty."""
    import os
    import subprocess

    from tests.conftest import REPO

    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT="http://127.0.0.1:9", **env_changes)
    result = subprocess.run(
        [sys.executable, "-c", HUB_LOAD], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    return result.stdout.strip()


def test_no_network_and_no_cached_voice_fails_fast_with_the_offline_hint(tmp_path):
    """Without HF_HUB_OFFLINE, from_pretrained retried a refused hub for 40 s."""
    said = load_from_an_unreachable_hub(tmp_path)
    took, _, message = said.partition(" s: ")
    assert float(took) < 10, said
    assert "facebook/mms-tts-eng is not in the local cache" in message
    assert "cannot be reached (http://127.0.0.1:9: Connection refused)" in message
    assert "HF_HUB_OFFLINE=1" in message


def test_offline_and_no_cached_voice_says_so(tmp_path):
    said = load_from_an_unreachable_hub(tmp_path, HF_HUB_OFFLINE="1")
    assert "facebook/mms-tts-eng is not in the local cache and HF_HUB_OFFLINE is set" in said
