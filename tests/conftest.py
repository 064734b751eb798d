"""Shared fixtures: real models, loaded once per test session, and the shared audio."""

from __future__ import annotations

import difflib
import os
import queue
import re

import pytest

# The shared audio, the offline hubs and `make_handler` live beside the benchmarks, which use them too.
from benchmarks.harness import HUMAN, QUESTIONS, REPO, SHARED_AUDIO, make_handler, read_transcripts  # noqa: F401


def heard_word(heard: str, word: str) -> bool:
    """Whether `word` is among the words STT heard in synthesized speech.

    Piper samples its voice afresh on every call (VITS noise), so the same
    reply sounds a little different each time and whisper now and then
    spells a word of it wrongly ("paritz" for "Paris", seen once in CI).  A
    word that is nearly the same letters counts as heard; a different answer
    does not.
    """
    words = re.findall(r"[a-z']+", heard.lower())
    return bool(difflib.get_close_matches(word.lower(), words, n=1, cutoff=0.7))


def drain(q: queue.Queue) -> list:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


@pytest.fixture(scope="session", autouse=True)
def shared_audio_present():
    if not QUESTIONS.is_dir():
        pytest.exit(f"shared test audio not found at {SHARED_AUDIO} (set S2S_SHARED_AUDIO)", returncode=1)


@pytest.fixture(scope="session")
def stt_handler():
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    return make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="en")


@pytest.fixture(scope="session")
def llm_handler():
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    return make_handler(
        LlamaCppLanguageModelHandler,
        model_name="qwen2.5-0.5b",
        chat_size=2,
        init_chat_prompt="You are a helpful assistant. Answer in one short sentence.",
    )


@pytest.fixture(scope="session")
def tts_handler():
    from TTS.piper_handler import PiperTTSHandler

    return make_handler(PiperTTSHandler, voice="joe", output_sample_rate=16000)


# The test files that take longest (minutes: whole sets of recordings, real-time
# conversations), longest first, as the last full run measured them (2 cores, AMD EPYC).
# pytest-xdist (with --no-loadscope-reorder) hands whole files to its workers in
# collection order, so starting with these keeps one worker from being left alone
# with a long file at the end of the run.
LONGEST_FILES = (
    "test_stt_real.py", "test_local_mode.py", "test_languages_end_to_end.py", "test_browser.py", "test_realtime.py",
    "test_overlap.py", "test_socket_mode.py", "test_conversation.py", "test_llama_tool_decisions.py",
    "test_end_to_end.py", "test_realtime_tools.py", "test_operations.py", "test_stt_incremental_real.py",
    "test_file_mode_outcomes.py", "test_stage_failure.py", "test_llm_real.py", "test_startup.py", "test_scale_out.py",
    "test_llm_transformers.py", "test_agents_sdk.py", "test_cpu_baton_real.py", "test_llm_openai_api_tools.py",
    "test_echo_cancel.py", "test_builtin_tools.py", "test_output_answers.py", "test_piper_voices.py",
)  # fmt: skip


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: the cores this process may run on (`taskset` included), plus
    one worker to overlap the real-time waits."""
    return len(os.sched_getaffinity(0)) + 1


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept within a file
