"""Language model behind any OpenAI-compatible chat completions API.

OpenAI itself, or a local server (vLLM, llama.cpp's `llama_cpp.server`,
Ollama, LM Studio ...) reached through `--lm_base_url`.  The whole bounded
conversation (system prompt plus the last `chat_size` exchanges) is sent on
every turn, since the server keeps no state between requests.

A voice assistant must keep answering when the server hiccups, so transient
failures (connection refused or reset, timeouts, HTTP 429 and 5xx) are retried
a few times with exponential back-off before the turn fails with one clear
line naming the URL; BaseHandler then ends that turn with `turn.error` and the
pipeline carries on with the next one.  The openai client's own retry loop is
switched off: it honours server `Retry-After` delays of up to a minute, which
would leave the user in silence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from config.registry import missing_package
from LLM.language_model import LanguageModelHandler
from LLM.tool_calls import FunctionCall, ToolOffer, call_problem, filtered_pieces

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the client refuses to start without one.
PLACEHOLDER_API_KEY = "sk-no-key-needed"
_MAX_BACKOFF_S = 8.0


class LLMServerError(RuntimeError):
    """The chat completions server could not give an answer; one line, naming the URL."""


class OpenApiLanguageModelHandler(LanguageModelHandler):
    def setup(
        self,
        model_name: str = "gpt-4o-mini",
        base_url: str | None = None,
        api_key: str | None = None,
        stream: bool = True,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        retry_backoff_s: float = 0.5,
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise missing_package(OpenApiLanguageModelHandler) from None
        self.openai = openai
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY,
            timeout=timeout_s,
            max_retries=0,  # retried here, with bounded delays
        )
        self.model_name = model_name
        self.stream = stream
        self.max_retries = max(0, max_retries)
        self.retry_backoff_s = retry_backoff_s
        self.gen_kwargs = {"max_tokens": 128, "temperature": 0.0, **(gen_kwargs or {})}

    def _is_transient(self, error: Exception) -> bool:
        openai = self.openai
        if isinstance(error, openai.APIConnectionError):  # refused, reset, DNS, timeout
            return True
        return isinstance(error, openai.APIStatusError) and (error.status_code == 429 or error.status_code >= 500)

    def _describe(self, error: Exception, attempts: int) -> LLMServerError:
        if isinstance(error, self.openai.APIConnectionError):
            what = f"is unreachable ({type(error).__name__}: {error})"
        elif isinstance(error, self.openai.APIStatusError):
            what = f"answered HTTP {error.status_code}: {error.message}"
        else:
            what = f"failed: {error}"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return LLMServerError(" ".join(f"the chat completions server at {self.base_url} {what}{tries}".split()))

    def _request(self, messages: list[dict[str, Any]], tools: ToolOffer | None = None) -> Iterator[str | FunctionCall]:
        """One request: text deltas when streaming, else the whole reply at
        once; then the calls the server returned (with `tools`: they go out as
        the API's `tools` and `tool_choice`, and its `tool_calls` come back)."""
        extra: dict[str, Any] = {}
        if tools:
            extra = {"tools": tools.template_tools(), "tool_choice": tools.choice.chat_completions()}
        response = self.client.chat.completions.create(
            model=self.model_name, messages=messages, stream=self.stream, **self.gen_kwargs, **extra
        )
        calls: dict[int, dict[str, str]] = {}
        if not self.stream:
            message = response.choices[0].message if response.choices else None
            if message is not None and message.content:
                yield message.content
            for index, call in enumerate((message.tool_calls if message is not None else None) or []):
                calls[index] = {"id": call.id or "", "name": call.function.name, "arguments": call.function.arguments}
        else:
            try:
                for chunk in response:
                    delta = chunk.choices[0].delta if chunk.choices else None
                    if delta is None:
                        continue
                    if delta.content:
                        yield delta.content
                    for piece in delta.tool_calls or []:  # a call arrives in pieces, by index
                        call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                        call["id"] = piece.id or call["id"]
                        if piece.function is not None:
                            name = piece.function.name or ""
                            if name != call["name"]:  # llama_cpp.server repeats the whole name in every piece
                                call["name"] += name
                            call["arguments"] += piece.function.arguments or ""
            finally:
                response.close()  # a turn dropped mid-reply frees the connection now
        for call in calls.values():
            found = FunctionCall(
                call["name"], call["arguments"] or "{}", **({"call_id": call["id"]} if call["id"] else {})
            )
            problem = call_problem(found, tools) if tools else "no tools were offered"
            if problem is None:
                yield found
            else:
                logger.warning("%s: call dropped", problem)

    def generate(
        self, messages: list[dict[str, Any]], max_tokens: int | None = None, tools: ToolOffer | None = None
    ) -> Iterator[str | FunctionCall]:
        """Text pieces of the reply, retrying transient failures.

        A stream that breaks after some text was already handed on is not
        retried: those sentences may already be spoken, and a second answer
        would repeat them.  A server that writes the calls into the text
        (<tool_call> blocks, as a model's template asks) gets them parsed.
        """
        attempt = 0
        while True:
            attempt += 1
            delivered = False
            try:
                pieces = self._request(messages, tools)
                for piece in filtered_pieces(pieces, tools) if tools else pieces:
                    delivered = True
                    yield piece
                return
            except self.openai.OpenAIError as error:
                if delivered or not self._is_transient(error) or attempt > self.max_retries:
                    raise self._describe(error, attempt) from error
                delay = min(self.retry_backoff_s * 2 ** (attempt - 1), _MAX_BACKOFF_S)
                logger.warning("%s (attempt %d), retrying in %.2f s", self._describe(error, 1), attempt, delay)
                if self.stop_event.wait(delay):
                    return
