"""Language model on Hugging Face transformers (PyTorch).

Runs any causal LM with a chat template: a hub id, a local folder, or a GGUF
that transformers dequantises on load (so the packaged GGUFs work offline
here too).  `generate()` blocks until the reply is finished, so it runs in a
background thread that feeds a `TextIteratorStreamer`; this thread reads the
streamer and releases each sentence as soon as it is complete, letting the
TTS speak the first sentence while the rest is generated.  A stopping
criterion checked after every token ends generation when the pipeline stops
or the reader goes away (a dropped turn), so no thread keeps generating for
nobody.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from config.registry import missing_package
from LLM.language_model import LanguageModelHandler
from LLM.tool_calls import CALL_CLOSE, CALL_OPEN, FunctionCall, ToolOffer, chat_template_request, filtered_pieces
from models.packaged import GGUF_MODELS

logger = logging.getLogger(__name__)

# Generation arguments that only mean something when sampling; passing them to
# greedy decoding makes transformers warn on every turn.
_SAMPLING_ONLY = ("temperature", "top_p", "top_k", "min_p", "typical_p")


def resolve_model_source(model_name: str, gguf_file: str | None) -> tuple[str, str | None]:
    """(what from_pretrained loads, gguf_file) for a model name.

    A packaged alias ("smollm2-135m") or a path to a .gguf file becomes its
    folder plus the file name, the form transformers wants for a GGUF; any
    other name (hub id, model folder) is passed through unchanged.
    """
    if gguf_file:
        return model_name, gguf_file
    if model_name in GGUF_MODELS:
        path = GGUF_MODELS[model_name].path()
        return str(path.parent), path.name
    path = Path(model_name).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return str(path.parent), path.name
    return model_name, None


def generation_kwargs(gen_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults plus the user's `--lm_gen_*`, made consistent: greedy decoding
    drops the sampling-only knobs, and a zero temperature means greedy."""
    kwargs: dict[str, Any] = {"max_new_tokens": 128, "do_sample": False, **(gen_kwargs or {})}
    if kwargs.get("do_sample") and kwargs.get("temperature", 1.0) <= 0:
        kwargs["do_sample"] = False
    if not kwargs.get("do_sample"):
        for name in _SAMPLING_ONLY:
            kwargs.pop(name, None)
    if not kwargs.get("min_new_tokens"):
        kwargs.pop("min_new_tokens", None)
    return kwargs


class TransformersLanguageModelHandler(LanguageModelHandler):
    # Warm-up: one short generation, so the first real turn does not pay for
    # PyTorch's first-call allocations.
    warmup_tokens = 2

    def setup(
        self,
        model_name: str = "HuggingFaceTB/SmolLM2-360M-Instruct",
        gguf_file: str | None = None,
        device: str = "cpu",
        torch_dtype: str = "auto",
        n_threads: int = 0,
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise missing_package(TransformersLanguageModelHandler) from None
        if n_threads > 0:
            # Process-wide; on a small, busy CPU fewer threads than cores avoids
            # OpenMP workers spinning against the other stages.
            torch.set_num_threads(n_threads)
        source, gguf_file = resolve_model_source(model_name, gguf_file)
        if gguf_file:
            try:
                import accelerate  # noqa: F401  (transformers requires it to load a GGUF)
                import gguf  # noqa: F401
            except ImportError:
                raise missing_package(TransformersLanguageModelHandler, needs="needs, to load a GGUF") from None
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        if torch_dtype == "auto":
            dtype = torch.float32 if device == "cpu" else torch.float16
        else:
            dtype = getattr(torch, torch_dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_name} has no chat template: use an instruct/chat model")
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra).to(device).eval()
        self.device = device
        self.model_name = model_name
        self.gen_kwargs = generation_kwargs(gen_kwargs)
        if self.tokenizer.pad_token_id is None:
            self.gen_kwargs.setdefault("pad_token_id", self.tokenizer.eos_token_id)

    def prompt_ids(self, messages: list[dict[str, Any]], tools: ToolOffer | None = None) -> dict[str, Any]:
        """The chat template applied to `messages` (with the tools offered:
        the template's own tools section, or the tools written into the system
        prompt when it has none), as model inputs on the device."""
        messages, declared = chat_template_request(messages, tools, self.tokenizer.chat_template)
        inputs = self.tokenizer.apply_chat_template(
            messages, tools=declared, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {name: tensor.to(self.device) for name, tensor in inputs.items()}

    def generate(
        self, messages: list[dict[str, Any]], max_new_tokens: int | None = None, tools: ToolOffer | None = None
    ) -> Iterator[str | FunctionCall]:
        """The reply's text, with its <tool_call> blocks turned into calls
        when `tools` are offered (a call whose arguments do not match the
        schema is dropped: nothing constrains this backend's decoding)."""
        pieces = self._stream(messages, max_new_tokens, tools)
        yield from filtered_pieces(pieces, tools) if tools else pieces

    def _stream(
        self, messages: list[dict[str, Any]], max_new_tokens: int | None, tools: ToolOffer | None
    ) -> Iterator[str]:
        """Stream the reply's text while `model.generate` runs in a thread.

        Closing this generator early (stop event, dropped turn) cancels the
        generation at its next token and waits for the thread to end.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancel = threading.Event()
        stop_event = self.stop_event

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
                done = cancel.is_set() or stop_event.is_set()
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        # A model may mark <tool_call> special: with tools, special tokens stay
        # in the text and all but the call's tags are removed below.
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=not tools)
        hidden = [token for token in self.tokenizer.all_special_tokens if token not in (CALL_OPEN, CALL_CLOSE)]
        kwargs = dict(self.gen_kwargs)
        if max_new_tokens is not None:
            kwargs["max_new_tokens"] = max_new_tokens
            kwargs.pop("min_new_tokens", None)
        kwargs.update(self.prompt_ids(messages, tools))
        kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_Cancelled()]))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as error:  # re-raised in the reading thread below
                errors.append(error)
                streamer.end()  # unblock the reader, which would otherwise wait forever

        thread = threading.Thread(target=run, name="transformers-generate", daemon=True)
        thread.start()
        try:
            for text in streamer:
                if errors:
                    break
                for token in hidden if tools else ():
                    text = text.replace(token, "")
                if text:
                    yield text
        finally:
            cancel.set()
            thread.join()
        if errors:
            raise errors[0]
