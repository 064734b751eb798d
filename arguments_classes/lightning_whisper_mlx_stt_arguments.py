from dataclasses import dataclass, field


@dataclass
class LightningWhisperSTTHandlerArguments:
    """lightning-whisper-mlx (Apple silicon only); weights come from the hub on first use."""

    stt_model_name: str = field(
        default="distil-large-v3",
        metadata={
            "help": "tiny, base, small, medium, large, large-v2, large-v3, distil-small.en, distil-medium.en, "
            "distil-large-v2 or distil-large-v3 (a hub id is cut to its last part)."
        },
    )
    stt_batch_size: int = field(default=6, metadata={"help": "Audio windows decoded together."})
    stt_quant: str | None = field(default=None, metadata={"help": "'4bit' or '8bit' weights (unset: full)."})
    language: str = field(
        default="en",
        metadata={
            "help": "Language code of the speaker, or 'auto' to detect it on every turn among en, fr, es, zh, ja, "
            "ko, hi, de, pt, pl, it, nl (anything else falls back to the last language heard); detected codes "
            "carry an '-auto' suffix, e.g. 'fr-auto'."
        },
    )
