"""Thread budgets follow the CPUs the process may use, not the machine's core count."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from utils.threads import engine_threads, physical_cores, usable_cpus


def test_budgets_count_the_usable_cpus():
    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert engine_threads(3) == 3 and engine_threads(0) == usable_cpus()
    assert 1 <= physical_cores() <= usable_cpus()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_on_one_cpu_every_engine_gets_one_thread():
    """As under `taskset -c 0`: the real STT, LLM and TTS handlers size their pools from it."""
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from tests.conftest import make_handler\n"
        "from STT.faster_whisper_handler import FasterWhisperSTTHandler\n"
        "from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler\n"
        "from TTS.piper_handler import PiperTTSHandler\n"
        "stt = make_handler(FasterWhisperSTTHandler)\n"
        "llm = make_handler(LlamaCppLanguageModelHandler)\n"
        "tts = make_handler(PiperTTSHandler)\n"
        "print(stt.cpu_threads, llm.model.n_threads, "
        "tts.voice.session.get_session_options().intra_op_num_threads)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["1", "1", "1"]
