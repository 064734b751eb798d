from dataclasses import dataclass, field


@dataclass
class FasterWhisperSTTHandlerArguments:
    """faster-whisper (CTranslate2). Packaged aliases: 'whisper-base', 'tiny.en'."""

    stt_model_name: str = field(
        default="whisper-base",
        metadata={
            "help": "'whisper-base' (multilingual, packaged), 'tiny.en' (English, packaged), "
            "a local CTranslate2 folder, or a hub id such as 'large-v3' (needs internet)."
        },
    )
    stt_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'auto'."})
    stt_compute_type: str = field(
        default="int8",
        metadata={"help": "CTranslate2 compute type: int8, int8_float16, float16, float32, auto."},
    )
    stt_cpu_threads: int = field(
        default=0, metadata={"help": "CPU threads for the encoder/decoder (0: one per CPU this process may use)."}
    )
    language: str = field(
        default="en",
        metadata={
            "help": "Language code of the speaker, or 'auto' to detect it on every turn, on the whole utterance; a "
            "conversation keeps its language until the speaker clearly switches (the detected code also steers "
            "the LLM's reply language and the voice)."
        },
    )
    languages: str = field(
        default="",
        metadata={
            "help": "With --language auto: the languages to choose from, e.g. 'en,nl,cs' (Whisper's probabilities "
            "narrowed to these). Empty: any of Whisper's 99."
        },
    )
    stt_window_s: float | None = field(
        default=None,
        metadata={
            "help": "Shortest encoder window in seconds: a turn is decoded on max(this, its length + 1 s) "
            "instead of Whisper's fixed 30 s. Default: 10 for the packaged whisper-base (3.7x faster, WER "
            "8.6%% -> 7.6%% on 164 human clips, benchmarks/RESULTS_stt_window.md; below 10 s base starts to "
            "loop), 30 (faster-whisper's own decoding) for other models (tiny.en: 9.1%% -> 12.3%% at 10 s)."
        },
    )
    stt_incremental: bool = field(
        default=True,
        metadata={
            "help": "With --incremental_stt_ms: transcribe the turn while it is spoken, keeping the words two "
            "decodes agree on and decoding only the rest, so the end of a long turn costs what a short one does. "
            "Needs the short window (--stt_window_s below 30). False: each turn is decoded whole."
        },
    )
    stt_retry_ladder: bool = field(
        default=False,
        metadata={
            "help": "A short-window decode that looks wrong (a loop, unlikely text, likely silence) is decoded "
            "again on the full 30 s window. False: once, greedily, and with faster-whisper's temperature ladder "
            "only if that loops too. True: always with the ladder (up to six decodes; on Dutch and Czech lines, "
            "which Whisper base finds unlikely, p90 1.0 -> 3.8 s per line, WER within 1.5 points either way: "
            "benchmarks/RESULTS_stt_retry.md)."
        },
    )
    stt_context_s: float = field(
        default=4.0,
        metadata={
            "help": "With --stt_incremental: seconds of already transcribed speech a tail decode also hears (its "
            "words given as known text, so only the new ones are generated). On long requests, whisper-base: "
            "0 s WER 5.5%%, 2 s 5.2%%, 4 s 4.1%%, 9 s 4.2%% (whole-turn decodes 4.8%%), end-of-turn decode CPU "
            "time 205, 212, 304, 336 ms (whole turn 561 ms)."
        },
    )
    stt_gen_beam_size: int = field(default=1, metadata={"help": "Beam size (1: greedy, fastest)."})
    stt_gen_task: str = field(default="transcribe", metadata={"help": "'transcribe' or 'translate'."})
    stt_gen_condition_on_previous_text: bool = field(
        default=False, metadata={"help": "Condition on earlier windows (off: each turn stands alone)."}
    )
