"""Piper voices by name, fetched from their hub on first use and kept in the cache.

Piper's voices live in the `rhasspy/piper-voices` repository of the Hugging
Face hub, one folder per voice (`nl/nl_NL/mls/medium/nl_NL-mls-medium.onnx`
and its `.onnx.json`), listed with each file's size and MD5 in the
repository's `voices.json`.  `voice_path("nl_NL-mls-medium")`:

- returns the cached copy when one is there (`$S2S_CACHE_DIR/piper-voices/`),
  after checking each file's size against the manifest written when it was
  fetched: a cached voice works offline, for ever;
- else, unless HF_HUB_OFFLINE is set or the hub does not answer within a few
  seconds (`models.hub`'s rules), looks the voice up in `voices.json`,
  downloads its files into a temporary name, checks size and MD5, and only
  then moves them into place, so an interrupted or corrupted download is
  never trusted;
- else raises `VoiceNotInstalledError`, one line naming the command that
  fetches the voice once (`python -m models.piper_voices NAME`) or the local
  file to pass instead.

`HF_ENDPOINT` moves the hub (a mirror, or a local server in the tests).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from models.hub import hub_endpoint, hub_offline, hub_problem
from models.packaged import ModelNotInstalledError, cache_root, write_checked

logger = logging.getLogger(__name__)

REPOSITORY = "rhasspy/piper-voices"
REVISION = "main"
INDEX = "voices.json"
DOWNLOAD_TIMEOUT_S = 30.0
_BLOCK = 1024 * 1024
# <language>_<REGION>-<name>-<quality>, e.g. nl_NL-mls-medium, en_GB-alan-low, cs_CZ-jirka-medium.
VOICE_NAME = re.compile(
    r"^(?P<family>[a-z]{2,3})_(?P<region>[A-Z]{2})-(?P<name>[\w]+)-(?P<quality>x_low|low|medium|high)$"
)


class VoiceNotInstalledError(ModelNotInstalledError):
    """A named voice is neither cached nor fetchable now; the message says how to get it."""


def is_voice_name(name: str) -> bool:
    return bool(VOICE_NAME.match(name))


def voices_dir() -> Path:
    return cache_root() / "piper-voices"


def fetch_command(name: str) -> str:
    return f"python -m models.piper_voices {name}"


def _url(path: str) -> str:
    return f"{hub_endpoint()}/{REPOSITORY}/resolve/{REVISION}/{path}"


def _manifest_path(name: str) -> Path:
    return voices_dir() / name / "manifest.json"


def cached_voice(name: str) -> Path | None:
    """The cached voice's .onnx when all its files are there at their recorded sizes."""
    manifest_path = _manifest_path(name)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    folder = manifest_path.parent
    for file_name, facts in manifest.get("files", {}).items():
        path = folder / file_name
        if not path.is_file() or path.stat().st_size != facts["size_bytes"]:
            logger.warning("cached Piper voice %s is incomplete (%s): fetching it again", name, file_name)
            return None
    model = folder / f"{name}.onnx"
    return model if model.is_file() else None


def _get(url: str, timeout_s: float) -> Any:
    return urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "s2s"}), timeout=timeout_s)


def _index(timeout_s: float) -> dict[str, Any]:
    """The hub's voices.json (what voices exist, their files' sizes and MD5s)."""
    with _get(_url(INDEX), timeout_s) as response:
        return json.loads(response.read())


def _download(url: str, target: Path, size: int, md5: str, timeout_s: float) -> None:
    """`url` into `target` through a temporary file, which becomes `target`
    only when its size and MD5 are the ones the index gives."""

    def problem(digest: str, written: int) -> str | None:
        if written == size and digest == md5:
            return None
        return (
            f"{url}: got {written} bytes with MD5 {digest}, the hub's index says {size} bytes with MD5 {md5}; "
            f"nothing was kept (try again: {fetch_command(target.parent.name)})"
        )

    with _get(url, timeout_s) as response:
        blocks = iter(lambda: response.read(_BLOCK), b"")
        write_checked(target, blocks, hashlib.md5(usedforsecurity=False), problem, VoiceNotInstalledError)


def download_voice(name: str, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch a voice's model and config from the hub into the cache, checked."""
    try:
        index = _index(timeout_s)
    except (OSError, ValueError) as error:
        raise VoiceNotInstalledError(f"cannot read the Piper voice list at {_url(INDEX)}: {error}") from None
    entry = index.get(name)
    if entry is None:
        family = name.split("_")[0]
        same_language = sorted(key for key in index if key.startswith(family + "_"))[:8]
        hint = f" (voices in that language: {', '.join(same_language)})" if same_language else ""
        raise VoiceNotInstalledError(f"no Piper voice named {name!r} on the hub{hint}")
    folder = voices_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    kept: dict[str, Any] = {}
    for path, facts in entry.get("files", {}).items():
        file_name = path.rsplit("/", 1)[-1]
        if not file_name.endswith((".onnx", ".onnx.json")):
            continue  # model cards, samples
        logger.info("fetching Piper voice file %s (%.1f MB)", path, facts["size_bytes"] / 1e6)
        _download(_url(path), folder / file_name, int(facts["size_bytes"]), facts["md5_digest"], timeout_s)
        kept[file_name] = {"size_bytes": int(facts["size_bytes"]), "md5_digest": facts["md5_digest"]}
    if f"{name}.onnx" not in kept or f"{name}.onnx.json" not in kept:
        raise VoiceNotInstalledError(f"the hub's index lists no .onnx and .onnx.json for Piper voice {name!r}")
    _manifest_path(name).write_text(json.dumps({"voice": name, "source": _url(""), "files": kept}, indent=1))
    return folder / f"{name}.onnx"


def voice_path(name: str, fetching: bool = False) -> Path:
    """A named Piper voice's .onnx: from the cache, else fetched from the hub
    (checked), else `VoiceNotInstalledError` naming the command that fetches it
    (`fetching`: that command is the caller, so the advice is what it needs)."""
    cached = cached_voice(name)
    if cached is not None:
        return cached
    where = f"not in the cache ({voices_dir() / name})"
    if fetching:
        how = (
            f"run this again where {hub_endpoint()} can be reached, without HF_HUB_OFFLINE; or fetch {name}.onnx "
            f"and {name}.onnx.json yourself and pass the .onnx path (--tts_voices xx=/path/{name}.onnx)"
        )
    else:
        how = f"fetch it once with network access: {fetch_command(name)} (or pass a voice .onnx path)"
    if hub_offline():
        raise VoiceNotInstalledError(f"Piper voice {name} is {where} and HF_HUB_OFFLINE is set; {how}")
    problem = hub_problem()
    if problem is not None:
        raise VoiceNotInstalledError(f"Piper voice {name} is {where} and the hub cannot be reached ({problem}); {how}")
    return download_voice(name)


def main(argv: list[str]) -> int:
    """`python -m models.piper_voices NAME...`: fetch voices into the cache ahead of offline use."""
    usage = "usage: python -m models.piper_voices NAME... (e.g. nl_NL-mls-medium)"
    wrong = [name for name in argv if not is_voice_name(name)]
    if not argv or wrong:
        why = (
            f"{', '.join(map(repr, wrong))}: not a Piper voice name, which reads language_REGION-name-quality "
            "(quality x_low, low, medium or high)"
            if wrong
            else "no voice named"
        )
        print(f"s2s: error: {why}\n{usage}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in argv:
        try:
            print(voice_path(name, fetching=True))
        except (VoiceNotInstalledError, OSError, urllib.error.URLError) as error:
            print(f"s2s: error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
