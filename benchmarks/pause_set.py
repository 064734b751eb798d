"""The pause-heavy set: real utterances with a speaker's pause spliced into the middle.

    python benchmarks/pause_set.py --make     # find the splice points again (Whisper's word times)

People pause to think mid-sentence ("What is the capital city of ... France?"),
and most of all before the word they are looking for.  The shared clips rarely
do: they are read prompts and synthetic questions.  This set takes each English
human clip of three words or more and each spoken question, and inserts a
silence between two of its words: before the last word in every clip, and,
when it has six words or more, also after its first word from the third on that
needs a continuation ("of", "the", "and", ...), or in its middle.  The pauses last 400 to 1200
ms, in turn.  The silence is not digital zero: it is noise at the clip's own
noise floor, so the VAD hears a pause as it would in the room.

`pause_set.tsv` (committed) says where each pause goes (seconds into the clip,
at the quietest 10 ms between the two words Whisper timed) and how long it is;
`clips()` builds the audio from the shared recordings.  Used by
benchmarks/turn_detection.py beside the unspliced clips.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "benchmarks" / "pause_set.tsv"
sys.path.insert(0, str(REPO))

from audio.pcm import int16_to_float, load_audio  # noqa: E402
from benchmarks.harness import SHARED_AUDIO  # noqa: E402
from VAD.turn_end import DANGLING_WORDS  # noqa: E402

RATE = 16000
PAUSES_MS = (400, 600, 800, 1000, 1200)


def source_files() -> list[str]:
    """The spoken questions and every English human clip, relative to the shared audio."""
    found = [f"questions/{path.name}" for path in sorted((SHARED_AUDIO / "questions").glob("q0*.wav"))]
    found += [f"qa/{path.name}" for path in sorted((SHARED_AUDIO / "qa").glob("qa*.wav"))]
    with open(SHARED_AUDIO / "human" / "transcripts.tsv", newline="") as handle:
        found += [f"human/{row['file']}" for row in csv.DictReader(handle, delimiter="\t") if row["language"] == "en"]
    return found


def clips() -> list[tuple[str, np.ndarray]]:
    """(name, int16 audio) of every clip of the set, pauses spliced in."""
    out = []
    with open(TABLE, newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            audio = load_audio(SHARED_AUDIO / row["file"])
            at = [float(value) for value in row["at_s"].split(",")]
            pauses = [int(value) for value in row["pause_ms"].split(",")]
            out.append((f"{row['file']} +{'+'.join(map(str, pauses))}ms", splice(audio, at, pauses)))
    return out


def splice(audio: np.ndarray, at_s: list[float], pauses_ms: list[int]) -> np.ndarray:
    """`audio` with a pause of each length inserted at each time, at the clip's noise floor."""
    rng = np.random.default_rng(len(audio))
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160).astype(np.float64)
    floor = float(np.percentile(np.sqrt(np.mean(frames**2, axis=1)), 5)) if len(frames) else 0.0
    pieces, last = [], 0
    for at, pause in sorted(zip(at_s, pauses_ms, strict=True)):
        cut = int(at * RATE)
        pieces.append(audio[last:cut])
        noise = rng.normal(0.0, max(floor, 1.0), int(pause * RATE / 1000))
        pieces.append(np.clip(noise, -32768, 32767).astype(np.int16))
        last = cut
    pieces.append(audio[last:])
    return np.concatenate(pieces)


def quietest_between(audio: np.ndarray, start_s: float, end_s: float) -> float:
    """The middle of the quietest 10 ms between two times (a word's end and the next one's start)."""
    first, last = int(max(0.0, start_s - 0.03) * 100), int((end_s + 0.03) * 100)
    frames = [audio[i * 160 : (i + 1) * 160].astype(np.float64) for i in range(first, max(first + 1, last))]
    energy = [float(np.mean(frame**2)) if frame.size else float("inf") for frame in frames]
    return (first + int(np.argmin(energy))) / 100 + 0.005


def make(words_of) -> list[dict[str, str]]:
    """Choose the splice points; `words_of(file, audio)` gives [(word, start_s, end_s)]."""
    rows, count = [], 0
    for file in source_files():
        audio = load_audio(SHARED_AUDIO / file)
        words = words_of(file, int16_to_float(audio))
        if len(words) < 3:
            continue
        boundaries = {len(words) - 2}  # before the last word
        if len(words) >= 6:
            later = list(enumerate(words[:-2]))[2:]
            dangling = [i for i, (word, _, _) in later if word.strip(".,?!").lower() in DANGLING_WORDS]
            boundaries.add(dangling[0] if dangling else len(words) // 2 - 1)
        at, pauses = [], []
        for index in sorted(boundaries):
            at.append(round(quietest_between(audio, words[index][2], words[index + 1][1]), 3))
            pauses.append(PAUSES_MS[count % len(PAUSES_MS)])
            count += 1
        rows.append({"file": file, "at_s": ",".join(map(str, at)), "pause_ms": ",".join(map(str, pauses)),
                     "words": " ".join(word for word, _, _ in words)})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--make", action="store_true", help="find the splice points again and write pause_set.tsv")
    parser.add_argument("--words_json", help="word times already found: {file: {'words': [[w, start, end]]}}")
    args = parser.parse_args()
    if not args.make:
        built = clips()
        print(f"{len(built)} clips, {sum(len(a) for _, a in built) / RATE / 60:.1f} min")
        return 0
    if args.words_json:
        known = json.loads(Path(args.words_json).read_text())

        def words_of(file, _audio):
            return [tuple(word) for word in known[file]["words"]]
    else:
        from benchmarks.harness import make_handler
        from STT.faster_whisper_handler import FasterWhisperSTTHandler

        stt = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="en")

        def words_of(_file, audio):
            segments, _ = stt.model.transcribe(audio, language="en", word_timestamps=True, beam_size=1)
            return [(w.word.strip(), w.start, w.end) for segment in segments for w in segment.words]

    rows = make(words_of)
    with open(TABLE, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["file", "at_s", "pause_ms", "words"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} clips written to {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
