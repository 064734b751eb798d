from dataclasses import dataclass, field


@dataclass
class ParlerTTSHandlerArguments:
    """Parler-TTS (needs its own environment: parler-tts pins transformers 4.46)."""

    tts_model_name: str = field(
        default="ylacombe/parler-tts-mini-jenny-30H",
        metadata={"help": "Parler-TTS checkpoint: hub id or local folder (model + prompt tokenizer)."},
    )
    tts_description_tokenizer: str = field(
        default="",
        metadata={
            "help": "Tokenizer for the voice description when it differs from the prompt's (multilingual "
            "checkpoints: their text encoder's, e.g. google/flan-t5-large). Empty: the model's own."
        },
    )
    tts_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'mps'."})
    tts_torch_dtype: str = field(
        default="float32", metadata={"help": "float32, float16 or bfloat16 (half precision on a GPU)."}
    )
    tts_compile_mode: str = field(
        default="",
        metadata={
            "help": "torch.compile the forward pass with a static cache ('default'); empty: no compilation. "
            "Prompts are then padded to powers of two, each warmed up at setup."
        },
    )
    tts_max_prompt_pad_length: int = field(
        default=128, metadata={"help": "Longest padded prompt (tokens) warmed up when compiled: 4, 8, ... this."}
    )
    tts_description: str = field(
        default="",
        metadata={
            "help": "Voice description; '{speaker}' is replaced by the language's speaker. A JSON object "
            'keyed by language code with a "default" entry gives one per language. Empty: "{speaker} speaks '
            'at a moderate pace with a slightly expressive tone, in a very close-sounding environment..."'
        },
    )
    tts_speaker: str = field(
        default="",
        metadata={
            "help": 'Speaker name, or a JSON object keyed by language code with a "default" entry. Empty: '
            "Jenny, and the multilingual checkpoints' named speakers for fr/de/es/it/pt/pl/nl."
        },
    )
    tts_language: str = field(default="en", metadata={"help": "Language of sentences that carry none."})
    tts_play_steps_s: float = field(
        default=1.0, metadata={"help": "Seconds of generated speech per streamed piece (lower: earlier first audio)."}
    )
    tts_seed: int = field(default=0, metadata={"help": "Sampling seed set per sentence (<0: random)."})
    tts_gen_min_new_tokens: int = field(
        default=64, metadata={"help": "Minimum codec frames generated (~86 per second for DAC checkpoints)."}
    )
    tts_gen_max_new_tokens: int = field(
        default=512, metadata={"help": "Maximum codec frames generated (~6 s for DAC checkpoints)."}
    )
    tts_output_sample_rate: int = field(
        default=16000, metadata={"help": "Rate the audio is resampled to for the output stage."}
    )
