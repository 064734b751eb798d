"""Which spoken questions a model served by `llama_cpp.server` answers right, whatever the server computed before.

    python benchmarks/scale_out_answers.py                       # qwen2.5-0.5b, print only
    python benchmarks/scale_out_answers.py --write benchmarks/RESULTS_scale_out_answers.md

The scale-out test asks two questions at once through two s2s servers that
share one `llama_cpp.server`, so one question is the server's first request
(nothing cached) and the other follows a request with the same system prompt
(its KV cache reused).  Greedy decoding is not the same in both: the prompt is
evaluated in other batches, the logits differ in their last bits, and where
the model hesitates between two words the reply changes (the 0.5B answered
"What planet is known as the red planet?" with "Mars" after another question
and with "The red planet is called the Red Planet." as a fresh server's first
request).  Here each question of `../shared/audio/qa/`, as Whisper base hears
it, goes to a fresh server first ("cold"), and to the server again after the
previous question ("after another"): a question fit for the test is right in both.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from audio.pcm import int16_to_float, load_audio  # noqa: E402
from benchmarks.answers import QA, is_right, load_questions  # noqa: E402
from benchmarks.server_process import LlamaServerProcess  # noqa: E402


def heard_questions() -> list[tuple[str, str, list[str]]]:
    """(file, the question as Whisper base hears it, accepted answers) for each spoken question."""
    import queue
    import threading

    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    stt = FasterWhisperSTTHandler(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={"language": "en"})
    questions = load_questions()
    return [(q.file, stt.transcribe(int16_to_float(load_audio(QA / q.file)))[0], q.accepted) for q in questions]


def ask(url: str, model: str, question: str) -> str:
    """One chat completion as `--llm open_api` sends it (the default system prompt, greedy, 128 tokens)."""
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="none")
    messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": question}]
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=128, temperature=0.0)
    return reply.choices[0].message.content or ""


def measure(model: str) -> list[dict]:
    heard = heard_questions()
    rows = []
    for index, (file, text, accepted) in enumerate(heard):
        previous = heard[index - 1][1]
        with tempfile.TemporaryDirectory() as workdir:
            server = LlamaServerProcess(model, Path(workdir))
            try:
                cold = ask(server.url, model, text)
                ask(server.url, model, previous)
                warm = ask(server.url, model, text)
            finally:
                server.stop()
        rows.append({"file": file, "heard": text, "cold": cold, "warm": warm,
                     "cold_right": is_right(cold, accepted), "warm_right": is_right(warm, accepted)})  # fmt: skip
        print(f"{file} cold={rows[-1]['cold_right']} after={rows[-1]['warm_right']} | {text} | {cold!r} | {warm!r}")
    return rows


def report(model: str, rows: list[dict]) -> str:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    both = [row["file"] for row in rows if row["cold_right"] and row["warm_right"]]
    lines = [
        f"# Answers of `{model}` served by llama_cpp.server, cold and after another request",
        "",
        f"Machine: {name} ({os.cpu_count()} cores), Python {platform.python_version()}; quiet (under the shared lock).",
        f"Command: `python benchmarks/scale_out_answers.py --model {model}`.",
        "Each question as Whisper base (`--language en`) hears it, sent as `--llm open_api` sends it; greedy.",
        "",
        f"Right cold: {sum(row['cold_right'] for row in rows)}/{len(rows)}; "
        f"right after another: {sum(row['warm_right'] for row in rows)}/{len(rows)}; "
        f"right in both: {len(both)}/{len(rows)} ({', '.join(both)}).",
        "",
        "| file | heard | cold | after another |",
        "|---|---|---|---|",
    ]
    for row in rows:
        cold, warm = (row[key].replace("\n", " ").replace("|", "/")[:90] for key in ("cold", "warm"))
        cold_mark, warm_mark = ("right" if row[key] else "WRONG" for key in ("cold_right", "warm_right"))
        lines.append(f"| {row['file']} | {row['heard']} | {cold_mark}: {cold} | {warm_mark}: {warm} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--write", type=Path, help="write the results as markdown to this file")
    args = parser.parse_args()
    text = report(args.model, measure(args.model))
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
