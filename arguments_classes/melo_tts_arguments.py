from dataclasses import dataclass, field


@dataclass
class MeloTTSHandlerArguments:
    """MeloTTS (needs its own environment: MeloTTS pins transformers 4.27)."""

    tts_language: str = field(
        default="en",
        metadata={"help": "Default language (en, es, fr, zh, ja, ko); sentences in another of these switch to it."},
    )
    tts_speaker: str = field(
        default="",
        metadata={"help": "Speaker of the default language, e.g. EN-US, EN-BR, EN_INDIA, EN-AU. Empty: EN-US."},
    )
    tts_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda', 'mps' or 'auto'."})
    tts_max_loaded_models: int = field(
        default=2, metadata={"help": "Language models kept in memory at once (the default always stays)."}
    )
    tts_gen_speed: float = field(default=1.0, metadata={"help": "Speaking pace: >1 faster."})
    tts_gen_sdp_ratio: float | None = field(
        default=None, metadata={"help": "Stochastic duration share (Melo's default 0.2 if unset)."}
    )
    tts_gen_noise_scale: float | None = field(default=None, metadata={"help": "Prior noise (Melo's default 0.6)."})
    tts_gen_noise_scale_w: float | None = field(default=None, metadata={"help": "Duration noise (Melo's default 0.8)."})
    tts_output_sample_rate: int = field(
        default=16000, metadata={"help": "Rate the audio is resampled to for the output stage."}
    )
