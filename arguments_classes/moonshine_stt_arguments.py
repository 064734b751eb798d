from dataclasses import dataclass, field


@dataclass
class MoonshineSTTHandlerArguments:
    """Moonshine through transformers (English); weights from the hub on first use, or a local folder."""

    stt_model_name: str = field(
        default="UsefulSensors/moonshine-base",
        metadata={"help": "'UsefulSensors/moonshine-base', 'UsefulSensors/moonshine-tiny' (faster) or a local folder."},
    )
    stt_device: str = field(default="auto", metadata={"help": "'cuda', 'mps', 'cpu' or 'auto' (best available)."})
    stt_torch_dtype: str | None = field(
        default=None,
        metadata={"help": "float32, float16 or bfloat16; unset: float16 on an accelerator, float32 on CPU."},
    )
    stt_tokens_per_second: float = field(
        default=6.5, metadata={"help": "Generation cap per second of audio; stops repetition loops early."}
    )
    stt_gen_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Hard cap on transcript tokens (unset: only the per-second cap)."}
    )
    stt_gen_num_beams: int = field(default=1, metadata={"help": "Beam size (1: greedy, fastest)."})
