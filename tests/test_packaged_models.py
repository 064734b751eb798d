"""Joining split model files: verified, atomic, and clear when packages are missing."""

import hashlib
from pathlib import Path

import pytest

from models import packaged as packaged_models
from models.packaged import (
    GGUF_MODELS,
    ModelNotInstalledError,
    PackagedFile,
    SplitFile,
    resolve_gguf,
    resolve_whisper_model,
)


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Two 'installed packages' holding the halves of a file."""
    blobs = {"pkg_a": b"hello " * 1000, "pkg_b": b"world " * 500}
    for name, blob in blobs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "part.bin").write_bytes(blob)
    monkeypatch.setattr(
        packaged_models, "package_dir", lambda name: tmp_path / name if (tmp_path / name).exists() else None
    )
    whole = blobs["pkg_a"] + blobs["pkg_b"]
    return whole, tmp_path


def split(sha: str, size: int) -> SplitFile:
    parts = tuple(PackagedFile(p, "part.bin", p.replace("_", "-")) for p in ("pkg_a", "pkg_b"))
    return SplitFile("test model", parts, size, sha)


def test_join_verifies_and_reuses(fake_packages):
    whole, root = fake_packages
    target = root / "cache" / "model.bin"
    spec = split(hashlib.sha256(whole).hexdigest(), len(whole))
    assert spec.join_into(target).read_bytes() == whole
    mtime = target.stat().st_mtime_ns
    spec.join_into(target)
    assert target.stat().st_mtime_ns == mtime  # not joined twice


def test_wrong_checksum_leaves_no_file(fake_packages):
    whole, root = fake_packages
    target = root / "cache" / "model.bin"
    with pytest.raises(ModelNotInstalledError, match="sha256"):
        split("0" * 64, len(whole)).join_into(target)
    assert list((root / "cache").iterdir()) == []


def test_missing_package_names_the_pip_command(fake_packages, monkeypatch):
    monkeypatch.setattr(packaged_models, "package_dir", lambda name: None)
    with pytest.raises(ModelNotInstalledError, match="pip install pkg-a pkg-b"):
        split("0" * 64, 1).join_into(fake_packages[1] / "x.bin")


def test_unknown_gguf_alias_lists_the_known_ones(tmp_path):
    with pytest.raises(ModelNotInstalledError, match="smollm2-135m"):
        resolve_gguf("gpt-7")
    local = tmp_path / "mine.gguf"
    local.write_bytes(b"GGUF")
    assert resolve_gguf(str(local)) == local


def test_real_packaged_models_resolve():
    """The default stack's files are where the packages put them."""
    folder = resolve_whisper_model("whisper-base")
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in Path(folder).iterdir()}
    assert resolve_gguf("qwen2.5-0.5b").stat().st_size == GGUF_MODELS["qwen2.5-0.5b"].split_file.size
    assert resolve_gguf("smollm2-135m").read_bytes()[:4] == b"GGUF"
    assert resolve_whisper_model("some/hub-id") == "some/hub-id"
