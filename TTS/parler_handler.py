"""Text to speech with Parler-TTS, streamed while it is generated.

Parler-TTS is a decoder that writes audio-codec tokens conditioned on two
texts: the sentence to say (the "prompt") and a plain-language description of
the voice ("Jenny speaks at a moderate pace...").  `ParlerTTSStreamer` decodes
the tokens to audio every `play_steps_s` seconds of generated speech, so the
first words are played while the rest of the sentence is still generated;
generation runs in a worker thread and the stage yields each piece as it comes.

Voice per language: `description` and `speaker` are each either one string or
a mapping from Whisper language code to string with a `"default"` entry; the
description may contain `{speaker}`.  A sentence in French is then described
with the French speaker (the multilingual checkpoints know named speakers per
language), one in a language without an entry with the defaults.

`compile_mode` compiles the forward pass with a static KV cache.  A compiled
graph is specialised on input shapes, so every prompt is padded to the next
power of two (4, 8, ... `max_prompt_pad_length` tokens) and each of those
lengths is generated at setup, so no sentence pays for a compilation.

The `parler_tts` package pins transformers 4.46 and does not import under
transformers 5, so this backend needs its own environment (see README).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from audio.stream_resample import StreamResampler
from config.registry import missing_package
from TTS.speech_handler import SpeechHandler

logger = logging.getLogger(__name__)


DEFAULT_DESCRIPTION = (
    "{speaker} speaks at a moderate pace with a slightly expressive tone, in a very close-sounding "
    "environment with very clear audio quality."
)
# Named speakers of the multilingual checkpoints; the Jenny checkpoint only knows Jenny.
DEFAULT_SPEAKERS = {
    "default": "Jenny",
    "fr": "Daniel",
    "de": "Nicole",
    "es": "Steven",
    "it": "Julia",
    "pt": "Sophia",
    "pl": "Alex",
    "nl": "Mark",
}
MIN_PAD_LENGTH = 4


def next_power_of_2(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def pad_lengths(max_prompt_pad_length: int) -> list[int]:
    """The prompt lengths a compiled model is warmed up on: 4, 8, ... up to the max."""
    lengths = []
    length = MIN_PAD_LENGTH
    while length <= max_prompt_pad_length:
        lengths.append(length)
        length *= 2
    return lengths


def per_language(value: str | Mapping[str, str], default: str | None = None) -> dict[str, str]:
    """One string, or a language -> string mapping (JSON config) with a 'default' key."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:  # a JSON object from the command line; "{speaker} speaks..." is not one
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if isinstance(value, Mapping):
        table = {str(k): str(v) for k, v in value.items()}
    else:
        table = {"default": str(value)}
    if "default" not in table:
        if default is None:
            raise ValueError(f"a per-language table needs a 'default' entry: {value!r}")
        table["default"] = default
    return table


def _stop_when(event: threading.Event) -> Any:
    """A StoppingCriteria that ends generation once `event` is set (the turn was
    dropped or the stage stopped), so an abandoned sentence frees the model."""
    import torch
    from transformers import StoppingCriteria

    class _StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return _StopOnEvent()


def _static_cache_batch_size_alias() -> None:
    """parler-tts 0.2.3 reuses its static cache only after reading the cache's
    `max_batch_size`, which its own pinned transformers (4.46) renamed to
    `batch_size`; without the old name every generate after the first fails.
    Give StaticCache the old name back (read-only) when it lacks it."""
    from transformers.cache_utils import StaticCache

    if not hasattr(StaticCache, "max_batch_size"):
        StaticCache.max_batch_size = property(lambda cache: cache.batch_size)


class ParlerTTSHandler(SpeechHandler):
    voice_per_language = True

    def setup(
        self,
        model_name: str = "ylacombe/parler-tts-mini-jenny-30H",
        description_tokenizer: str = "",
        device: str = "cpu",
        torch_dtype: str = "float32",
        compile_mode: str = "",
        max_prompt_pad_length: int = 128,
        description: str | Mapping[str, str] = DEFAULT_DESCRIPTION,
        speaker: str | Mapping[str, str] = "",
        language: str = "en",
        play_steps_s: float = 1.0,
        seed: int = 0,
        output_sample_rate: int = 16000,
        gen_kwargs: dict | None = None,
    ) -> None:
        try:
            import torch
            from parler_tts import ParlerTTSForConditionalGeneration, ParlerTTSStreamer
            from transformers import AutoTokenizer
        except ImportError as error:
            raise missing_package(ParlerTTSHandler, error) from None
        self._torch = torch
        self._streamer_class = ParlerTTSStreamer
        self.device = device
        self.gen_kwargs = {k: v for k, v in (gen_kwargs or {}).items() if v is not None}
        self.descriptions = per_language(description or DEFAULT_DESCRIPTION, DEFAULT_DESCRIPTION)
        self.speakers = per_language(speaker) if speaker else dict(DEFAULT_SPEAKERS)
        self.language = language.removesuffix("-auto")
        self.seed = seed
        self.output_sample_rate = output_sample_rate
        self.max_prompt_pad_length = max_prompt_pad_length

        self.model = ParlerTTSForConditionalGeneration.from_pretrained(
            model_name, torch_dtype=getattr(torch, torch_dtype)
        ).to(device)
        self.model.eval()
        self.prompt_tokenizer = AutoTokenizer.from_pretrained(model_name)
        # Multilingual checkpoints describe voices with their text encoder's own
        # tokenizer (e.g. google/flan-t5-large), not the prompt tokenizer.
        self.description_tokenizer = (
            AutoTokenizer.from_pretrained(description_tokenizer) if description_tokenizer else self.prompt_tokenizer
        )
        self._description_inputs: dict[str, tuple[Any, Any]] = {}

        codec = self.model.audio_encoder.config
        self.model_sample_rate = int(codec.sampling_rate)
        # The streamer needs more steps than codebooks (Parler's delay pattern).
        self.play_steps = max(self.model.decoder.num_codebooks + 1, int(codec.frame_rate * play_steps_s))

        self.compile_mode = compile_mode or None
        if self.compile_mode not in (None, "default"):
            logger.warning(
                "Parler: compile mode %r captures CUDA graphs, which Parler's generate does not support; "
                "using 'default'",
                self.compile_mode,
            )
            self.compile_mode = "default"
        if self.compile_mode:
            # Each padded length is one graph; leave room for all of them (x2 for the
            # prefill and decode shapes) so dynamo does not fall back to eager.
            torch._dynamo.config.cache_size_limit = max(
                torch._dynamo.config.cache_size_limit, 2 * len(pad_lengths(max_prompt_pad_length)) + 4
            )
            # transformers logs deprecation notices (warning_once) inside the forward pass;
            # with fullgraph=True a logging call is an error, so compiled code skips them.
            ignored = getattr(torch._dynamo.config, "ignore_logging_functions", None)
            if ignored is None:
                ignored = getattr(torch._dynamo.config, "ignore_logger_methods", set())
            ignored.update(
                getattr(logging.Logger, name) for name in ("warning_once", "warning") if hasattr(logging.Logger, name)
            )
            _static_cache_batch_size_alias()
            self.model.generation_config.cache_implementation = "static"
            self.model.forward = torch.compile(self.model.forward, mode=self.compile_mode, fullgraph=True)

    # --- inputs ---------------------------------------------------------------------
    def description_for(self, language: str | None) -> str:
        """The voice description for a sentence's language, speaker filled in."""
        code = (language or self.language).removesuffix("-auto")
        template = self.descriptions.get(code, self.descriptions["default"])
        speaker = self.speakers.get(code, self.speakers["default"])
        return template.replace("{speaker}", speaker)

    def prompt_length(self, text: str) -> int:
        """The length the prompt is fed at: its token count, padded to the next
        power of two when compiled (so it hits a warmed-up graph)."""
        n_tokens = len(self.prompt_tokenizer(text).input_ids)
        if not self.compile_mode:
            return n_tokens
        length = max(MIN_PAD_LENGTH, next_power_of_2(n_tokens))
        if length > self.max_prompt_pad_length:
            logger.warning("Parler: %d-token prompt is longer than the warmed-up lengths: compiling anew", n_tokens)
        return length

    def model_inputs(self, text: str, language: str | None, pad_to: int | None = None) -> dict[str, Any]:
        description = self.description_for(language)
        if description not in self._description_inputs:
            tokens = self.description_tokenizer(description, return_tensors="pt")
            self._description_inputs[description] = (
                tokens.input_ids.to(self.device),
                tokens.attention_mask.to(self.device),
            )
        input_ids, attention_mask = self._description_inputs[description]
        padding = {"padding": "max_length", "max_length": pad_to} if pad_to else {}
        prompt = self.prompt_tokenizer(text, return_tensors="pt", **padding)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "prompt_input_ids": prompt.input_ids.to(self.device),
            "prompt_attention_mask": prompt.attention_mask.to(self.device),
            **self.gen_kwargs,
        }

    # --- life cycle -----------------------------------------------------------------
    def warmup(self) -> None:
        if self.compile_mode:
            # Longest first: the first call of each shape compiles, the second runs the
            # compiled graph (and catches a guard that recompiles on the second call).
            for length in reversed(pad_lengths(self.max_prompt_pad_length)):
                inputs = self.model_inputs("Hello.", None, pad_to=length)
                for _ in range(2):
                    self.model.generate(**inputs)
                logger.info("Parler: warmed up %d-token prompts", length)
        else:
            self.model.generate(**self.model_inputs("Hello.", None))

    def stream(self, text: str, language: str | None = None) -> Iterator[np.ndarray]:
        """float32 audio pieces at the model's rate, each as soon as it is decoded."""
        length = self.prompt_length(text)
        inputs = self.model_inputs(text, language, pad_to=length if self.compile_mode else None)
        streamer = self._streamer_class(self.model, device=self.device, play_steps=self.play_steps)
        abandon = threading.Event()
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                from transformers import StoppingCriteriaList

                self.model.generate(
                    **inputs, streamer=streamer, stopping_criteria=StoppingCriteriaList([_stop_when(abandon)])
                )
            except BaseException as error:
                failure.append(error)
                streamer.on_finalized_audio(np.zeros(0, dtype=np.float32), stream_end=True)  # unblock the reader

        if self.seed >= 0:
            self._torch.manual_seed(self.seed)  # sampling: the same sentence sounds the same
        worker = threading.Thread(target=generate, name="parler-generate", daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            abandon.set()  # a reader that left early stops generation at the next step
            worker.join()
        if failure:
            raise failure[0]

    def synthesize(self, text: str, language: str | None = None) -> Iterator[np.ndarray]:
        """int16 pieces at the output rate, every `play_steps_s` of speech as
        it is generated; one resampler per sentence, so the joins are seamless."""
        resampler = StreamResampler(self.model_sample_rate, self.output_sample_rate)
        for piece in self.stream(text, language):
            yield resampler.push(piece)
        yield resampler.flush()
