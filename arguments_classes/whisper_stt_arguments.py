from dataclasses import dataclass, field


@dataclass
class WhisperSTTHandlerArguments:
    """Whisper through transformers (PyTorch): any hub id or local checkpoint folder."""

    stt_model_name: str = field(
        default="distil-whisper/distil-large-v3",
        metadata={
            "help": "A transformers Whisper checkpoint: hub id (needs internet the first time) or local folder, "
            "e.g. 'openai/whisper-large-v3-turbo', 'distil-whisper/distil-large-v3'."
        },
    )
    stt_device: str = field(default="auto", metadata={"help": "'cuda', 'mps', 'cpu' or 'auto' (best available)."})
    stt_torch_dtype: str | None = field(
        default=None,
        metadata={"help": "float32, float16 or bfloat16; unset: float16 on an accelerator, float32 on CPU."},
    )
    stt_compile_mode: str | None = field(
        default=None,
        metadata={
            "help": "torch.compile mode with a static KV cache: 'default', 'reduce-overhead' or 'max-autotune' "
            "(unset: no compilation). Pays off on a GPU; warm-up then takes longer."
        },
    )
    language: str = field(
        default="en",
        metadata={
            "help": "Language code of the speaker, or 'auto' to detect it on every turn among en, fr, es, zh, ja, "
            "ko, hi, de, pt, pl, it, nl (anything else falls back to the last language heard); detected codes "
            "carry an '-auto' suffix, e.g. 'fr-auto'."
        },
    )
    stt_gen_max_new_tokens: int = field(default=128, metadata={"help": "Most tokens in one transcript."})
    stt_gen_num_beams: int = field(default=1, metadata={"help": "Beam size (1: greedy, fastest)."})
    stt_gen_return_timestamps: bool = field(
        default=False, metadata={"help": "Predict segment timestamps (they are not kept in the text)."}
    )
    stt_gen_task: str = field(
        default="transcribe", metadata={"help": "'transcribe', or 'translate' (to English text)."}
    )
