"""Named settings a user picks with `--preset`, chosen by measured figures.

Each preset lists, per backend name (or `module` for the global flags), the
arguments it sets; `config.parse.apply_preset` fills them in for the chosen
backends only, and never over a flag the user gave.  A stage whose backend the
preset does not mention keeps that backend's own defaults.  The figures behind
every choice are in benchmarks/RESULTS_answers.md (`python benchmarks/answers.py`).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Today's latency: the 0.5B model (about 60% of the spoken questions right).
    "fast": {
        "llama_cpp": {"lm_model_name": "qwen2.5-0.5b"},
    },
    # The best answers that still come in about a second on 2 cores: the
    # largest packaged LLM, and every sentence spoken whole (no first clause
    # or phrase sent ahead, Piper's first sentence not cut in two), for a
    # sentence's own intonation.  Whisper's beam search is
    # not here: beam 5 gave the same 7.6% WER as greedy on the 164 English
    # human clips, for more time.
    "quality": {
        "llama_cpp": {"lm_model_name": "qwen2.5-1.5b"},
        "module": {"first_clause_words": 0, "first_phrase_words": 0},
        "piper": {"tts_split_first_sentence": False},
    },
}

# Arguments whose value names a packaged model: checked at start-up, so a
# preset that needs a model package the user has not installed says so at once.
MODEL_ARGUMENTS = ("stt_model_name", "lm_model_name")
