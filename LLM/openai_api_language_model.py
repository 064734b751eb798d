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

    def _request(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """One request: text deltas when streaming, else the whole reply at once."""
        response = self.client.chat.completions.create(
            model=self.model_name, messages=messages, stream=self.stream, **self.gen_kwargs
        )
        if not self.stream:
            content = response.choices[0].message.content if response.choices else None
            if content:
                yield content
            return
        try:
            for chunk in response:
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    yield delta
        finally:
            response.close()  # a turn dropped mid-reply frees the connection now

    def generate(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Text pieces of the reply, retrying transient failures.

        A stream that breaks after some text was already handed on is not
        retried: those sentences may already be spoken, and a second answer
        would repeat them.
        """
        attempt = 0
        while True:
            attempt += 1
            delivered = False
            try:
                for piece in self._request(messages):
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
