from dataclasses import dataclass, field


@dataclass
class ChatTTSHandlerArguments:
    """ChatTTS (pip install chattts; weights from the hub on first use)."""

    tts_source: str = field(
        default="huggingface",
        metadata={"help": "'huggingface' (hub, then its local cache) or 'custom' (a local folder in tts_model_path)."},
    )
    tts_model_path: str = field(default="", metadata={"help": "Local ChatTTS folder for --tts_source custom."})
    tts_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'mps'."})
    tts_compile: bool = field(default=False, metadata={"help": "torch.compile ChatTTS's GPT (GPU, slow start)."})
    tts_stream: bool = field(default=True, metadata={"help": "Yield audio pieces while the sentence is generated."})
    tts_refine_text: bool = field(
        default=False, metadata={"help": "Run ChatTTS's text refinement first (pauses, laughs; a second model run)."}
    )
    tts_speaker: str = field(default="", metadata={"help": "Speaker embedding string; empty: drawn from the seed."})
    tts_speaker_seed: int = field(
        default=0, metadata={"help": "Seed of the random speaker (the same seed, same voice)."}
    )
    tts_gen_temperature: float = field(default=0.3, metadata={"help": "Sampling temperature of the audio tokens."})
    tts_gen_top_P: float = field(default=0.7, metadata={"help": "Nucleus sampling threshold."})
    tts_gen_top_K: int = field(default=20, metadata={"help": "Top-k sampling."})
    tts_output_sample_rate: int = field(
        default=16000, metadata={"help": "Rate the 24 kHz audio is resampled to for the output stage."}
    )
