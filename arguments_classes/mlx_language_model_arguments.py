from dataclasses import dataclass, field

from arguments_classes.chat_arguments import ChatArguments


@dataclass
class MLXLanguageModelHandlerArguments(ChatArguments):
    """mlx-lm on Apple silicon (macOS only)."""

    lm_model_name: str = field(
        default="mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        metadata={"help": "Hub id or local folder of an MLX instruct model with a chat template."},
    )
    lm_gen_max_tokens: int = field(default=128, metadata={"help": "Most tokens in one reply."})
    lm_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0: greedy)."})
    lm_gen_top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (1: off)."})
