from dataclasses import dataclass, field

# Measured on the 30 spoken questions of benchmarks/answers.py: the answer comes
# first (the first sentence the TTS speaks holds it), plain words for the voice,
# and "not sure" instead of a confident invention.
DEFAULT_SYSTEM_PROMPT = (
    "You are a voice assistant: your replies are spoken aloud. Answer the question directly in your "
    "first sentence, in one or two short sentences. Use plain spoken words: no lists, no markdown, "
    "no emoji. If you are not sure of a fact, say that you are not sure instead of guessing."
)


@dataclass
class ChatArguments:
    """The conversation options every LLM backend takes (its arguments class inherits them);
    they reach the handler's `setup_chat` (LLM/language_model.py)."""

    user_role: str = field(default="user", metadata={"help": "Role name of the user's messages."})
    init_chat_role: str = field(default="system", metadata={"help": "Role of the initial prompt."})
    init_chat_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "System prompt."})
    chat_size: int = field(
        default=2,
        metadata={"help": "User/assistant exchanges kept in the prompt of each turn (system prompt always kept)."},
    )
