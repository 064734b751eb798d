from dataclasses import dataclass, field


@dataclass
class PiperTTSHandlerArguments:
    """Piper (ONNX VITS voices). Packaged voice: 'joe' (en_US-joe-medium)."""

    tts_voice: str = field(
        default="joe",
        metadata={
            "help": "The default voice: 'joe' (packaged en_US-joe-medium), a Piper voice name such as "
            "nl_NL-mls-medium (fetched from the hub into the cache on first use, offline afterwards), or a path "
            "to a voice .onnx. It also speaks its own language's sentences."
        },
    )
    tts_voices: str = field(
        default="",
        metadata={
            "help": "Voices for other languages, as language=voice pairs: 'nl=nl_NL-mls-medium,cs=/v/cs.onnx'. "
            "Languages without one use a Piper voice fetched into the cache before, else --tts_other_languages."
        },
    )
    tts_other_languages: str = field(
        default="auto",
        metadata={
            "help": "What speaks a language no Piper voice is installed for: 'auto' (the most intelligible installed, "
            "measured: 'kokoro' if its optional packages are there, else 'espeak'), 'kokoro' (Kokoro-82M's "
            "packaged Japanese voice reading the language's phonemes; ~2 s to first audio), 'espeak' (espeak-ng's "
            "voice of that language, from Piper's wheel; instant), 'phonemes' (the default voice reading the "
            "language's phonemes), 'default' (the default voice reading it as its own language)."
        },
    )
    tts_speaker_id: int | None = field(default=None, metadata={"help": "Speaker of a multi-speaker voice."})
    tts_length_scale: float | None = field(
        default=None, metadata={"help": "Speaking pace: >1 slower, <1 faster (voice default if unset)."}
    )
    tts_device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda' (onnxruntime-gpu)."})
    tts_output_sample_rate: int = field(
        default=16000, metadata={"help": "Rate the audio is resampled to for the output stage."}
    )
    tts_threads: int = field(
        default=0, metadata={"help": "onnxruntime threads for synthesis (0: one per CPU this process may use)."}
    )
    tts_max_words: int = field(
        default=20,
        metadata={
            "help": "Longest piece Piper is given, in words: a longer sentence is cut at a clause mark or phrase "
            "start (else between words). Piper's memory grows with the longest piece it ever spoke (20 words: "
            "about 350 MiB; 80: 570 MiB), and so does the wait for that piece's audio. 0: no limit."
        },
    )
    tts_split_first_sentence: bool = field(
        default=True,
        metadata={
            "help": "Synthesise the reply's first sentence in two pieces (cut after a clause mark or before a "
            "phrase), sending the first piece's audio as soon as it exists, so a long first sentence does not "
            "delay the first audio. False: whole sentences."
        },
    )
