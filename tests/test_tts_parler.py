"""The parler TTS: wiring everywhere, the model itself where parler_tts imports.

`parler-tts` (0.2.3, the latest) pins transformers==4.46.1 and imports
`transformers.modeling_attn_mask_utils`, which transformers 5 removed, so it
cannot be installed next to this project's transformers.  The tests that run
the model build a tiny random-weight Parler-TTS (T5 text encoder, EnCodec
codec, 2-codebook decoder) and a T5-style tokenizer made with `tokenizers`,
save them with save_pretrained and load them through the handler's real
setup(); they run in an environment that has parler-tts (README, "Optional
backends") and are skipped here with that reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from config.parse import parse_config
from config.registry import lookup
from conversation.turn import Turn
from tests.conftest import make_handler
from TTS.parler_handler import (
    DEFAULT_DESCRIPTION,
    ParlerTTSHandler,
    next_power_of_2,
    pad_lengths,
    per_language,
)
from utils.messages import LLMSentence, TTSAudio

PARLER_SKIP = (
    "parler_tts does not import here: parler-tts 0.2.3 pins transformers==4.46.1 and needs "
    "transformers.modeling_attn_mask_utils (removed in transformers 5); run in a separate environment "
    "with `pip install parler-tts` (README, Optional backends)"
)

CODEC_RATE = 24000  # != 16000, so the stream is resampled
HOP = 64  # codec samples per frame: 375 frames per second


def parler_tts():
    try:
        import parler_tts as module
    except ImportError:
        pytest.skip(PARLER_SKIP)
    return module


def build_tiny_parler(folder: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import EncodecConfig, PreTrainedTokenizerFast, T5Config

    parler = parler_tts()
    corpus = [
        "Jenny speaks at a moderate pace with a slightly expressive tone.",
        "Daniel speaks in a very close-sounding environment with very clear audio quality.",
        "Hello there, how are you today? The capital of France is Paris.",
    ] * 4
    # T5-style: pad 0, eos 1, unk 2, "</s>" appended to every text.
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=150, special_tokens=["<pad>", "</s>", "<unk>"]))
    bpe.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")

    text_encoder = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, decoder_start_token_id=0
    )
    codec = EncodecConfig(
        sampling_rate=CODEC_RATE,
        audio_channels=1,
        num_filters=4,
        hidden_size=8,
        codebook_size=32,
        codebook_dim=8,
        upsampling_ratios=[8, 8],
        num_residual_layers=1,
        num_lstm_layers=1,
        target_bandwidths=[7.5],  # 7.5 kbps at 375 frames/s: 2 codebooks
        normalize=False,
    )
    # Codec ids 0..31, 32 = end of audio (and pad), 33 = start (an input id only).
    decoder = parler.ParlerTTSDecoderConfig(
        vocab_size=33,
        max_position_embeddings=512,
        num_hidden_layers=1,
        ffn_dim=32,
        num_attention_heads=2,
        hidden_size=16,
        num_codebooks=2,
        pad_token_id=32,
        eos_token_id=32,
        bos_token_id=33,
    )
    config = parler.ParlerTTSConfig.from_sub_models_config(
        text_encoder, codec, decoder, vocab_size=len(tokenizer), pad_token_id=32, decoder_start_token_id=33
    )
    torch.manual_seed(0)
    model = parler.ParlerTTSForConditionalGeneration(config).eval()
    generation = model.generation_config
    generation.pad_token_id = generation.eos_token_id = 32
    generation.bos_token_id = generation.decoder_start_token_id = 33
    generation.do_sample = True
    generation.max_length = 400
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_parler(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parler") / "tiny-parler"
    build_tiny_parler(folder)
    return folder


@pytest.fixture(scope="module")
def handler(tiny_parler) -> ParlerTTSHandler:
    return make_handler(
        ParlerTTSHandler,
        model_name=str(tiny_parler),
        play_steps_s=0.1,  # 37 frames: about 2400 codec samples a piece
        gen_kwargs={"min_new_tokens": 150, "max_new_tokens": 160},
    )


# --- without parler_tts --------------------------------------------------------------
def test_power_of_two_padding_lengths():
    assert [next_power_of_2(n) for n in (0, 1, 2, 3, 4, 5, 17, 64, 65)] == [1, 1, 2, 4, 4, 8, 32, 64, 128]
    assert pad_lengths(128) == [4, 8, 16, 32, 64, 128]
    assert pad_lengths(100) == [4, 8, 16, 32, 64]


def test_description_and_speaker_tables():
    assert per_language("Jenny") == {"default": "Jenny"}
    assert per_language('{"default": "Jenny", "fr": "Daniel"}') == {"default": "Jenny", "fr": "Daniel"}
    assert per_language({"fr": "Daniel"}, default="Jenny") == {"fr": "Daniel", "default": "Jenny"}
    assert per_language(DEFAULT_DESCRIPTION) == {"default": DEFAULT_DESCRIPTION}  # "{speaker} ..." is no JSON
    with pytest.raises(ValueError, match="default"):
        per_language({"fr": "Daniel"})


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "parler_tts", None)  # import parler_tts -> ImportError
    with pytest.raises(ImportError, match="pip install parler-tts"):
        make_handler(ParlerTTSHandler, model_name="unused")


def test_flags_reach_the_handler():
    config = parse_config(
        [
            "--tts", "parler",
            "--tts_model_name", "/models/parler",
            "--tts_compile_mode", "default",
            "--tts_play_steps_s", "0.5",
            "--tts_speaker", '{"default": "Jenny", "fr": "Daniel"}',
            "--tts_gen_max_new_tokens", "256",
        ]
    )  # fmt: skip
    assert config.tts_backend is lookup("tts", "parler")
    assert config.tts_backend.handler_class() is ParlerTTSHandler
    kwargs = config.stage_kwargs("tts")
    assert kwargs["model_name"] == "/models/parler" and kwargs["compile_mode"] == "default"
    assert kwargs["play_steps_s"] == 0.5 and kwargs["max_prompt_pad_length"] == 128
    assert per_language(kwargs["speaker"]) == {"default": "Jenny", "fr": "Daniel"}
    assert kwargs["gen_kwargs"] == {"min_new_tokens": 64, "max_new_tokens": 256}
    assert kwargs["output_sample_rate"] == 16000


# --- with parler_tts: a tiny random Parler-TTS ----------------------------------------
def test_one_sentence_streams_several_int16_chunks(handler):
    turn = Turn()
    out = list(handler.process(LLMSentence("Hello there, how are you today?", "en", turn)))
    assert len(out) >= 3, "a 0.4 s sentence at 0.1 s per piece comes in several chunks"
    assert all(isinstance(m, TTSAudio) and m.sample_rate == 16000 for m in out)
    assert all(m.samples.dtype == np.int16 and m.samples.ndim == 1 and m.samples.size for m in out)
    seconds = sum(m.samples.size for m in out) / 16000
    assert 0.2 < seconds < 160 / (CODEC_RATE / HOP) + 0.05  # at most max_new_tokens frames
    assert turn.elapsed_ms("tts_start", "tts_first_audio") >= 0


def test_pieces_arrive_while_generating(handler):
    """The first piece is handed over before generation ends (it is a stream,
    not one array cut up afterwards): count decoder steps seen at each piece."""
    steps = [0]
    decoder_forward = handler.model.decoder.forward

    def counting_forward(*args, **kwargs):
        steps[0] += 1
        return decoder_forward(*args, **kwargs)

    handler.model.decoder.forward = counting_forward
    try:
        seen = [steps[0] for _ in handler.stream("Hello there, how are you today?", "en")]
    finally:
        handler.model.decoder.forward = decoder_forward
    assert len(seen) >= 3
    assert seen[0] < seen[-1] and seen == sorted(seen)


def test_leaving_the_stream_early_stops_generation(handler, monkeypatch):
    """A dropped turn closes the generator: generation stops at the next step
    instead of running to max_new_tokens in the background."""
    monkeypatch.setitem(handler.gen_kwargs, "min_new_tokens", 380)
    monkeypatch.setitem(handler.gen_kwargs, "max_new_tokens", 390)
    steps = [0]
    decoder_forward = handler.model.decoder.forward

    def counting_forward(*args, **kwargs):
        steps[0] += 1
        return decoder_forward(*args, **kwargs)

    monkeypatch.setattr(handler.model.decoder, "forward", counting_forward)
    pieces = handler.stream("Hello there, how are you today?", "en")
    next(pieces)
    pieces.close()  # joins the worker
    assert steps[0] < 200  # one piece is 37 steps; 390 were asked for


def test_streamed_audio_is_resampled_from_the_codec_rate(handler):
    pieces = list(handler.stream("The capital of France is Paris.", "en"))
    raw = sum(p.size for p in pieces)
    # same seed: same audio through process()
    out = list(handler.process(LLMSentence("The capital of France is Paris.", "en", Turn())))
    total = sum(m.samples.size for m in out)
    assert handler.model_sample_rate == CODEC_RATE
    assert abs(total - raw * 16000 / CODEC_RATE) <= 2


def test_description_follows_the_sentence_language(handler):
    seen = []
    generate = handler.model.generate

    def recording_generate(**kwargs):
        seen.append(kwargs["input_ids"][0].tolist())
        return generate(**kwargs)

    handler.model.generate = recording_generate
    try:
        list(handler.process(LLMSentence("Bonjour à tous.", "fr-auto", Turn())))
        list(handler.process(LLMSentence("Hello.", None, Turn())))
    finally:
        handler.model.generate = generate
    french = handler.description_for("fr")
    assert french.startswith("Daniel speaks") and handler.description_for(None).startswith("Jenny speaks")
    assert seen[0] == handler.description_tokenizer(french).input_ids
    assert seen[1] == handler.description_tokenizer(handler.description_for("en")).input_ids


def test_prompt_is_padded_to_a_power_of_two_when_compiled(handler):
    n_tokens = len(handler.prompt_tokenizer("Hello there, how are you today?").input_ids)
    assert handler.prompt_length("Hello there, how are you today?") == n_tokens  # eager: no padding
    assert n_tokens < 32
    inputs = handler.model_inputs("Hello there, how are you today?", "en", pad_to=32)
    assert inputs["prompt_input_ids"].shape[-1] == 32
    assert int(inputs["prompt_attention_mask"].sum()) == n_tokens
    handler.compile_mode = "default"
    try:
        assert handler.prompt_length("Hello there, how are you today?") == next_power_of_2(n_tokens)
        assert handler.prompt_length("Hi.") == 4  # never below the shortest warmed-up length
    finally:
        handler.compile_mode = None


def test_per_language_description_from_flags(tiny_parler):
    config = parse_config(
        [
            "--tts", "parler",
            "--tts_model_name", str(tiny_parler),
            "--tts_description", '{"default": "{speaker} speaks slowly.", "de": "{speaker} spricht schnell."}',
            "--tts_speaker", '{"default": "Jenny", "de": "Nicole"}',
            "--tts_gen_min_new_tokens", "40",
            "--tts_gen_max_new_tokens", "50",
        ]
    )  # fmt: skip
    built = make_handler(ParlerTTSHandler, **config.stage_kwargs("tts"))
    assert built.description_for("de") == "Nicole spricht schnell."
    assert built.description_for("es") == "Jenny speaks slowly."
    out = list(built.process(LLMSentence("Guten Tag.", "de", Turn())))
    assert out and all(m.samples.dtype == np.int16 for m in out)


def test_generation_error_reaches_the_stage_instead_of_hanging(handler, monkeypatch):
    """generate() fails in its worker thread: the reader is released and the error re-raised."""
    monkeypatch.setitem(handler.gen_kwargs, "no_such_generate_argument", 1)
    with pytest.raises(ValueError, match="no_such_generate_argument"):
        list(handler.process(LLMSentence("Hello.", "en", Turn())))


@pytest.mark.slow
def test_compiled_model_is_warmed_on_padded_lengths_and_not_recompiled(tiny_parler):
    import torch

    compiled = make_handler(
        ParlerTTSHandler,
        model_name=str(tiny_parler),
        compile_mode="default",
        max_prompt_pad_length=8,  # warm-up on 8- and 4-token prompts
        play_steps_s=0.1,
        gen_kwargs={"min_new_tokens": 60, "max_new_tokens": 70},
    )
    assert compiled.model.generation_config.cache_implementation == "static"
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs > 0  # the warm-up compiled
    for text in ("Hi.", "Hello there, how are you?"):  # 4 and 8 tokens once padded
        assert compiled.prompt_length(text) in (4, 8)
        out = list(compiled.process(LLMSentence(text, "en", Turn())))
        assert len(out) >= 2 and all(m.samples.dtype == np.int16 and m.sample_rate == 16000 for m in out)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs  # served by warmed-up graphs
