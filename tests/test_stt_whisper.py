"""The transformers Whisper STT, run through its real setup() on a tiny random-weight Whisper.

No transformers Whisper checkpoint is reachable offline, so the tests build one:
the real multilingual Whisper tokenizer (it ships with the packaged faster-whisper
model) plus a 2-layer, 64-wide random model with the real special-token layout,
saved with save_pretrained and loaded by the handler from that folder.  Its text is
gibberish; what is checked is everything around it: loading, features, language
handling, generation options, long-form input, message types and timings.
"""

from __future__ import annotations

import numpy as np
import pytest

from audio.pcm import int16_to_float, load_audio
from config.parse import ConfigError, parse_config
from conversation.chat import language_instruction
from conversation.turn import Turn
from models.packaged import WHISPER_MODELS
from tests.conftest import QUESTIONS, make_handler
from utils.messages import EndOfResponse, SpeechSegment, Transcript

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from STT.whisper_stt_handler import (  # noqa: E402  (after the importorskip guards)
    AUTO_SUFFIX,
    SUPPORTED_LANGUAGES,
    WhisperSTTHandler,
    choose_language,
)

GEN = {"max_new_tokens": 8}  # random weights never stop on their own: keep it short


def packaged_tokenizer_json(alias: str) -> str:
    packaged = WHISPER_MODELS[alias]
    if packaged.ready_folder is not None:
        return str(packaged.ready_folder.path() / "tokenizer.json")
    (side,) = [f for f in packaged.side_files if f.relative_path.endswith("tokenizer.json")]
    return str(side.path())


def build_tiny_whisper(folder, tokenizer_json: str, multilingual: bool) -> str:
    """A random 2-layer Whisper with the real tokenizer and generation config layout."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    tokenizer = WhisperTokenizer(tokenizer_file=tokenizer_json)
    ids = tokenizer.convert_tokens_to_ids
    eot, sot, translate = ids("<|endoftext|>"), ids("<|startoftranscript|>"), ids("<|translate|>")
    no_timestamps = ids("<|notimestamps|>")
    # Language tokens sit between <|startoftranscript|> and <|translate|> (English-only
    # vocabularies keep them too, but their models never use them).
    lang_to_id = {token: i for token, i in tokenizer.get_added_vocab().items() if sot < i < translate}
    assert "<|fr|>" in lang_to_id
    vocab_size = no_timestamps + 1 + 1501  # + the 1501 timestamp tokens <|0.00|> .. <|30.00|>

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
    )
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        no_timestamps_token_id=no_timestamps,
        prev_sot_token_id=ids("<|startofprev|>"),
        is_multilingual=multilingual,
        lang_to_id=lang_to_id if multilingual else {},
        task_to_id={"translate": translate, "transcribe": ids("<|transcribe|>")} if multilingual else {},
        begin_suppress_tokens=[220, eot],
        suppress_tokens=[],
    )
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(
        folder
    )
    return str(folder)


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> str:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"), packaged_tokenizer_json("whisper-base"), True)


@pytest.fixture(scope="module")
def tiny_whisper_en(tmp_path_factory) -> str:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper-en"), packaged_tokenizer_json("tiny.en"), False)


@pytest.fixture(scope="module")
def question() -> np.ndarray:
    return int16_to_float(load_audio(QUESTIONS / "q01.wav"))


@pytest.fixture(scope="module")
def forced_fr(tiny_whisper):
    return make_handler(WhisperSTTHandler, model_name=tiny_whisper, device="cpu", language="fr", gen_kwargs=GEN)


def test_forced_language_yields_a_transcript_with_timings(forced_fr, question):
    turn = Turn()
    (out,) = list(forced_fr.process(SpeechSegment(audio=question, sample_rate=16000, turn=turn)))
    assert isinstance(out, Transcript) and out.turn is turn
    assert isinstance(out.text, str) and out.text  # gibberish from random weights, but text
    assert out.language == "fr" and turn.language == "fr"  # as given: no "-auto"
    assert turn.transcript == out.text
    assert turn.elapsed_ms("stt_start", "stt_end") > 0
    # compile_mode=None: the plain dynamic cache, no compilation, float32 on CPU.
    assert forced_fr.compile_mode is None
    assert forced_fr.model.generation_config.cache_implementation is None
    assert forced_fr.model.dtype == torch.float32 and forced_fr.device == "cpu"


def decoder_prompts(handler, monkeypatch) -> list[list[str]]:
    """The tokens the decoder is given at each step of the next generations."""
    seen: list[list[str]] = []
    real_forward = handler.model.forward

    def forward(*args, **kwargs):
        ids = kwargs.get("decoder_input_ids")
        if ids is not None:
            seen.append(handler.processor.tokenizer.convert_ids_to_tokens(ids[0].tolist()))
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(handler.model, "forward", forward)
    return seen


def test_decoding_is_deterministic_and_follows_the_forced_language(forced_fr, question, tiny_whisper, monkeypatch):
    """The forced language is the one the decoder is prompted with, not only
    the label the handler puts on the transcript."""
    text, language = forced_fr.transcribe(question)
    assert forced_fr.transcribe(question) == (text, language)
    german = make_handler(WhisperSTTHandler, model_name=tiny_whisper, device="cpu", language="de", gen_kwargs=GEN)
    for handler, forced, other in ((forced_fr, "<|fr|>", "<|de|>"), (german, "<|de|>", "<|fr|>")):
        prompts = decoder_prompts(handler, monkeypatch)
        handler.transcribe(question)
        first = prompts[0]
        assert forced in first and other not in first, first
        assert first.index(forced) == first.index("<|startoftranscript|>") + 1


def test_audio_at_another_rate_is_resampled(forced_fr):
    audio = int16_to_float(load_audio(QUESTIONS / "q01.wav", target_rate=8000))
    (at_8k,) = list(forced_fr.process(SpeechSegment(audio=audio, sample_rate=8000, turn=Turn())))
    assert isinstance(at_8k, Transcript) and at_8k.text


def test_auto_mode_detects_among_the_supported_languages(tiny_whisper, question):
    handler = make_handler(WhisperSTTHandler, model_name=tiny_whisper, device="cpu", language="auto", gen_kwargs=GEN)
    assert handler.detect and handler.last_language is None
    with torch.inference_mode():
        detected, _ = handler.detect_language(handler.features(question)[0])
    assert detected is not None and len(detected) in (2, 3)  # a Whisper code such as "fr" or "haw"
    expected, _ = choose_language(detected, None)
    turn = Turn()
    (out,) = list(handler.process(SpeechSegment(audio=question, sample_rate=16000, turn=turn)))
    assert isinstance(out, Transcript) and out.text
    assert out.language == expected + AUTO_SUFFIX
    assert out.language.removesuffix(AUTO_SUFFIX) in SUPPORTED_LANGUAGES
    assert turn.language == expected  # metrics carry the bare code
    assert handler.last_language == expected


def test_unsupported_detection_falls_back_to_the_last_language(tiny_whisper, question, monkeypatch):
    handler = make_handler(WhisperSTTHandler, model_name=tiny_whisper, device="cpu", language="auto", gen_kwargs=GEN)
    real_detect = handler.detect_language
    guesses = iter(["de", "xx", "ja", "xx"])

    def detect(features):
        _, encoder_outputs = real_detect(features)  # the real encoder pass, a scripted guess
        return next(guesses), encoder_outputs

    monkeypatch.setattr(handler, "detect_language", detect)
    heard = [handler.transcribe(question)[1] for _ in range(4)]
    assert heard == ["de-auto", "de-auto", "ja-auto", "ja-auto"]
    # The fallback transcript is decoded in the fallback language.
    forced_de = make_handler(WhisperSTTHandler, model_name=tiny_whisper, device="cpu", language="de", gen_kwargs=GEN)
    monkeypatch.setattr(handler, "detect_language", lambda f: ("xx", real_detect(f)[1]))
    handler.last_language = "de"
    assert handler.transcribe(question)[0] == forced_de.transcribe(question)[0]


def test_choose_language_rules():
    assert choose_language("fr", "de") == ("fr", True)
    assert choose_language("xx", "de") == ("de", False)
    assert choose_language("cs", None) == ("en", False)  # nothing heard yet: English
    assert choose_language(None, "ko") == ("ko", False)
    assert len(SUPPORTED_LANGUAGES) == 12


def test_auto_suffix_is_understood_by_the_llm_prompt():
    assert (
        language_instruction("fr-auto")
        == language_instruction("fr")
        == "(I speak French: answer me in French, do not translate.) "
    )
    assert language_instruction("en-auto") == ""


def test_english_only_model_never_detects(tiny_whisper_en, question):
    handler = make_handler(
        WhisperSTTHandler,
        model_name=tiny_whisper_en,
        device="cpu",
        language="auto",
        gen_kwargs={**GEN, "task": "transcribe"},  # refused by English-only models: dropped
    )
    assert not handler.detect and not handler.multilingual
    text, language = handler.transcribe(question)
    assert language == "en" and isinstance(text, str) and text


def test_over_30_seconds_is_decoded_long_form_not_cut(forced_fr, question):
    long_audio = np.concatenate([question] * int(np.ceil(35 * 16000 / len(question))))
    assert len(long_audio) > 30 * 16000
    features, mask = forced_fr.features(long_audio)
    assert mask is not None and features.shape[-1] > 3000  # every frame kept
    text, language = forced_fr.transcribe(long_audio)
    assert language == "fr" and text


def test_generation_options_reach_generate(tiny_whisper, question):
    handler = make_handler(
        WhisperSTTHandler,
        model_name=tiny_whisper,
        device="cpu",
        language="es",
        gen_kwargs={"max_new_tokens": 4, "num_beams": 2, "return_timestamps": True, "task": "translate"},
    )
    assert handler.gen_kwargs["num_beams"] == 2
    text, language = handler.transcribe(question)
    assert language == "es" and isinstance(text, str)


def test_bad_compile_mode_is_refused_before_loading(tiny_whisper):
    with pytest.raises(ValueError, match="compile_mode"):
        make_handler(WhisperSTTHandler, model_name=tiny_whisper, device="cpu", compile_mode="fastest")


@pytest.mark.slow
def test_compiled_static_cache_gives_the_same_text(tiny_whisper, forced_fr, question):
    """torch.compile with a static KV cache (CPU inductor here: ~30 s with a cold
    compile cache on 2 cores): same greedy text as the eager model."""
    from torch._dynamo.utils import counters

    counters.clear()
    compiled = make_handler(
        WhisperSTTHandler, model_name=tiny_whisper, device="cpu", language="fr", compile_mode="default", gen_kwargs=GEN
    )
    assert compiled.model.generation_config.cache_implementation == "static"
    assert counters["stats"]["unique_graphs"] > 0  # the warm-up really compiled
    assert compiled.transcribe(question) == forced_fr.transcribe(question)


def test_config_wiring():
    config = parse_config(
        [
            "--stt", "whisper",
            "--stt_model_name", "openai/whisper-large-v3-turbo",
            "--stt_compile_mode", "reduce-overhead",
            "--stt_torch_dtype", "bfloat16",
            "--language", "auto",
            "--stt_gen_num_beams", "3",
        ]
    )  # fmt: skip
    assert config.stt_backend.name == "whisper"
    assert config.stt_backend.handler_class() is WhisperSTTHandler
    kwargs = config.stage_kwargs("stt")
    assert kwargs["model_name"] == "openai/whisper-large-v3-turbo"
    assert kwargs["compile_mode"] == "reduce-overhead" and kwargs["torch_dtype"] == "bfloat16"
    assert kwargs["language"] == "auto" and kwargs["device"] == "auto"
    assert kwargs["gen_kwargs"] == {
        "max_new_tokens": 128,
        "num_beams": 3,
        "return_timestamps": False,
        "task": "transcribe",
    }
    defaults = parse_config(["--stt", "whisper"]).stage_kwargs("stt")
    assert defaults["model_name"] == "distil-whisper/distil-large-v3" and defaults["compile_mode"] is None
    assert parse_config(["--stt", "whisper", "--device", "cuda"]).stt.stt_device == "cuda"
    with pytest.raises(ConfigError, match="stt_compute_type"):  # a faster-whisper flag
        parse_config(["--stt", "whisper", "--stt_compute_type", "int8"])


def test_silence_gives_end_of_response_when_nothing_is_decoded(forced_fr, monkeypatch):
    monkeypatch.setattr(forced_fr, "transcribe", lambda audio: ("", "fr"))
    turn = Turn()
    (out,) = list(forced_fr.process(SpeechSegment(np.zeros(16000, np.float32), 16000, turn)))
    assert isinstance(out, EndOfResponse) and turn.language == "fr"
