from dataclasses import dataclass, field

from arguments_classes.chat_arguments import ChatArguments


@dataclass
class LlamaCppLanguageModelHandlerArguments(ChatArguments):
    """llama.cpp on a GGUF. Packaged aliases: smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b."""

    lm_model_name: str = field(
        default="qwen2.5-1.5b",
        metadata={
            "help": "A packaged alias (qwen2.5-1.5b: the default, 29 of 30 spoken test questions answered "
            "right; qwen2.5-0.5b: faster, 19 of 30; smollm2-135m) or a .gguf path."
        },
    )
    lm_n_ctx: int = field(default=2048, metadata={"help": "Context window in tokens."})
    lm_n_threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for generation. 0: one per physical core for a prompt, and token by token while "
            "the LLM has the cores to itself, fewer while other work (this process's STT and TTS, other "
            "processes) keeps some busy: llama.cpp's "
            "threads spin waiting for each other, and beside one busy process two threads wrote 7.7 tokens/s "
            "against 18.0 following the load (benchmarks/RESULTS_llm_threads.md). A number: that many, always."
        },
    )
    lm_n_gpu_layers: int = field(
        default=0, metadata={"help": "Layers offloaded to the GPU (-1: all; needs a CUDA build)."}
    )
    lm_device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda' (cuda offloads all layers)."})
    lm_prefill: bool = field(
        default=True,
        metadata={
            "help": "Evaluate the prompt with the user's words while they still speak (from the STT's stable "
            "transcript, --incremental_stt_ms), so at the end of the turn only the last words are evaluated."
        },
    )
    lm_tool_call_bias: float | None = field(
        default=None,
        metadata={
            "help": "With tools offered, a reply calls a function when the best logit of a call's first tokens "
            "plus this beats every other first token. Default: measured per packaged model (qwen2.5-1.5b: 3.8, "
            "see README, Tools), 0 for other models."
        },
    )
    lm_tool_calls_after_output: bool | None = field(
        default=None,
        metadata={
            "help": "Whether the reply to a function's output may call another function (a next step) or only "
            "answers in words. Default: measured per packaged model (qwen2.5-0.5b: words only; its calls there "
            "were noise), allowed for other models."
        },
    )
    lm_gen_max_tokens: int = field(default=128, metadata={"help": "Most tokens in one reply."})
    lm_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0: greedy)."})
    lm_gen_top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    lm_gen_repeat_penalty: float = field(default=1.1, metadata={"help": "Penalty on repeated tokens."})
