"""A benchmark run without flags prints its report and leaves the committed
results alone; `--write` replaces them, `--output` writes elsewhere."""

from __future__ import annotations

import argparse
import subprocess
import sys

from benchmarks.latency import add_output_arguments, save_results
from tests.conftest import REPO


def saved(tmp_path, argv: list[str]) -> tuple[bool, str]:
    committed = tmp_path / "RESULTS.md"
    committed.write_text("committed figures\n")
    parser = argparse.ArgumentParser()
    add_output_arguments(parser, committed)
    save_results(parser.parse_args(argv), committed, "this run\n")
    return committed.read_text() == "this run\n", committed.read_text()


def test_a_bare_run_does_not_replace_the_committed_results(tmp_path):
    assert saved(tmp_path, []) == (False, "committed figures\n")


def test_write_replaces_them_and_output_writes_elsewhere(tmp_path):
    assert saved(tmp_path, ["--write"])[0]
    elsewhere = tmp_path / "mine.md"
    assert saved(tmp_path, ["--output", str(elsewhere)]) == (False, "committed figures\n")
    assert elsewhere.read_text() == "this run\n"


def test_a_second_report_of_the_run_goes_beside_the_output(tmp_path):
    """latency.py --long writes the long-turn report next to --output (or over
    its own committed file with --write)."""
    committed = tmp_path / "RESULTS_latency_long.md"
    parser = argparse.ArgumentParser()
    add_output_arguments(parser, tmp_path / "RESULTS.md")
    save_results(parser.parse_args(["--output", str(tmp_path / "mine.md")]), committed, "long\n", suffix="_long")
    assert (tmp_path / "mine_long.md").read_text() == "long\n" and not committed.exists()
    save_results(parser.parse_args(["--write"]), committed, "long\n", suffix="_long")
    assert committed.read_text() == "long\n"


def test_every_benchmark_asks_before_writing_committed_results():
    for script in ("latency.py", "conversation.py", "soak.py", "stt_incremental.py", "operations.py", "sessions.py"):
        path = REPO / "benchmarks" / script
        if not path.exists():
            continue
        result = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "--write" in result.stdout, script


def test_what_readme_commands_write_is_ignored_by_git():
    import pytest

    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    command = ["git", "check-ignore", "answer.wav", "reply.wav"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["answer.wav", "reply.wav"]
