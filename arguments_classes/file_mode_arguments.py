from dataclasses import dataclass, field


@dataclass
class FileModeArguments:
    """Headless mode: answer every turn in an audio file and write the answers."""

    input_file: str | None = field(default=None, metadata={"help": "Audio file to answer (any rate, mono or stereo)."})
    output_file: str | None = field(default=None, metadata={"help": "WAV file the spoken answers are written to."})
