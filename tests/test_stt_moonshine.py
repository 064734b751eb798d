"""The Moonshine STT (transformers), run through its real setup() on a tiny random-weight Moonshine.

The released checkpoints (UsefulSensors/moonshine-tiny, -base) live on the hub,
so the test saves a 1-layer random Moonshine with a small word-level tokenizer
and the real processor layout (Wav2Vec2 feature extractor: raw 16 kHz samples)
and loads that folder through the handler.
"""

from __future__ import annotations

import numpy as np
import pytest

from audio.pcm import int16_to_float, load_audio
from config.parse import parse_config
from conversation.turn import Turn
from tests.conftest import QUESTIONS, make_handler
from utils.messages import SpeechSegment, Transcript

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "MoonshineForConditionalGeneration"):
    pytest.skip("this transformers has no Moonshine (needs >= 4.48)", allow_module_level=True)

from STT.moonshine_handler import MoonshineSTTHandler, token_limit  # noqa: E402

WORDS = ["what", "is", "the", "capital", "of", "france", "paris", "hello", "a", "city"]


def build_tiny_moonshine(folder) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        MoonshineConfig,
        MoonshineForConditionalGeneration,
        PreTrainedTokenizerFast,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Processor,
    )

    vocab = {token: i for i, token in enumerate(["<unk>", "<s>", "</s>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False, return_attention_mask=True
    )
    torch.manual_seed(0)
    config = MoonshineConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        encoder_num_hidden_layers=1,
        decoder_num_hidden_layers=1,
        encoder_num_attention_heads=2,
        decoder_num_attention_heads=2,
        max_position_embeddings=256,
        decoder_start_token_id=1,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = MoonshineForConditionalGeneration(config)
    with torch.no_grad():
        # Tied output layer: zero rows give the special tokens a logit of 0, below the best
        # word's, so the random decoder writes words until the length cap instead of
        # stopping at once (what the random init does otherwise).
        model.get_input_embeddings().weight[:3] = 0.0
    model.save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def moonshine(tmp_path_factory):
    folder = build_tiny_moonshine(tmp_path_factory.mktemp("tiny-moonshine"))
    return make_handler(MoonshineSTTHandler, model_name=folder, device="cpu", gen_kwargs={"num_beams": 1})


def test_process_yields_an_english_transcript_with_timings(moonshine):
    audio = int16_to_float(load_audio(QUESTIONS / "q01.wav"))
    turn = Turn()
    (out,) = list(moonshine.process(SpeechSegment(audio=audio, sample_rate=16000, turn=turn)))
    assert isinstance(out, Transcript) and out.turn is turn
    words = out.text.split()
    assert words and set(words) <= set(WORDS)  # decoded through the saved tokenizer
    assert out.language == "en" and turn.language == "en" and turn.transcript == out.text
    assert turn.elapsed_ms("stt_start", "stt_end") > 0
    # The per-second cap bounds the random decoder's endless output.
    assert len(words) <= token_limit(len(audio), moonshine.tokens_per_second, None)


def test_resampled_input_and_deterministic_output(moonshine):
    audio = int16_to_float(load_audio(QUESTIONS / "q01.wav", target_rate=8000))
    first = list(moonshine.process(SpeechSegment(audio=audio, sample_rate=8000, turn=Turn())))
    second = list(moonshine.process(SpeechSegment(audio=audio, sample_rate=8000, turn=Turn())))
    assert isinstance(first[0], Transcript) and first[0].text == second[0].text


def test_generation_cap_scales_with_duration():
    assert token_limit(16000, 6.5, None) == 7
    assert token_limit(10 * 16000, 6.5, None) == 65
    assert token_limit(10 * 16000, 6.5, 20) == 20  # a hard cap wins when lower
    assert token_limit(100, 6.5, None) == 4  # a floor for very short turns


def test_longer_audio_gets_more_tokens(moonshine):
    short = np.random.default_rng(1).normal(0, 0.05, 16000).astype(np.float32)
    long = np.tile(short, 4)
    assert len(moonshine.transcribe(long).split()) > len(moonshine.transcribe(short).split())


def test_config_wiring():
    config = parse_config(
        ["--stt", "moonshine", "--stt_model_name", "UsefulSensors/moonshine-tiny", "--stt_gen_max_new_tokens", "64"]
    )
    assert config.stt_backend.handler_class() is MoonshineSTTHandler
    kwargs = config.stage_kwargs("stt")
    assert kwargs["model_name"] == "UsefulSensors/moonshine-tiny" and kwargs["tokens_per_second"] == 6.5
    assert kwargs["gen_kwargs"] == {"max_new_tokens": 64, "num_beams": 1}
    assert parse_config(["--stt", "moonshine"]).stage_kwargs("stt")["model_name"] == "UsefulSensors/moonshine-base"
