"""The interruption set: sounds a listener makes over a reply, each labelled with what it should do.

    python benchmarks/interruption_set.py      # writes tests/data/interruptions/ (committed)

What the assistant should do when each plays over its reply:
- `backchannel` ("uh-huh", "mm-hmm", "yeah", "okay", "right", "I see", ...)
  and `noise` (coughs, laughs, a breath, knocks, a door): go on, whole;
- `interruption_short` ("wait", "stop", "no", "hold on", ...) and
  `interruption_long` ("no, I meant...", a new question): stop.

The voices: Piper's packaged en_US "joe" at three speeds and with its
sampling noise (each rendering differs a little), espeak-ng's American and
British voices (formant synthesis: a harder test for the STT), and the shared
human recordings: every "right" the ALSA and Asterisk clips say, cut out at
Whisper's word times, the Asterisk "thank you" prompts, "no", "pause", "I'm
sorry", the "wait" of "please wait", and whole Asterisk prompts and spoken
questions as long interruptions.  The noises are synthesized here (numpy and
scipy, fixed seeds): a cough is a burst of vocal-tract-shaped noise with a
voiced onset, a laugh a train of breathy "ha" syllables on a falling pitch,
a breath slow band-passed noise, a knock a few damped wood resonances, a door
a low thump with a rattle.  Everything is 16 kHz mono FLAC, levelled to
-20 dBFS RMS over its sound; `manifest.tsv` lists file, kind, text, source.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from scipy import signal

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "interruptions"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio, resample  # noqa: E402
from benchmarks.harness import HUMAN  # noqa: E402

RATE = 16000
LEVEL_DBFS = -20.0

PIPER_BACKCHANNELS = ["Uh-huh.", "Mm-hmm.", "Yeah.", "Okay.", "Right.", "I see.", "Oh, I see.", "Yeah, yeah.",
                      "Sure.", "Got it.", "Mhm.", "Right, right."]  # fmt: skip
ESPEAK_BACKCHANNELS = ["uh-huh", "mm-hmm", "yeah", "okay", "right", "I see"]
PIPER_SHORT = ["Wait.", "Stop.", "Stop, please.", "No.", "Hold on.", "Wait, wait.", "Sorry?", "Hang on."]
ESPEAK_SHORT = ["stop", "wait", "no"]
PIPER_LONG = [
    "No, I meant the capital of Spain.",
    "Actually, can you tell me about Paris instead?",
    "Wait, what did you say about the train?",
    "Stop, that is not what I asked.",
    "Sorry, I have another question.",
]
# (file, word, kind): words cut out of the shared human clips (at Whisper's word times).
HUMAN_WORDS = [
    ("alsa/Front_Right.wav", "right", "backchannel"),
    ("alsa/Side_Right.wav", "right", "backchannel"),
    ("alsa/Rear_Right.wav", "right", "backchannel"),
    ("asterisk_en/letters__ascii93.wav", "right", "backchannel"),
    ("asterisk_en/vm-dialout.wav", "wait", "interruption_short"),
]
# (file, kind, text; None: the clip's own transcript).
HUMAN_WHOLE = [
    ("asterisk_en/auth-thankyou.wav", "backchannel", "Thank you."),
    ("asterisk_en/privacy-thankyou.wav", "backchannel", "Thank you."),
    ("asterisk_en/vm-no.wav", "interruption_short", "No."),
    ("asterisk_en/dictate__pause.wav", "interruption_short", "Pause."),
    ("asterisk_en/im-sorry.wav", "interruption_short", "I'm sorry."),
    ("asterisk_en/vm-nomore.wav", "interruption_short", "No more messages."),
    ("asterisk_en/vm-dialout.wav", "interruption_long", "Please wait while I connect your call."),
    ("asterisk_en/vm-toreply.wav", "interruption_long", None),
    ("asterisk_en/conf-unlockednow.wav", "interruption_long", None),
    ("pocketsphinx/goforward.wav", "interruption_long", None),
]


def level(audio: np.ndarray) -> np.ndarray:
    """float audio to int16 at LEVEL_DBFS RMS over its loud part, never clipping."""
    audio = audio.astype(np.float64)
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = rms[rms > 0.1 * rms.max()] if rms.size and rms.max() > 0 else np.array([1.0])
    gain = 10 ** (LEVEL_DBFS / 20) / float(np.sqrt(np.mean(loud**2)))
    gain = min(gain, 0.95 / max(1e-9, float(np.max(np.abs(audio)))))
    return np.round(audio * gain * 32767).astype(np.int16)


def trim(audio: np.ndarray, pad_s: float = 0.05) -> np.ndarray:
    """Cut leading and trailing silence (below -50 dB of the peak), keeping a little."""
    peak = float(np.max(np.abs(audio))) or 1.0
    loud = np.nonzero(np.abs(audio) > peak * 10 ** (-50 / 20))[0]
    if not loud.size:
        return audio
    pad = int(pad_s * RATE)
    return audio[max(0, loud[0] - pad) : loud[-1] + pad]


# --- voices -----------------------------------------------------------------------------------------
def piper_voice():
    from benchmarks.harness import make_handler
    from TTS.piper_handler import PiperTTSHandler

    return make_handler(PiperTTSHandler, voice="joe", output_sample_rate=RATE)


def piper(voice, text: str, length_scale: float) -> np.ndarray:
    from piper import SynthesisConfig

    voice.synthesis = SynthesisConfig(length_scale=length_scale)
    return trim(np.concatenate(list(voice.synthesize(text))).astype(np.float64) / 32768)


def espeak(text: str, voice: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", out.name, text], check=True)
        audio, rate = soundfile.read(out.name, dtype="float64")
    return trim(resample(audio.astype(np.float32), rate, RATE).astype(np.float64))


def human_word(stt, file: str, word: str) -> np.ndarray:
    """One word cut out of a human clip, at Whisper's word times."""
    audio = load_audio(HUMAN / file).astype(np.float32) / 32768
    segments, _ = stt.model.transcribe(audio, language="en", word_timestamps=True, beam_size=1)
    for timed in (w for segment in segments for w in segment.words):
        if timed.word.strip(" .,?!").lower() == word:
            return audio[max(0, int((timed.start - 0.04) * RATE)) : int((timed.end + 0.08) * RATE)].astype(np.float64)
    raise LookupError(f"{word!r} not found in {file}")


# --- noises -------------------------------------------------------------------------------------------
def envelope(length: int, attack_s: float, decay_s: float) -> np.ndarray:
    t = np.arange(length) / RATE
    return np.minimum(1.0, t / max(attack_s, 1e-4)) * np.exp(-np.maximum(0.0, t - attack_s) / decay_s)


def formants(source: np.ndarray, peaks: list[tuple[float, float]]) -> np.ndarray:
    """`source` through resonators at (frequency, bandwidth) pairs, summed."""
    out = np.zeros_like(source)
    for frequency, bandwidth in peaks:
        b, a = signal.iirpeak(frequency, frequency / bandwidth, RATE)
        out += signal.lfilter(b, a, source)
    return out


def cough(rng: np.random.Generator, bursts: int, length_s: float) -> np.ndarray:
    pieces = []
    for index in range(bursts):
        n = int(length_s * RATE * (1.0 - 0.2 * index))
        noise = formants(rng.normal(0, 1, n), [(500, 300), (1400, 500), (2600, 700)])
        t = np.arange(n) / RATE
        voice = signal.sawtooth(2 * np.pi * (170 - 60 * t) * t) * (t < 0.06)
        pieces.append((noise + 2.0 * formants(voice, [(600, 200), (1200, 300)])) * envelope(n, 0.006, 0.09))
        pieces.append(np.zeros(int(0.18 * RATE)))
    return np.concatenate(pieces)


def laugh(rng: np.random.Generator, syllables: int, pitch: float) -> np.ndarray:
    pieces = []
    for index in range(syllables):
        f0 = pitch * (1.0 - 0.06 * index)
        breath = formants(rng.normal(0, 1, int(0.05 * RATE)), [(1200, 800)]) * 0.4
        n = int(0.13 * RATE)
        t = np.arange(n) / RATE
        pulses = signal.sawtooth(2 * np.pi * f0 * t, 0.1) + 0.3 * rng.normal(0, 1, n)
        vowel = formants(pulses, [(850, 120), (1250, 150), (2600, 250)]) * envelope(n, 0.015, 0.06)
        pieces += [breath, vowel, np.zeros(int(0.07 * RATE))]
    return np.concatenate(pieces)


def breath(rng: np.random.Generator, length_s: float) -> np.ndarray:
    n = int(length_s * RATE)
    b, a = signal.butter(2, [400, 2500], btype="band", fs=RATE)
    shape = np.sin(np.pi * np.arange(n) / n) ** 2
    return signal.lfilter(b, a, rng.normal(0, 1, n)) * shape


def knock(rng: np.random.Generator, knocks: int, wood: float) -> np.ndarray:
    pieces = []
    for _ in range(knocks):
        n = int(0.12 * RATE)
        t = np.arange(n) / RATE
        hit = sum(np.sin(2 * np.pi * wood * k * t) * np.exp(-t / (0.03 / k)) for k in (1, 2.3, 4.1))
        hit += rng.normal(0, 1, n) * np.exp(-t / 0.004)
        pieces += [hit, np.zeros(int(rng.uniform(0.12, 0.2) * RATE))]
    return np.concatenate(pieces)


def door(rng: np.random.Generator) -> np.ndarray:
    n = int(0.5 * RATE)
    t = np.arange(n) / RATE
    thump = np.sin(2 * np.pi * 70 * t) * np.exp(-t / 0.08)
    rattle = formants(rng.normal(0, 1, n), [(900, 600), (2200, 900)]) * np.exp(-t / 0.12) * 0.3
    return thump + rattle


def noises() -> list[tuple[str, np.ndarray, str]]:
    rng = np.random.default_rng(23)
    return [
        ("cough_single", cough(rng, 1, 0.35), "a single cough"),
        ("cough_double", cough(rng, 2, 0.3), "two coughs"),
        ("cough_short", cough(rng, 1, 0.22), "a short cough"),
        ("cough_triple", cough(rng, 3, 0.25), "three coughs"),
        ("laugh_short", laugh(rng, 3, 230), "a short laugh"),
        ("laugh_long", laugh(rng, 6, 200), "a laugh"),
        ("laugh_low", laugh(rng, 4, 130), "a low laugh"),
        ("breath_in", breath(rng, 0.6), "a breath in"),
        ("breath_sigh", breath(rng, 0.9), "a sigh"),
        ("knock_two", knock(rng, 2, 180), "two knocks"),
        ("knock_three", knock(rng, 3, 240), "three knocks"),
        ("door", door(rng), "a door shut"),
    ]


def build() -> list[dict[str, str]]:
    from benchmarks.harness import make_handler, read_transcripts
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    stt = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="en")
    transcripts = {row["file"]: row["transcript"] for row in read_transcripts(HUMAN)}
    voice = piper_voice()
    rows: list[dict[str, str]] = []

    def add(name: str, audio: np.ndarray, kind: str, text: str, source: str) -> None:
        soundfile.write(OUT / f"{name}.flac", level(audio), RATE, subtype="PCM_16")
        rows.append({"file": f"{name}.flac", "kind": kind, "text": text, "source": source})

    for index, text in enumerate(PIPER_BACKCHANNELS):
        add(f"bc_piper_{index:02d}", piper(voice, text, (0.9, 1.0, 1.15)[index % 3]), "backchannel", text, "piper joe")
    for index, text in enumerate(ESPEAK_BACKCHANNELS):
        for accent in ("en-us", "en-gb"):
            add(f"bc_espeak_{accent}_{index:02d}", espeak(text, accent), "backchannel", text, f"espeak-ng {accent}")
    for index, (file, word, kind) in enumerate(HUMAN_WORDS):
        prefix = "bc" if kind == "backchannel" else "short"
        add(f"{prefix}_human_{index:02d}", human_word(stt, file, word), kind, word, f"human {file} (a word of it)")
    for name, audio, text in noises():
        add(f"noise_{name}", audio, "noise", text, "synthesized (numpy/scipy)")
    for index, text in enumerate(PIPER_SHORT):
        length = (0.9, 1.0, 1.15)[index % 3]
        add(f"short_piper_{index:02d}", piper(voice, text, length), "interruption_short", text, "piper joe")
    for index, text in enumerate(ESPEAK_SHORT):
        add(f"short_espeak_{index:02d}", espeak(text, "en-us"), "interruption_short", text, "espeak-ng en-us")
    for index, text in enumerate(PIPER_LONG):
        add(f"long_piper_{index:02d}", piper(voice, text, 1.0), "interruption_long", text, "piper joe")
    for index, (file, kind, text) in enumerate(HUMAN_WHOLE):
        prefix = {"backchannel": "bc", "interruption_short": "short", "interruption_long": "long"}[kind]
        audio = trim(load_audio(HUMAN / file).astype(np.float64) / 32768)
        add(f"{prefix}_human_whole_{index:02d}", audio, kind, text or transcripts[file], f"human {file}")
    return rows


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = build()
    with open(OUT / "manifest.tsv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["file", "kind", "text", "source"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    kinds = {kind: sum(row["kind"] == kind for row in rows) for kind in dict.fromkeys(row["kind"] for row in rows)}
    print(f"{len(rows)} clips in {OUT}: {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
