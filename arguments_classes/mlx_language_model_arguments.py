from dataclasses import dataclass, field

from arguments_classes.llama_cpp_language_model_arguments import DEFAULT_SYSTEM_PROMPT


@dataclass
class MLXLanguageModelHandlerArguments:
    """mlx-lm on Apple silicon (macOS only)."""

    lm_model_name: str = field(
        default="mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        metadata={"help": "Hub id or local folder of an MLX instruct model with a chat template."},
    )
    user_role: str = field(default="user", metadata={"help": "Role name of the user's messages."})
    init_chat_role: str = field(default="system", metadata={"help": "Role of the initial prompt."})
    init_chat_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "System prompt."})
    chat_size: int = field(
        default=2, metadata={"help": "User/assistant exchanges kept in the prompt (system prompt always kept)."}
    )
    lm_gen_max_tokens: int = field(default=128, metadata={"help": "Most tokens in one reply."})
    lm_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0: greedy)."})
    lm_gen_top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (1: off)."})
