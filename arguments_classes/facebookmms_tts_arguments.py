from dataclasses import dataclass, field


@dataclass
class FacebookMMSTTSHandlerArguments:
    """Facebook MMS-TTS: one VITS checkpoint per language, loaded on first use."""

    tts_model_name_template: str = field(
        default="facebook/mms-tts-{lang}",
        metadata={
            "help": "Where each language's checkpoint is: a hub id or folder with '{lang}' for the MMS (ISO 639-3) "
            "code, e.g. '/models/mms-tts-{lang}'."
        },
    )
    tts_language: str = field(
        default="en",
        metadata={
            "help": "Default voice's language (Whisper code like 'en', or an MMS code like 'eng'); used when a "
            "sentence has no language or one MMS cannot speak."
        },
    )
    tts_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'mps'."})
    tts_torch_dtype: str = field(default="float32", metadata={"help": "float32, float16 or bfloat16."})
    tts_max_loaded_models: int = field(
        default=4, metadata={"help": "Voices kept in memory at once (the default voice always stays)."}
    )
    tts_speaking_rate: float | None = field(
        default=None, metadata={"help": "Speaking pace: >1 faster, <1 slower (checkpoint default if unset)."}
    )
    tts_noise_scale: float | None = field(
        default=None, metadata={"help": "VITS prior noise: more is livelier but less stable (checkpoint default)."}
    )
    tts_noise_scale_duration: float | None = field(
        default=None, metadata={"help": "VITS duration noise: rhythm variation (checkpoint default)."}
    )
    tts_seed: int = field(
        default=0, metadata={"help": "Seed set before each sentence so the same text sounds the same (<0: random)."}
    )
    tts_output_sample_rate: int = field(
        default=16000, metadata={"help": "Rate the audio is resampled to for the output stage."}
    )
