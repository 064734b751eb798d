"""The whole cascade from the command line, as README shows it: real VAD, STT,
LLM and TTS on real audio files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from audio.pcm import int16_to_float, load_audio, resample
from tests.conftest import QUESTIONS, REPO, SHARED_AUDIO, heard_word


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "s2s_pipeline.py", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def answer_file(input_path, tmp_path, *extra: str) -> tuple[subprocess.CompletedProcess, np.ndarray, list[dict]]:
    output = tmp_path / "answer.wav"
    metrics = tmp_path / "metrics.jsonl"
    result = run_cli(
        "--mode", "file", "--input_file", str(input_path), "--output_file", str(output),
        "--metrics_file", str(metrics), *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    audio = load_audio(output)
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return result, audio, records


def test_three_questions_get_three_answers_in_order(tmp_path, stt_handler):
    """Spoken questions in, a spoken answer to each out, in order, each turn
    with its latency record."""
    result, audio, records = answer_file(QUESTIONS / "conversation_3turns.wav", tmp_path)
    assert [r["turn"] for r in records] == sorted(r["turn"] for r in records) and len(records) == 3
    transcripts = [line for line in result.stdout.splitlines() if "] you:" in line]
    assert len(transcripts) == 3
    assert "[turn 1] you:" in transcripts[0] and "france" in transcripts[0].lower()
    assert "leap" in transcripts[1].lower() or "days" in transcripts[1].lower()
    assert "boiling" in transcripts[2].lower()
    assert "3 turn(s) answered" in result.stdout
    heard, _ = stt_handler.transcribe(int16_to_float(audio[: 16000 * 6]))
    assert heard_word(heard, "paris"), heard
    for record in records:
        for key in ("stt_ms", "llm_first_sentence_ms", "tts_first_audio_ms", "end_of_turn_to_first_audio_ms"):
            assert record[key] is not None and record[key] > 0, (key, record)
        assert record["error"] is None
    assert records[0]["end_of_turn_to_first_audio_ms"] >= records[0]["stt_ms"]


def test_stereo_44k_input_is_converted_and_answered(tmp_path):
    data, rate = soundfile.read(QUESTIONS / "q03.wav", dtype="float32")
    stereo = np.stack([resample(data, rate, 44100)] * 2, axis=1)
    path = tmp_path / "q03_stereo_44k.wav"
    soundfile.write(path, stereo, 44100)
    result, audio, records = answer_file(path, tmp_path)
    assert len(records) == 1 and audio.size > 16000
    assert "how many days" in result.stdout.lower()


@pytest.mark.parametrize(
    "content,message",
    [(None, "not found"), (b"", "empty"), (b"RIFF1234WAVEfmt garbage" * 20, "cannot decode")],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, content, message):
    path = tmp_path / "question.wav"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("--mode", "file", "--input_file", str(path), "--output_file", str(tmp_path / "o.wav"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("s2s: error:")
    assert not (tmp_path / "o.wav").exists()


def test_file_mode_without_files_is_a_config_error(tmp_path):
    result = run_cli("--mode", "file")
    assert result.returncode == 2 and "needs --input_file" in result.stderr


def test_readmes_first_command_works_from_the_checkout(tmp_path, stt_handler):
    """The command under "Answer a question, offline", as printed, on the
    sample that ships with the repository (only the output goes elsewhere)."""
    import re
    import shlex

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Answer a question, offline") :]
    command = re.search(r"```bash\n(python s2s_pipeline.py [^\n]+)\n```", section).group(1)
    argv = shlex.split(command)[2:]
    input_file = REPO / argv[argv.index("--input_file") + 1]
    assert input_file.is_file() and REPO in input_file.parents  # in the repository, not ../shared
    argv[argv.index("--output_file") + 1] = str(tmp_path / "answer.wav")
    result = run_cli(*argv)
    assert result.returncode == 0, result.stderr[-3000:]
    # The first question a newcomer hears answered is heard word for word.
    assert "what is the capital of france?" in result.stdout.lower(), result.stdout
    heard, _ = stt_handler.transcribe(int16_to_float(load_audio(tmp_path / "answer.wav")))
    assert heard_word(heard, "paris"), heard


def test_a_preset_runs_the_whole_cascade(tmp_path):
    """`--preset fast` (the 0.5B model) from the command line, on a spoken question."""
    _, audio, records = answer_file(SHARED_AUDIO / "qa" / "qa01.wav", tmp_path, "--preset", "fast")
    (record,) = records
    assert "japan" in record["transcript"].lower() and "tokyo" in record["reply"].lower(), record
    assert audio.size > 16000


def test_the_default_stack_says_numbers_in_words(tmp_path):
    """A question whose answer is a number: the reply that reaches the voice
    (and the turn's record) reads it as words, never as digits."""
    _, audio, records = answer_file(SHARED_AUDIO / "qa" / "qa16.wav", tmp_path)
    (record,) = records
    assert "twenty" in record["reply"].lower() and not any(c.isdigit() for c in record["reply"]), record
    assert audio.size > 16000
