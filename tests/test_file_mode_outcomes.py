"""File mode's exit status and last lines tell the truth about the run.

Through the real entry point in a child process, as a user runs it: a run
that answered nothing, failed a turn, could not write its output, or was
interrupted is never reported as a success, and an existing output file is
not replaced by silence.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import soundfile

from audio.pcm import load_audio
from tests.conftest import QUESTIONS, REPO
from tests.test_end_to_end import run_cli

FAST = ["--stt_model_name", "tiny.en", "--lm_model_name", "smollm2-135m"]


def file_mode(input_file, output_file, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("--mode", "file", "--input_file", str(input_file), "--output_file", str(output_file), *FAST, *extra)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("s2s: error:")]


def test_silent_input_says_no_speech_found_and_keeps_the_old_output(tmp_path):
    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(16000 * 3, np.int16), 16000, subtype="PCM_16")
    output = tmp_path / "answer.wav"
    output.write_bytes(b"an earlier answer")
    result = file_mode(silence, output)
    assert result.returncode == 1
    assert error_lines(result) == [f"s2s: error: no speech found in {silence}; {output} not written"]
    assert output.read_bytes() == b"an earlier answer"
    assert "Traceback" not in result.stderr


def test_an_unreachable_llm_server_fails_the_run_in_one_line_and_writes_no_silence(tmp_path):
    output = tmp_path / "answer.wav"
    result = file_mode(QUESTIONS / "q01.wav", output, "--llm", "open_api", "--lm_base_url", "http://127.0.0.1:9/v1",
                       "--lm_max_retries", "0")  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    (error,) = error_lines(result)
    assert error.startswith("s2s: error: turn 1 failed:") and "http://127.0.0.1:9/v1" in error
    assert "0 turn(s) answered" in result.stdout and "turn(s) answered; audio written" not in result.stdout
    assert not output.exists()
    assert "Traceback" not in result.stderr


def test_an_output_that_cannot_be_written_fails_before_the_models_load(tmp_path):
    result = file_mode(QUESTIONS / "q01.wav", REPO / "README.md" / "a.wav")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"s2s: error: cannot write {REPO / 'README.md' / 'a.wav'}: {REPO / 'README.md'} is a file, not a folder"
    ]
    result = file_mode(QUESTIONS / "q01.wav", tmp_path / "answer.txt")
    assert result.returncode == 1 and "end it in .wav" in result.stderr


def test_a_write_that_fails_at_the_end_is_an_error_not_a_success(tmp_path):
    """The folder is fine when the run starts and gone read-only by the end."""
    code = (
        "import sys, s2s_pipeline, audio.pcm\n"
        "from connections import file_io\n"
        "def refuse(path, samples, rate):\n"
        "    raise audio.pcm.AudioOutputError(f'cannot write {path}: No space left on device')\n"
        "file_io.write_wav = refuse\n"
        "sys.exit(s2s_pipeline.main(sys.argv[1:]))\n"
    )
    output = tmp_path / "answer.wav"
    result = subprocess.run(
        [sys.executable, "-c", code, "--mode", "file", "--input_file", str(QUESTIONS / "q01.wav"),
         "--output_file", str(output), *FAST],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    (error,) = error_lines(result)
    assert "FileAudioSink stopped: cannot write" in error and "No space left on device" in error
    assert "audio written" not in result.stdout


def interrupt_after(marker: str, input_file, output, timeout: float = 180) -> tuple[int, str, str]:
    """Run file mode, send Ctrl-C once stdout/stderr shows `marker`."""
    process = subprocess.Popen(
        [sys.executable, "s2s_pipeline.py", "--mode", "file", "--input_file", str(input_file),
         "--output_file", str(output), *FAST],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = {"out": [], "err": []}
    found = threading.Event()

    def read(stream, key):
        for line in stream:
            seen[key].append(line)
            if marker in line:
                found.set()

    readers = [threading.Thread(target=read, args=(process.stdout, "out"), daemon=True),
               threading.Thread(target=read, args=(process.stderr, "err"), daemon=True)]  # fmt: skip
    for reader in readers:
        reader.start()
    try:
        assert found.wait(timeout), "".join(seen["err"])[-3000:]
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    for reader in readers:
        reader.join(5)
    return code, "".join(seen["out"]), "".join(seen["err"])


def test_ctrl_c_after_the_first_answer_keeps_it_and_exits_non_zero(tmp_path):
    output = tmp_path / "answer.wav"
    code, _, err = interrupt_after("[turn 1] assistant:", QUESTIONS / "conversation_3turns.wav", output)
    assert code == 130, err[-2000:]
    assert "s2s: interrupted: 1 turn(s) answered; audio written to" in err
    assert "Traceback" not in err
    assert load_audio(output).size > 16000  # the first answer is there


def test_ctrl_c_before_any_answer_leaves_the_old_output_alone(tmp_path):
    output = tmp_path / "answer.wav"
    output.write_bytes(b"an earlier answer")
    code, _, err = interrupt_after("models loaded", QUESTIONS / "conversation_3turns.wav", output)
    assert code == 130, err[-2000:]
    # Interrupted while the pipeline starts or once it runs: either way, said so.
    assert "s2s: interrupted" in err and "turn(s) answered; audio written" not in err
    assert "Traceback" not in err
    assert output.read_bytes() == b"an earlier answer"
