from dataclasses import dataclass, field

from arguments_classes.chat_arguments import ChatArguments


@dataclass
class TransformersLanguageModelHandlerArguments(ChatArguments):
    """A causal LM through Hugging Face transformers (safetensors folder, hub id, or a GGUF)."""

    lm_model_name: str = field(
        default="HuggingFaceTB/SmolLM2-360M-Instruct",
        metadata={
            "help": "Hub id or local folder of an instruct model with a chat template; a path to a .gguf file; "
            "or a packaged GGUF alias (smollm2-135m, qwen2.5-0.5b) that loads offline."
        },
    )
    lm_gguf_file: str | None = field(
        default=None,
        metadata={"help": "GGUF file name inside --lm_model_name (dequantised on load; needs: pip install gguf)."},
    )
    lm_device: str = field(default="cpu", metadata={"help": "torch device: 'cpu', 'cuda', 'cuda:1', 'mps'."})
    lm_torch_dtype: str = field(
        default="auto",
        metadata={"help": "'auto' (float32 on CPU, float16 elsewhere), 'float32', 'float16' or 'bfloat16'."},
    )
    lm_n_threads: int = field(
        default=0,
        metadata={"help": "torch CPU threads (0: torch's default). Process-wide: applies to every torch stage."},
    )
    lm_gen_max_new_tokens: int = field(default=128, metadata={"help": "Most tokens in one reply."})
    lm_gen_min_new_tokens: int = field(default=0, metadata={"help": "Fewest tokens in one reply."})
    lm_gen_do_sample: bool = field(default=False, metadata={"help": "Sample (True) or decode greedily (False)."})
    lm_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (used with do_sample)."})
