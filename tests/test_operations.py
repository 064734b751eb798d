"""What an operator runs the server with: /metrics, /healthz, /readyz and the SIGTERM drain.

Real server processes (`benchmarks/server_process.py`, started as README
shows), real HTTP requests to them, real conversations through the official
SDK (`connections/realtime/client.py`) and the socket client
(`listen_and_play.py`).  The LLM is the packaged 0.5B (`--preset fast`'s)
to keep the turns short; nothing here depends on how fast they are.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator

import pytest

from audio.pcm import load_audio
from benchmarks.server_process import ServerProcess
from connections.realtime.client import Conversation, connect, to_pcm24k
from tests.conftest import QUESTIONS

pytestmark = pytest.mark.timing

KEY = "ops-key-" + "x" * 16
FAST_LLM = ("--lm_model_name", "qwen2.5-0.5b")
AT_LENGTH = "Always answer at great length, in five sentences or more."


def question(name: str) -> bytes:
    return to_pcm24k(load_audio(QUESTIONS / name), 16000)


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def wait_for_metric(server: ServerProcess, name: str, at_least: float, timeout: float = 60, **labels: str) -> dict:
    """Scrape until `name{labels}` reaches `at_least` (a realtime turn is
    counted once the client has heard it out); returns the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        scrape = server.scrape(KEY)
        if value(scrape, name, **labels) >= at_least or time.monotonic() > deadline:
            return scrape
        time.sleep(0.2)


def wait_until(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def speak_at_length(conversation, name: str = "q04.wav") -> None:
    """Ask for a long reply, so that it is still being made a while after its first audio."""
    conversation.wait_for("session.created", timeout=30)
    conversation.send({"type": "session.update", "session": {"type": "realtime", "instructions": AT_LENGTH}})
    conversation.wait_for("session.updated", timeout=10)
    conversation.speak(question(name), silence_s=0.5)


# ----------------------------------------------------------------------------- realtime: probes and metrics


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One conversation at a time, with an API key; probed from its first second on."""
    flags = ("--max_sessions", "1", "--metrics_port", "0", *FAST_LLM)
    running = ServerProcess("realtime", tmp_path_factory.mktemp("ops"), *flags, api_key=KEY, wait=False)
    running.early = (running.get("/healthz"), running.get("/readyz"))  # while the models load
    running.wait_until_ready()
    yield running
    assert running.stop() == 0


def test_readyz_says_not_ready_while_the_models_load_and_healthz_is_alive(server):
    (health_status, health), (ready_status, ready) = server.early
    assert health_status == 200 and json.loads(health) == {"status": "alive"}
    assert ready_status == 503 and json.loads(ready) == {"status": "not ready", "reason": "models loading"}
    status, body = server.get("/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready"}


def test_metrics_need_the_key_on_the_conversations_port_and_not_on_the_metrics_port(server):
    assert server.get("/metrics")[0] == 401
    assert server.get("/metrics", "wrong-key")[0] == 401
    status, body = server.get("/metrics", KEY)
    assert status == 200 and "# TYPE s2s_turns_total counter" in body
    assert server.get("/healthz")[0] == 200 and server.get("/readyz")[0] == 200
    private = server.metrics_port()
    assert private != server.port
    status, body = server.get("/metrics", port=private)
    assert status == 200 and "# TYPE s2s_turns_total counter" in body
    assert server.get("/readyz", port=private) == server.get("/readyz")


def test_a_spoken_turn_moves_the_metrics(server):
    before = server.scrape(KEY)
    conversation = connect(server.port, KEY)
    try:
        conversation.wait_for("session.created", timeout=30)
        during = server.scrape(KEY)
        conversation.speak(question("q01.wav"), silence_s=1.5)
        done = conversation.wait_for("response.done", timeout=90)[0].event.response
        assert done.status == "completed"
        after = wait_for_metric(server, "s2s_turns_total", value(before, "s2s_turns_total", outcome="answered") + 1,
                                outcome="answered")  # fmt: skip
    finally:
        conversation.close()
    assert value(during, "s2s_sessions_open") == 1 and value(before, "s2s_sessions_open") == 0
    assert value(after, "s2s_sessions_total") == value(before, "s2s_sessions_total") + 1
    assert (
        value(after, "s2s_turns_total", outcome="answered") == value(before, "s2s_turns_total", outcome="answered") + 1
    )
    for stage in ("stt", "llm_first_sentence", "tts_first_audio"):
        counted = value(after, "s2s_stage_latency_seconds_count", stage=stage)
        assert counted == value(before, "s2s_stage_latency_seconds_count", stage=stage) + 1, stage
        assert value(after, "s2s_stage_latency_seconds_sum", stage=stage) > value(
            before, "s2s_stage_latency_seconds_sum", stage=stage
        ), stage
    # The histogram agrees with the turn's own metrics line.
    turn = server.wait_for_turns(1)[-1]
    observed = value(after, "s2s_first_audio_latency_seconds_sum", since="speech_end") - value(
        before, "s2s_first_audio_latency_seconds_sum", since="speech_end"
    )
    assert observed == pytest.approx(turn["speech_end_to_first_audio_ms"] / 1000.0, abs=0.001)
    assert value(after, "s2s_audio_stalls_total") - value(before, "s2s_audio_stalls_total") == turn["audio_stalls"]
    assert wait_until(lambda: value(server.scrape(KEY), "s2s_sessions_open") == 0)


def test_readyz_says_not_ready_while_every_session_is_in_use(server):
    before = server.scrape(KEY)
    first = connect(server.port, KEY)
    try:
        first.wait_for("session.created", timeout=30)
        for port in (server.port, server.metrics_port()):
            status, body = server.get("/readyz", port=port)
            assert status == 503 and json.loads(body)["reason"] == "all 1 sessions in use"
        extra = connect(server.port, KEY)  # one over the limit: refused, and counted
        assert extra.wait_for("error", timeout=10)[0].event.error.code == "session_limit_reached"
        assert extra.closed.wait(10)
    finally:
        first.close()
    assert wait_until(lambda: server.get("/readyz")[0] == 200)
    after = server.scrape(KEY)
    refused = value(after, "s2s_errors_total", kind="session_limit_reached")
    assert refused == value(before, "s2s_errors_total", kind="session_limit_reached") + 1


def test_a_cancelled_reply_counts_as_an_interruption(server):
    before = server.scrape(KEY)
    conversation = connect(server.port, KEY)
    try:
        speak_at_length(conversation)
        conversation.wait_for("response.output_audio.delta", timeout=90)
        conversation.send({"type": "response.cancel"})
        done = conversation.wait_for("response.done", timeout=60)[0].event.response
        if done.status == "completed":
            pytest.skip("the whole reply was made before the cancel arrived (a much faster machine)")
        assert done.status == "cancelled"
        interrupted = value(before, "s2s_turns_total", outcome="interrupted") + 1
        after = wait_for_metric(server, "s2s_turns_total", interrupted, outcome="interrupted")
    finally:
        conversation.close()
    assert value(after, "s2s_turns_total", outcome="interrupted") == interrupted
    assert value(after, "s2s_interruptions_total") == value(before, "s2s_interruptions_total") + 1


def test_bad_input_is_counted_by_its_error_code(server):
    before = server.scrape(KEY)
    conversation = connect(server.port, KEY)
    try:
        conversation.wait_for("session.created", timeout=30)
        conversation.connection.send_raw("{not json")
        conversation.wait_for("error", timeout=10)
    finally:
        conversation.close()
    after = server.scrape(KEY)
    assert (
        value(after, "s2s_errors_total", kind="invalid_json")
        == value(before, "s2s_errors_total", kind="invalid_json") + 1
    )


# ----------------------------------------------------------------------------- realtime: SIGTERM


@contextlib.contextmanager
def a_server_and_a_conversation(tmp_path, *flags: str) -> Iterator[tuple[ServerProcess, Conversation]]:
    """A server of its own (the test stops it with a signal) and one SDK conversation with it."""
    running = ServerProcess("realtime", tmp_path, *FAST_LLM, *flags, api_key=KEY)
    conversation = connect(running.port, KEY)
    try:
        yield running, conversation
    finally:
        conversation.close()
        if running.alive():
            running.stop()


def test_sigterm_lets_the_reply_in_flight_finish_refuses_newcomers_and_exits_0(tmp_path):
    # A drain long enough for the reply on a slow or busy machine (it took over
    # the default 10 s with the suite's other workers on the same two cores).
    with a_server_and_a_conversation(tmp_path, "--drain_timeout_s", "120") as (running, conversation):
        idle = connect(running.port, KEY)  # open, with nothing under way
        idle.wait_for("session.created", timeout=30)
        speak_at_length(conversation)
        conversation.wait_for("response.output_audio.delta", timeout=90)
        signalled = time.perf_counter()
        running.process.send_signal(signal.SIGTERM)
        # The idle conversation is told and closed at once; the load balancer is told too.
        assert idle.wait_for("error", timeout=10)[0].event.error.code == "server_shutting_down"
        assert idle.closed.wait(10)
        assert wait_until(lambda: running.get("/readyz")[0] == 503, timeout=10)
        assert json.loads(running.get("/readyz")[1])["reason"] == "shutting down"
        newcomer = connect(running.port, KEY)
        assert newcomer.wait_for("error", timeout=10)[0].event.error.code == "server_shutting_down"
        assert newcomer.closed.wait(10) and not newcomer.of("session.created")
        # The reply in flight plays to its end, then its conversation is told and closed.
        done = conversation.wait_for("response.done", timeout=30)[0]
        assert done.at > signalled, "the reply ended before the signal: nothing was in flight"
        assert done.event.response.status == "completed"
        words = len(done.event.response.output[0].content[0].transcript.split())
        assert words > 10
        # All of it: the paced audio still waiting its time was dropped at the close (0.4 s of a
        # 2 s reply reached the client, then response.done "completed").  Piper says 2-3 words a second.
        audio_s = len(conversation.reply_audio()) / 24000
        assert audio_s >= words / 4, (audio_s, words)
        farewell = conversation.wait_for("error", timeout=10)[0]
        assert farewell.event.error.code == "server_shutting_down" and farewell.at > done.at
        assert conversation.closed.wait(10)
        assert running.process.wait(timeout=30) == 0
    log = running.log.read_text()
    assert "SIGTERM received" in log and "Traceback" not in log


def test_a_reply_longer_than_the_drain_timeout_is_cut_and_the_server_still_exits_0(tmp_path):
    with a_server_and_a_conversation(tmp_path, "--drain_timeout_s", "0") as (running, conversation):
        speak_at_length(conversation)
        conversation.wait_for("response.output_audio.delta", timeout=90)
        running.process.send_signal(signal.SIGTERM)
        farewell = conversation.wait_for("error", timeout=10)[0]
        assert farewell.event.error.code == "server_shutting_down" and "cut short" in farewell.event.error.message
        # The reply cut short is still closed, before the farewell: a client's response ends.
        done = conversation.wait_for("response.done", timeout=10)[0]
        assert done.event.response.status == "cancelled" and done.at <= farewell.at
        assert conversation.closed.wait(10)
        assert running.process.wait(timeout=30) == 0


# ----------------------------------------------------------------------------- socket mode: --metrics_port


def test_socket_mode_serves_probes_and_metrics_on_metrics_port(tmp_path):
    from tests.test_socket_mode import client

    running = ServerProcess("socket", tmp_path, *FAST_LLM, "--metrics_port", "0", wait=False)
    try:
        early = running.get("/readyz")
        assert early[0] == 503 and json.loads(early[1])["reason"] == "models loading"
        assert running.get("/healthz")[0] == 200
        running.wait_until_ready()
        assert running.get("/readyz")[0] == 200
        before = running.scrape()
        result = client(running, QUESTIONS / "q01.wav", tmp_path / "reply.wav")
        assert result.returncode == 0, result.stderr[-2000:]
        turn = running.wait_for_turns(1)[-1]
        after = running.scrape()
        assert value(after, "s2s_turns_total", outcome="answered") == 1 + value(
            before, "s2s_turns_total", outcome="answered"
        )
        assert value(after, "s2s_sessions_total") >= 1 and value(after, "s2s_sessions_max") == 1
        observed = value(after, "s2s_first_audio_latency_seconds_sum", since="end_of_turn")
        assert observed == pytest.approx(turn["end_of_turn_to_first_audio_ms"] / 1000.0, abs=0.001)
    finally:
        assert running.stop() == 0
