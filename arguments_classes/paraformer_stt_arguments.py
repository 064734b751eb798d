from dataclasses import dataclass, field


@dataclass
class ParaformerSTTHandlerArguments:
    """Paraformer through FunASR (Mandarin); weights come from ModelScope or the hub on first use."""

    stt_model_name: str = field(
        default="paraformer-zh",
        metadata={
            "help": "A FunASR name ('paraformer-zh', 'paraformer-en'), a ModelScope id, or a local model folder."
        },
    )
    stt_device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda'."})
    stt_hub: str = field(default="ms", metadata={"help": "Where FunASR fetches weights: 'ms' (ModelScope) or 'hf'."})
    language: str = field(default="zh", metadata={"help": "Language of the model's transcripts, passed on to the LLM."})
