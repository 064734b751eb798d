from dataclasses import dataclass, field


@dataclass
class VADHandlerArguments:
    """Silero VAD and the end-of-turn state machine (the seed's parameters)."""

    thresh: float = field(
        default=0.3,
        metadata={"help": "Speech probability above which a 32 ms window counts as speech."},
    )
    sample_rate: int = field(
        default=16000,
        metadata={"help": "Sample rate of the incoming audio; Silero runs at 16000 (or 8000)."},
    )
    min_silence_ms: int = field(
        default=300,
        metadata={
            "help": "With --turn_detector silence or smart-turn: the silence that ends a turn, in ms. Shorter "
            "answers sooner but cuts pauses."
        },
    )
    min_speech_ms: int = field(
        default=500,
        metadata={"help": "Utterances shorter than this are ignored as noise, in ms."},
    )
    max_speech_ms: float = field(
        default=float("inf"),
        metadata={"help": "Force an end of turn after this much continuous speech, in ms."},
    )
    speech_pad_ms: int = field(
        default=500,
        metadata={"help": "Audio kept before speech starts and after it ends, in ms."},
    )
    speculative_stt_ms: int = field(
        default=50,
        metadata={
            "help": "Start answering this many ms into a pause, while still waiting for --min_silence_ms "
            "(0: off). If the pause does end the turn, the transcript (and with --speculative_reply the "
            "reply) is ready sooner; if speech resumes, the work is dropped. Only STT backends that "
            "support it (faster-whisper) use it."
        },
    )
    speculative_reply: bool = field(
        default=True,
        metadata={
            "help": "With --speculative_stt_ms: answer the early transcript too (LLM and TTS start before the "
            "end of turn); the reply's audio is held until the VAD confirms the turn, and dropped if speech "
            "resumes. False: only the transcript is prepared early."
        },
    )
    join_window_ms: int = field(
        default=1500,
        metadata={
            "help": "Speech resuming this soon after an end of turn, before any of the reply was heard, continues "
            "that turn: the reply is withdrawn and the whole utterance answered once (live modes)."
        },
    )
    unfinished_silence_ms: int = field(
        default=900,
        metadata={
            "help": "End-of-turn silence (with --turn_detector evidence: the least) when the early transcript of "
            "the pause stops mid-sentence (on 'of', 'and', 'the', a comma, '...'): the speaker is probably "
            "thinking, not done. Needs --speculative_stt_ms with --speculative_reply."
        },
    )
    turn_detector: str = field(
        default="evidence",
        metadata={
            "help": "'evidence': at each moment of a pause, the odds that the turn is over from the silence so "
            "far, the early transcript's words, the Smart Turn v3.2 model where installed (pip install "
            "--no-deps pipecat-ai==1.14.0) and the speaker's own pauses; the turn ends when they pass "
            "--eagerness's bar. "
            "'silence': a turn ends after --min_silence_ms (--unfinished_silence_ms when the words dangle). "
            "'smart-turn': also ask Smart Turn once a pause is --finished_silence_ms old; a finished-sounding "
            "turn ends there, an unfinished one waits --unfinished_silence_ms."
        },
    )
    eagerness: str = field(
        default="auto",
        metadata={
            "help": "With --turn_detector evidence: low (wait longer for the speaker to go on), medium, high "
            "(answer sooner) or auto (medium). A realtime client's semantic_vad eagerness overrides it."
        },
    )
    finished_silence_ms: int = field(
        default=150,
        metadata={
            "help": "With --turn_detector smart-turn: the silence that ends a turn Smart Turn hears as finished."
        },
    )
    incremental_stt_ms: int = field(
        default=1000,
        metadata={
            "help": "While the user speaks, send the STT the speech so far every this many ms of it (0: off), "
            "so the turn is transcribed as it goes and only its last words are left at its end. Only STT "
            "backends that support it (faster-whisper) use it."
        },
    )
