"""Long spoken requests for latency and accuracy measurements, built from the shared audio.

The shared set has few long turns (six English human clips of 6 s and more).
Longer ones are made by joining real clips into one request: each clip is
trimmed to its speech and followed by a short pause, shorter than the VAD's
end-of-turn silence, the way a speaker pauses between sentences.  Such a
request is one turn for the VAD, with a pause (a speculation that speech then
cancels) between every two sentences.  Deterministic: the same clips, in the
same order, every time.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.pcm import load_audio, write_wav

RATE = 16000
REPO = Path(__file__).resolve().parent.parent
SHARED_AUDIO = Path(os.environ.get("S2S_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
# Between two joined clips: ~60 ms of each clip's own quiet edge plus this,
# well below the VAD's 300 ms end-of-turn silence.
PAUSE_S = 0.15
EDGE_S = 0.03
# Joined requests: two of each length (seconds, at least).
JOINED_LENGTHS_S = (8, 10, 12, 15, 20, 30)


@dataclass
class Request:
    path: Path
    reference: str
    seconds: float


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "transcripts.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def speech_span(samples: np.ndarray, edge_s: float = EDGE_S) -> np.ndarray:
    """The clip from its first to its last loud 20 ms frame (above 5% of its
    loudest frame), with `edge_s` of margin: its leading and trailing
    silence would add up to an end of turn between two joined clips."""
    frame = RATE // 50
    count = len(samples) // frame
    if count == 0:
        return samples
    levels = np.sqrt(np.mean(np.square(samples[: count * frame].astype(np.float64).reshape(count, frame)), axis=1))
    loud = np.flatnonzero(levels > 0.05 * levels.max())
    margin = int(edge_s * RATE)
    return samples[max(0, loud[0] * frame - margin) : min(len(samples), (loud[-1] + 1) * frame + margin)]


def long_human_clips(min_seconds: float = 6.0) -> list[Request]:
    """The English human clips of `min_seconds` and more, as they are."""
    human = SHARED_AUDIO / "human"
    requests = []
    for row in _rows(human):
        path = human / row["file"]
        if row["language"] == "en":
            seconds = len(load_audio(path)) / RATE
            if seconds >= min_seconds:
                requests.append(Request(path, row["transcript"], seconds))
    return sorted(requests, key=lambda r: r.seconds)


def _pieces() -> list[tuple[np.ndarray, str]]:
    """Clips to join: the spoken questions, then English human clips of
    2-6 s, longest first, alternating between folders."""
    questions = SHARED_AUDIO / "questions"
    pieces = [
        (load_audio(questions / row["file"]), row["transcript"])
        for row in _rows(questions)
        if row["file"].startswith("q")
    ]
    human = SHARED_AUDIO / "human"
    clips = []
    for row in _rows(human):
        if row["language"] == "en":
            samples = load_audio(human / row["file"])
            if 2 * RATE <= len(samples) < 6 * RATE:
                clips.append((samples, row["transcript"], row["file"]))
    clips.sort(key=lambda c: (-len(c[0]), c[2]))
    return pieces + [(samples, text) for samples, text, _ in clips]


def joined_requests(folder: Path, lengths_s: tuple[int, ...] = JOINED_LENGTHS_S, each: int = 2) -> list[Request]:
    """Write `each` requests of every length in `lengths_s` to `folder`
    (16 kHz WAV, half a second of silence before and after)."""
    folder.mkdir(parents=True, exist_ok=True)
    pieces = _pieces()
    pause = np.zeros(int(PAUSE_S * RATE), dtype=np.int16)
    edge = np.zeros(RATE // 2, dtype=np.int16)
    requests, next_piece = [], 0
    for length in lengths_s:
        for copy in range(each):
            parts, texts = [], []
            while sum(len(p) for p in parts) < length * RATE:
                samples, text = pieces[next_piece % len(pieces)]
                next_piece += 1
                parts += [speech_span(samples), pause]
                texts.append(text.strip())
            audio = np.concatenate([edge, *parts[:-1], edge])
            path = folder / f"joined_{length:02d}s_{copy + 1}.wav"
            write_wav(path, audio, RATE)
            requests.append(Request(path, " ".join(texts), len(audio) / RATE))
    return requests
