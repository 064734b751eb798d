from dataclasses import dataclass, field


@dataclass
class ModuleArguments:
    """Which input/output mode and which backend for each stage."""

    mode: str = field(
        default="socket",
        metadata={"help": "Where audio comes from and goes to: 'socket', 'local', 'file' or 'realtime'."},
    )
    stt: str = field(
        default="faster-whisper",
        metadata={"help": "Speech-to-text backend (see README for the list)."},
    )
    llm: str = field(
        default="llama_cpp",
        metadata={"help": "Language model backend (see README for the list)."},
    )
    tts: str = field(
        default="piper",
        metadata={"help": "Text-to-speech backend (see README for the list)."},
    )
    preset: str | None = field(
        default=None,
        metadata={
            "help": "Named settings for the stages, chosen by measured accuracy and latency "
            "(benchmarks/RESULTS_answers.md): 'fast' or 'quality'; omitted: the default stack. "
            "Flags given explicitly (or keys of a JSON config) win over the preset."
        },
    )
    device: str | None = field(
        default=None,
        metadata={"help": "If set, overrides the device of every stage (e.g. 'cpu', 'cuda')."},
    )
    first_clause_words: int = field(
        default=4,
        metadata={
            "help": "Speak the reply's first clause as soon as it has this many words and a clause mark "
            "(',', ';', ':', a dash) instead of waiting for the first full sentence. 0: whole sentences only."
        },
    )
    first_phrase_words: int = field(
        default=5,
        metadata={
            "help": "Speak the reply's first phrase as soon as it has this many words, even without punctuation: "
            "it is cut before a word that opens a new phrase ('and', 'with', 'to', ...), never inside a "
            "number. 0: only clause marks and sentence ends."
        },
    )
    first_piece_words: int = field(
        default=4,
        metadata={
            "help": "The fewest words the reply's first piece may have: a shorter first sentence ('Certainly!', "
            "'Sure.') waits for the words after it instead of being said alone and followed by silence while the "
            "LLM writes the next sentence. A shorter whole reply still goes out at its end. 0: off."
        },
    )
    audio_cushion_ms: int = field(
        default=1500,
        metadata={
            "help": "Once a reply is playing, when less than this much of its audio is left ahead of the "
            "listener, the sentence being written goes to the TTS at its next clause mark or phrase instead of "
            "at its end, so a slow LLM pauses between clauses rather than going silent mid-answer. 0: off."
        },
    )
    interleave_replies: bool = field(
        default=True,
        metadata={
            "help": "With several conversations on one server, the LLM pauses a reply at a sentence it has handed "
            "to the TTS when another conversation's question waits, answers that one's first sentence, then "
            "goes on with the reply whose listener runs out of audio first. False: one whole reply after another."
        },
    )
    interleave_cover_ms: int = field(
        default=4000,
        metadata={
            "help": "With --interleave_replies, a reply yields the LLM to another conversation only once its "
            "listener has this much audio ahead (sent and not yet played, plus the words with the TTS), so it "
            "does not run dry while the others' sentences are written."
        },
    )
    first_audio_wait_ms: int = field(
        default=0,
        metadata={
            "help": "After the reply's first piece goes to the TTS, pause the LLM (llama.cpp, mlx-lm) until that "
            "piece's audio exists, for at most this many ms, so the two do not share the cores just then. 0: off."
        },
    )
    cpu_baton: bool = field(
        default=False,
        metadata={
            "help": "One CPU budget for the stages: the STT, the LLM (llama.cpp) and the TTS compute one at a time, "
            "each with every core (the LLM per token, the TTS per piece, the STT per decode), the work needed "
            "soonest first. Off by default: on 2 cores the LLM was faster without it, alone and beside a "
            "second speaker (benchmarks/RESULTS_contention.md). False: each stage computes whenever it likes."
        },
    )
    local_mac_optimal_settings: bool = field(
        default=False,
        metadata={"help": "Use the Apple-silicon backends (whisper-mlx, mlx-lm, melo) on macOS."},
    )
    metrics_file: str | None = field(
        default=None,
        metadata={"help": "Append each turn's metrics (JSON lines, with transcript and reply) to this file."},
    )
    metrics_port: int | None = field(
        default=None,
        metadata={
            "help": "Serve /metrics (Prometheus), /healthz and /readyz on this port (0: any free port; unset: "
            "none). Realtime mode serves them on --realtime_port anyway; this port is apart from the "
            "conversations' and needs no API key."
        },
    )
    metrics_host: str = field(
        default="127.0.0.1",
        metadata={"help": "Address the --metrics_port server binds (anything but loopback logs a warning)."},
    )
    log_level: str = field(
        default="info",
        metadata={"help": "Logging level: debug, info, warning or error."},
    )
