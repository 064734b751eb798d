from dataclasses import dataclass, field

from arguments_classes.chat_arguments import ChatArguments


@dataclass
class OpenApiLanguageModelHandlerArguments(ChatArguments):
    """Any OpenAI-compatible chat completions server (OpenAI, vLLM, llama.cpp's server, Ollama, ...).

    Flags use the LLM stage's `lm_` prefix like every LLM backend; the seed's
    `--open_api_*` spellings are accepted as aliases on the command line.
    """

    lm_model_name: str = field(
        default="gpt-4o-mini",
        metadata={"help": "Model name sent to the server.", "aliases": ["--open_api_model_name"]},
    )
    lm_base_url: str | None = field(
        default=None,
        metadata={
            "help": "Server URL up to /v1, e.g. http://127.0.0.1:8000/v1 "
            "(default: $OPENAI_BASE_URL, else https://api.openai.com/v1).",
            "aliases": ["--open_api_base_url"],
        },
    )
    lm_api_key: str | None = field(
        default=None,
        metadata={
            "help": "API key (default: $OPENAI_API_KEY, else a placeholder that local servers accept).",
            "aliases": ["--open_api_api_key"],
        },
    )
    lm_stream: bool = field(
        default=True,
        metadata={"help": "Stream the reply and speak each sentence as it arrives.", "aliases": ["--open_api_stream"]},
    )
    lm_timeout_s: float = field(default=30.0, metadata={"help": "Seconds to wait for one request."})
    lm_max_retries: int = field(
        default=2, metadata={"help": "Retries on connection errors, HTTP 429 and 5xx, with exponential back-off."}
    )
    lm_retry_backoff_s: float = field(default=0.5, metadata={"help": "First back-off delay; doubles each retry."})
    lm_gen_max_tokens: int = field(default=128, metadata={"help": "Most tokens in one reply."})
    lm_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0: greedy)."})
