"""The OpenAI Agents SDK for JavaScript (`@openai/agents-realtime`) as a client, under Node.

`tests/js/agent.mjs` is a `RealtimeAgent` with one `tool()` in a `RealtimeSession` with the
SDK's default configuration (its semantic_vad, its default session fields), pointed at a
realtime server on loopback; it speaks "What's the weather like in Madrid?" and prints what
happened.  The packages are pinned by `tests/js/package-lock.json` (`npm ci` in CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from audio.pcm import load_audio
from benchmarks.server_process import ServerProcess
from connections.realtime.client import to_pcm24k
from tests.conftest import REPO, SHARED_AUDIO

pytestmark = pytest.mark.timing

JS = REPO / "tests" / "js"


@pytest.fixture(scope="module")
def node_client():
    if shutil.which("node") is None:
        pytest.fail("node is not installed (Node 20 runs the Agents SDK client)")
    if not (JS / "node_modules" / "@openai" / "agents-realtime").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, capture_output=True, timeout=300)
    return JS / "agent.mjs"


def test_a_realtime_agent_with_a_tool_gets_no_error_runs_it_and_answers_from_it(tmp_path, node_client):
    server = ServerProcess("realtime", tmp_path)
    try:
        speech = tmp_path / "request.pcm"
        speech.write_bytes(to_pcm24k(load_audio(SHARED_AUDIO / "tools" / "t10.wav"), 16000))
        result = subprocess.run(
            ["node", str(node_client), str(server.port), str(speech)],
            cwd=JS, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        assert server.stop() == 0
    assert result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "fatal" not in report, report
    assert report["errors"] == [], report["errors"]
    assert "error" not in report["eventTypes"]
    assert report["toolCalls"] and "madrid" in report["toolCalls"][0]["city"].lower(), report
    assert report["answered"], report
    assert any("hail" in transcript.lower() for transcript in report["transcripts"]), report["transcripts"]
