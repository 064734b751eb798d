"""The open_api LLM backend against a real OpenAI-compatible server on loopback.

llama-cpp-python's own server (`python -m llama_cpp.server`) serves the
packaged SmolLM2-135M GGUF.  A small recording reverse proxy, written here
with http.server, sits in front of it: it records every request body (to
check that the whole history is sent) and can answer the next requests with
an injected HTTP error (to check the retries).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from benchmarks.server_process import LlamaServerProcess, free_port
from config.parse import parse_config
from conversation.turn import Turn
from LLM.openai_api_language_model import PLACEHOLDER_API_KEY, LLMServerError, OpenApiLanguageModelHandler
from tests.conftest import drain, make_handler
from utils.messages import EndOfResponse, EndOfStream, LLMSentence, Transcript

SYSTEM = "You are a helpful assistant. Answer in one short sentence."


@contextlib.contextmanager
def serve_gguf(model: str, workdir) -> Iterator[str]:
    """llama_cpp.server on a packaged GGUF (its own chat template); yields its /v1 URL."""
    server = LlamaServerProcess(model, workdir)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """llama_cpp.server on the packaged SmolLM2 GGUF; yields its /v1 URL."""
    with serve_gguf("smollm2-135m", tmp_path_factory.mktemp("llama-server")) as url:
        yield url


class RecordingProxy(ThreadingHTTPServer):
    """Forwards to `upstream`, records request bodies, injects HTTP errors."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.bodies: list[dict] = []
        self.failures: list[int] = []  # statuses to answer the next requests with
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def posts(self) -> list[dict]:
        with self.lock:
            return list(self.bodies)


class _ProxyHandler(BaseHTTPRequestHandler):
    server: RecordingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.bodies.append(json.loads(body))
            status = self.server.failures.pop(0) if self.server.failures else None
        if status is not None:
            payload = json.dumps({"error": {"message": f"injected {status}", "type": "test"}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=120)
        try:
            upstream.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
            response = upstream.getresponse()
            self.send_response(response.status)
            self.send_header("Content-Type", response.getheader("Content-Type", "application/json"))
            self.send_header("Connection", "close")  # HTTP/1.0: the body ends when the connection does
            self.end_headers()
            while chunk := response.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
        finally:
            upstream.close()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def recording_proxy(upstream: str) -> Iterator[RecordingProxy]:
    """A RecordingProxy in front of `upstream`, serving from a thread of its own."""
    server = RecordingProxy(upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(llama_server) -> Iterator[RecordingProxy]:
    with recording_proxy(llama_server) as server:
        yield server


def handler_for(url: str, **kwargs) -> OpenApiLanguageModelHandler:
    options = {
        "base_url": url,
        "model_name": "smollm2-135m",
        "init_chat_prompt": SYSTEM,
        "retry_backoff_s": 0.05,
        "gen_kwargs": {"max_tokens": 48, "temperature": 0.0},
    }
    return make_handler(OpenApiLanguageModelHandler, **{**options, **kwargs})


def ask(handler, text: str, language: str | None = "en") -> tuple[list[str], list]:
    out = list(handler.process(Transcript(text=text, language=language, turn=Turn())))
    return [m.text for m in out if isinstance(m, LLMSentence)], out


@pytest.mark.parametrize("stream", [True, False])
def test_answers_a_question(proxy, stream):
    handler = handler_for(proxy.url, stream=stream)
    sentences, out = ask(handler, "What is the capital of France?")
    assert isinstance(out[-1], EndOfResponse) and out[-1].turn.error is None
    assert sentences and "paris" in " ".join(sentences).lower()
    assert out[-1].turn.reply == " ".join(sentences)
    (body,) = proxy.posts()
    assert body["stream"] is stream and body["max_tokens"] == 48
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the capital of France?"},
    ]


def test_whole_bounded_history_is_sent_each_turn(proxy):
    handler = handler_for(proxy.url, chat_size=1)
    _, first = ask(handler, "My name is Anna.")
    _, second = ask(handler, "What is my name?", language="fr")
    first_reply, second_reply = first[-1].turn.reply, second[-1].turn.reply
    assert first_reply and second_reply
    assert proxy.posts()[1]["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "My name is Anna."},
        {"role": "assistant", "content": first_reply},
        {"role": "user", "content": "(I speak French: answer me in French, do not translate.) What is my name?"},
    ]
    ask(handler, "Say yes.")
    third = proxy.posts()[2]["messages"]
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user"]  # chat_size=1: first turn gone
    assert third[1]["content"].endswith("What is my name?") and third[2]["content"] == second_reply
    handler.on_reset()
    assert handler.chat.messages() == [{"role": "system", "content": SYSTEM}]


@pytest.mark.parametrize("failures", [[500, 502], [429]])
def test_transient_errors_are_retried_then_recover(proxy, failures):
    handler = handler_for(proxy.url, max_retries=2)
    proxy.failures = list(failures)
    sentences, out = ask(handler, "What is the capital of France?")
    assert out[-1].turn.error is None and "paris" in " ".join(sentences).lower()
    assert len(proxy.posts()) == len(failures) + 1


def test_persistent_5xx_fails_the_turn_with_one_clear_line(proxy):
    handler = handler_for(proxy.url, max_retries=2)
    proxy.failures = [503, 503, 503]
    with pytest.raises(LLMServerError) as caught:
        ask(handler, "Hello?")
    message = str(caught.value)
    assert proxy.url in message and "HTTP 503" in message and "after 3 attempts" in message
    assert "\n" not in message
    assert len(proxy.posts()) == 3
    assert handler.chat.messages() == [{"role": "system", "content": SYSTEM}]  # the failed question is dropped


def test_client_errors_are_not_retried(proxy):
    handler = handler_for(proxy.url, max_retries=2)
    proxy.failures = [401]
    with pytest.raises(LLMServerError, match="HTTP 401"):
        ask(handler, "Hello?")
    assert len(proxy.posts()) == 1


def test_stop_event_interrupts_the_back_off(proxy):
    handler = handler_for(proxy.url, max_retries=5, retry_backoff_s=30.0)
    proxy.failures = [500] * 6
    threading.Timer(0.3, handler.stop_event.set).start()
    started = time.monotonic()
    sentences, out = ask(handler, "Hello?")
    assert time.monotonic() - started < 5
    assert sentences == [] and isinstance(out[-1], EndOfResponse)


def test_server_down_fails_fast_and_the_pipeline_keeps_serving():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    handler = handler_for(url, max_retries=2, timeout_s=5.0)
    turns = [Turn(), Turn()]
    for turn in turns:
        handler.queue_in.put(Transcript(text="Hello?", language="en", turn=turn))
    handler.queue_in.put(EndOfStream())
    thread = threading.Thread(target=handler.run)
    started = time.monotonic()
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10  # 2 turns x 3 attempts, back-off 0.05 + 0.1 s
    out = drain(handler.queue_out)
    assert [type(m) for m in out] == [EndOfResponse, EndOfResponse, EndOfStream]
    for message, turn in zip(out, turns, strict=False):
        assert message.turn is turn
        assert url in turn.error and "unreachable" in turn.error and "after 3 attempts" in turn.error
        assert "\n" not in turn.error


def test_cli_flags_and_seed_aliases_reach_the_handler():
    seed = ["--llm", "open_api", "--open_api_base_url", "http://127.0.0.1:9/v1", "--open_api_model_name", "m"]
    seed += ["--open_api_api_key", "k", "--open_api_stream", "false", "--lm_gen_max_tokens", "7"]
    kwargs = parse_config(seed).stage_kwargs("llm")
    assert kwargs["base_url"] == "http://127.0.0.1:9/v1" and kwargs["model_name"] == "m"
    assert kwargs["api_key"] == "k" and kwargs["stream"] is False and kwargs["gen_kwargs"]["max_tokens"] == 7
    plain = ["--llm", "open_api", "--lm_base_url", "http://127.0.0.1:9/v1", "--lm_model_name", "m"]
    plain += ["--lm_api_key", "k", "--lm_stream", "false", "--lm_gen_max_tokens", "7"]
    assert parse_config(plain).stage_kwargs("llm") == kwargs
    config = parse_config(["--llm", "open_api"])
    assert config.llm_backend.handler_class() is OpenApiLanguageModelHandler
    assert config.stage_kwargs("llm")["stream"] is True


def test_api_key_comes_from_the_environment_or_a_placeholder(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert handler_for("http://127.0.0.1:9/v1").client.api_key == "sk-from-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert handler_for("http://127.0.0.1:9/v1").client.api_key == PLACEHOLDER_API_KEY
    assert handler_for("http://127.0.0.1:9/v1", api_key="explicit").client.api_key == "explicit"
