"""What the tests and the benchmarks both stand on: the shared test audio, and a handler built alone.

The tests' `conftest.py` takes these from here, so a benchmark needs nothing
of the test suite's.  Importing this module also makes the hubs offline:
nothing may download model weights at run time, and a hub that cannot be
reached should fail at once rather than hang.
"""

from __future__ import annotations

import csv
import os
import queue
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_AUDIO = Path(os.environ.get("S2S_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
QUESTIONS = SHARED_AUDIO / "questions"
HUMAN = SHARED_AUDIO / "human"
# The API key the servers of the tests and benchmarks are started with, where one is wanted.
TEST_API_KEY = "test-key-" + "x" * 16


def read_transcripts(folder: Path) -> list[dict[str, str]]:
    """A folder's `transcripts.tsv`, one dict per row (its header's names)."""
    with open(folder / "transcripts.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def make_handler(handler_class, **setup_kwargs):
    """A handler built through its real setup(), with private queues."""
    return handler_class(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs=setup_kwargs)


def assistant_speech(text: str, rate: int = 16000, pause_s: float = 0.25):
    """`text` in the assistant's voice (Piper's joe) as a reply plays it:
    its sentences with a short pause after each.  Rendered without Piper's
    sampling noise, so every run has the same audio: what is measured on it
    (an echo canceller, a judge of sounds over it) must not move with the
    rendering."""
    import numpy as np
    from piper import SynthesisConfig

    from TTS.piper_handler import PiperTTSHandler

    tts = make_handler(PiperTTSHandler, voice="joe", output_sample_rate=rate)
    tts.synthesis = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    pause = np.zeros(int(rate * pause_s), np.int16)
    return np.concatenate([np.concatenate([sentence, pause]) for sentence in tts.synthesize(text)])
