"""Function calls on llama.cpp: the decision to call, and the call's JSON under a grammar.

The prompt carries the tools in the model's own chat template (Qwen2.5:
a `# Tools` section in the system turn, calls written as
`<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`).  A reply then
goes one of two ways, decided at its first token:

- **a call**: the best logit of the tokens a call can start with (the
  `<tool_call>` token, "<" as in "<tool_call>" written out, '{"' as in a bare
  JSON call), plus `call_bias`, beats every other first token's.  The 1.5B
  default rarely *starts* a call by itself: it explains the function instead
  ("To set a timer, use the set_timer function..."), but it ranks the call's
  first tokens close behind when a tool fits, and far behind when none does
  (measured on the benchmark's 40 requests: 1 to 3 logits behind against 4
  to 8), so the decision is that comparison, with the bias measured on the
  spoken requests (benchmarks/tools.py).  The call is then written under
  llama.cpp's grammars: the text the format fixes (`{"name": "`, `", "arguments": `)
  is appended without sampling, the name is sampled among the callable
  names only (and completed as soon as one name is left), and the arguments
  are sampled under the grammar llama.cpp derives from the function's
  JSON schema, so they always parse and always match it.
- **words**: the reply is generated freely; a `<tool_call>` token later on
  (rare) still becomes a call when calls are allowed, and ends the reply
  when they are not (`tool_choice` "none").

`tool_choice` "required" or a named function skips the decision and writes
that call.  Everything here goes through the `Llama` object's own
`eval`/`generate` and llama.cpp's grammar sampler; the only internals read
are the last token's logits (`llama_get_logits_ith`) and the token
bookkeeping the KV-cache cut uses.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Iterator
from typing import Any

from LLM.prefix_cache import common_prefix, load_sequence, save_sequence
from LLM.tool_calls import CALL_OPEN, FunctionCall, ToolOffer, repeats

logger = logging.getLogger(__name__)

# What follows <tool_call> up to the name, and from the name to the arguments.
NAME_START = '\n{"name": "'
ARGUMENTS_START = '", "arguments": '
# Sampling options of create_chat_completion that Llama.generate takes (under its own names).
SAMPLING = {
    "temperature": "temp", "top_k": "top_k", "top_p": "top_p", "min_p": "min_p", "typical_p": "typical_p",
    "repeat_penalty": "repeat_penalty", "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}  # fmt: skip
MAX_ARGUMENT_TOKENS = 256
# The default `call_bias` of each packaged model, measured on the 40 spoken requests
# (benchmarks/RESULTS_tools.md): the middle of the gap between the call openers' margins of
# the requests that need a tool and of those that need none.  Other models: 0 (the model's own
# choice of its first token).
CALL_BIAS = {"qwen2.5-1.5b": 3.8}
# Packaged models whose calls right after a function's output were measured to be noise, not
# a next step: the 0.5B called set_timer for "Is my order shipped?" and set_timer again with a
# label it made up, after set_timer's own output.  They answer an output in words.
NO_CALLS_AFTER_OUTPUT = frozenset({"qwen2.5-0.5b"})


def json_end(text: str) -> int | None:
    """Where the JSON object that `text` starts with ends (None: not yet)."""
    try:
        _, end = json.JSONDecoder().raw_decode(text.lstrip())
    except json.JSONDecodeError:
        return None
    return end + len(text) - len(text.lstrip())


class LlamaToolCalls:
    """Replies with tools on one llama.cpp model (the handler's)."""

    def __init__(self, model: Any, call_bias: float = 0.0, calls_after_output: bool = True) -> None:
        self.model = model
        self.call_bias = call_bias
        self.calls_after_output = calls_after_output
        self.open_tokens = self._tokens(CALL_OPEN)  # one special token on Qwen2.5; text pieces elsewhere
        written_out = self.model.tokenize(CALL_OPEN.encode(), add_bos=False, special=False)
        bare_json = self.model.tokenize(b'{"name"', add_bos=False, special=False)
        # The tokens a call can start with: the tag, the tag written out, a bare JSON object.
        self.openers = sorted({self.open_tokens[0], written_out[0], bare_json[0]})
        names = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>")
        self.stop_tokens = {model.token_eos(), *(t[0] for t in map(self._tokens, names) if len(t) == 1)}
        self._grammars: dict[str, Any] = {}
        self.last_margin: float | None = None  # the last decision's logit margin, for the benchmark's log
        self._first_word: int | None = None  # the first token of a reply decided to be words

    def _tokens(self, text: str) -> list[int]:
        return self.model.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _text_of(self, tokens: list[int]) -> str:
        return self.model.detokenize(tokens, special=False).decode("utf-8", "ignore")

    # --- a reply -----------------------------------------------------------------------------
    def reply(
        self,
        prompt: list[int],
        offer: ToolOffer,
        gen_kwargs: dict[str, Any],
        answers_output: bool = False,
        request_alone: list[int] | None = None,
        answered: list[tuple[str, Any]] | None = None,
    ) -> Iterator[str | FunctionCall]:
        """The reply to `prompt` (whose template lists the offered tools): words, or a call.

        `answers_output`: the prompt ends with a function's output.  The bias
        that makes the model act is then left out: it answers from the output
        unless it wants another call itself (without this, a model that ranks a
        call close behind would call the same function again and again).

        `request_alone`: the prompt of the user's request without the earlier
        conversation (instructions, tools, the request); None when `prompt`
        is that already.  Whether to call is decided on it: a small model
        copies its earlier turns, so in context the openers' margin says more
        about the history than the request (measured: after an answer in
        words, the requests that need a tool fall 1 to 10 logits further
        behind; after a call, those that need none come 4 to 13 logits closer,
        and "What is the capital of France?" after a weather call was a
        weather call; RESULTS_tool_margins.md).  The bias is measured on
        requests alone, so it holds there.  The words or the call are then
        written in context.

        `answered`: the calls whose outputs end the prompt (name, arguments).  A
        reply to them that would make one of them again, same arguments, is
        words instead: the same call gets the same output, and a client would
        loop on it (measured: with the system prompt "You are a helpful
        assistant. Answer in one short sentence." and get_weather alone, the
        1.5B ranked the call 1.4 logits ahead after a forecast's output).
        Without `calls_after_output` a reply to an output is words only."""
        sampling = {SAMPLING[name]: value for name, value in gen_kwargs.items() if name in SAMPLING}
        sampling.setdefault("temp", 0.0)
        max_tokens = int(gen_kwargs.get("max_tokens") or 128)
        callable_tools = offer.callable
        if offer.must_call:
            yield self.call(prompt, callable_tools, sampling)
            return
        if answers_output and not self.calls_after_output:
            yield from self._words(prompt, [], sampling, max_tokens)
            return
        if answers_output:
            wanted = self._decides_to_call(prompt, 0.0)
        else:
            wanted = self._decides_to_call(prompt, self.call_bias, request_alone)
        if wanted and callable_tools:
            call = self.call(prompt, callable_tools, sampling)
            if not (answers_output and repeats(call, answered or [])):
                yield call
                return
            logger.info("the reply to %s's output would call it again with the same arguments: words", call.name)
        yield from self._words(prompt, callable_tools, sampling, max_tokens)

    def _decides_to_call(self, prompt: list[int], bias: float, request_alone: list[int] | None = None) -> bool:
        """The first token's choice: the best call opener (plus the bias)
        against the best other token, after `request_alone` when given (the
        KV cache is put back to `prompt` afterwards), else after `prompt`.
        When the answer is words, their first token is the best other one
        after `prompt` (never an opener), so the reply does not begin a call
        in plain text."""
        logits = self._logits_after(prompt)
        margin, self._first_word = self._opener_margin(logits)  # the first word, if words it is
        if request_alone is not None and request_alone != prompt:
            in_context = margin
            saved = save_sequence(self.model)
            margin, _ = self._opener_margin(self._logits_after(request_alone))
            if saved is not None:
                load_sequence(self.model, saved)  # else the next step evaluates the history again: slower, right
            logger.debug("call openers' margin in context %.2f, for the request alone %.2f", in_context, margin)
        self.last_margin = margin
        wanted = margin + bias >= 0.0
        logger.debug("call decision: opener margin %.2f + bias %.2f -> %s", margin, bias,
                     "call" if wanted else "words")  # fmt: skip
        return wanted

    def _opener_margin(self, logits: Any) -> tuple[float, int]:
        """(best call opener's logit minus the best other token's, that other token)."""
        import numpy as np

        others = logits.copy()
        others[self.openers] = -np.inf
        best_other = int(np.argmax(others))
        return float(np.max(logits[self.openers])) - float(others[best_other]), best_other

    def _logits_after(self, tokens: list[int]) -> Any:
        """Evaluate what of `tokens` the cache lacks (at least the last one,
        whose logits are read) and return the logits of the next token."""
        import llama_cpp
        import numpy as np

        model = self.model
        start = min(common_prefix(list(model._input_ids), tokens), len(tokens) - 1)
        model.n_tokens = start  # eval() drops the cache cells from here on
        model.eval(tokens[start:])
        pointer = llama_cpp.llama_get_logits_ith(model._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(model.n_vocab(),)).copy()

    def _words(
        self, prompt: list[int], callable_tools: list[dict[str, Any]], sampling: dict[str, Any], max_tokens: int
    ) -> Iterator[str | FunctionCall]:
        decoder = codecs.getincrementaldecoder("utf-8")("ignore")
        written: list[int] = []
        first, self._first_word = self._first_word, None
        if first is not None and first not in self.stop_tokens:  # chosen with the decision: no call opener
            written.append(first)
            text = decoder.decode(self.model.detokenize([first], special=False))
            if text:
                yield text
        elif first is not None:
            return
        for token in self.model.generate([*prompt, *written], **sampling):
            if token in self.stop_tokens or len(written) >= max_tokens:
                break
            if token == self.open_tokens[0] and len(self.open_tokens) == 1:
                if callable_tools:  # the model opened a call after all, after its words
                    yield self.call([*prompt, *written, token], callable_tools, sampling, opened=True)
                else:
                    logger.debug("<tool_call> with tool_choice 'none': the reply ends there")
                break
            written.append(token)
            text = decoder.decode(self.model.detokenize([token], special=False))
            if text:
                yield text
        rest = decoder.decode(b"", final=True)
        if rest:
            yield rest

    # --- a call ------------------------------------------------------------------------------
    def call(
        self,
        tokens: list[int],
        callable_tools: list[dict[str, Any]],
        sampling: dict[str, Any],
        opened: bool = False,
    ) -> FunctionCall:
        """Write a call after `tokens` (which end with <tool_call> when `opened`)."""
        writer = CallWriter(self, [*tokens, *([] if opened else self.open_tokens)], sampling)
        writer.force(NAME_START)
        names = [tool["name"] for tool in callable_tools]
        name = writer.choose({name + '"': name for name in names}) if len(names) > 1 else names[0]
        if len(names) == 1:
            writer.force(name + '"')
        writer.force(ARGUMENTS_START[1:])  # after the name's closing quote
        tool = next(tool for tool in callable_tools if tool["name"] == name)
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        plan = object_plan(parameters)
        if plan is None:
            return FunctionCall(name, self._arguments_by_schema(writer.flushed(), parameters, sampling))
        return FunctionCall(name, json.dumps(writer.arguments(*plan), ensure_ascii=False))

    def _arguments_by_schema(self, tokens: list[int], parameters: dict[str, Any], sampling: dict[str, Any]) -> str:
        """The arguments object, sampled whole under the grammar llama.cpp derives from its JSON schema."""
        key = "schema:" + json.dumps(parameters, sort_keys=True)
        grammar = self.grammar(key, lambda: _from_json_schema(parameters))
        text = ""
        for count, token in enumerate(self.model.generate(tokens, grammar=grammar, **sampling)):
            if token in self.stop_tokens or count >= MAX_ARGUMENT_TOKENS:
                break
            text += self._text_of([token])
            if "}" in text:
                end = json_end(text)
                if end is not None:
                    text = text[:end]
                    break
        try:
            return json.dumps(json.loads(text), ensure_ascii=False)
        except json.JSONDecodeError:  # cut by MAX_ARGUMENT_TOKENS: a call without arguments beats none
            logger.warning("call arguments did not end within %d tokens: %r", MAX_ARGUMENT_TOKENS, text[:200])
            return "{}"

    def grammar(self, key: str, build: Any) -> Any:
        if key not in self._grammars:
            self._grammars[key] = build()
        return self._grammars[key]


# --- writing a call's JSON ---------------------------------------------------------------------
_STRING_BODY = r"""root ::= char* "\"" tail
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])"""
_SIMPLE_TYPES = ("string", "number", "integer", "boolean")
# The arguments object's end: "}", or "}}" (it and the call's object, one token on Qwen2.5).
OBJECT_CLOSES = ("}", "}}")


def object_plan(parameters: dict[str, Any]) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]] | None:
    """(required, optional) properties, in the schema's order, of an object
    whose properties are all plain values (string, number, integer, boolean,
    an enum of strings); None for any other schema (it is sampled whole)."""
    if parameters.get("type", "object") != "object" or parameters.get("patternProperties"):
        return None
    properties = parameters.get("properties") or {}
    for schema in properties.values():
        if not isinstance(schema, dict):
            return None
        enum = schema.get("enum")
        if enum is not None:
            if not enum or not all(isinstance(value, str) for value in enum):
                return None
        elif schema.get("type") not in _SIMPLE_TYPES or set(schema) - {"type", "description", "title", "default"}:
            return None
    required = [key for key in parameters.get("required", []) if key in properties]
    return (
        [(key, properties[key]) for key in required],
        [(key, schema) for key, schema in properties.items() if key not in required],
    )


def _literal(text: str) -> str:
    """A GBNF string literal."""
    return json.dumps(text)


def _from_json_schema(schema: dict[str, Any]) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


def _from_gbnf(text: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


class CallWriter:
    """Writes one call's JSON after `tokens`: text the format fixes is
    appended without sampling (`force`, evaluated in one batch with the next
    sampled token's step), the rest is sampled under llama.cpp grammars."""

    def __init__(self, calls: LlamaToolCalls, tokens: list[int], sampling: dict[str, Any]) -> None:
        self.calls = calls
        self.model = calls.model
        self.tokens = list(tokens)
        self.pending = ""
        self.sampling = sampling

    def force(self, text: str) -> None:
        self.pending += text

    def flushed(self) -> list[int]:
        """The tokens so far, the forced text included."""
        if self.pending:
            self.tokens += self.model.tokenize(self.pending.encode("utf-8"), add_bos=False, special=False)
            self.pending = ""
        return self.tokens

    def sample(self, key: str, gbnf: str, done: Any) -> str:
        """Sample under a grammar until `done(text)`; the sampled tokens join the call."""
        grammar = self.calls.grammar(key, lambda: _from_gbnf(gbnf))
        text = ""
        for count, token in enumerate(self.model.generate(self.flushed(), grammar=grammar, **self.sampling)):
            if token in self.calls.stop_tokens or count >= MAX_ARGUMENT_TOKENS:
                break
            self.tokens.append(token)
            text += self.calls._text_of([token])
            if done(text):
                break
        return text

    def choose(self, options: dict[str, Any]) -> Any:
        """What one of `options` (text: its meaning) means, sampled until every
        option that can still follow means the same (the rest of it is forced).
        Several texts may mean one thing: the ways JSON may be written there,
        so the model writes it as it would (`{ "city"` as well as `{"city"`;
        `}}`, the arguments and the call closed in one token, as well as `}`)."""
        texts = list(options)
        gbnf = "root ::= " + " | ".join(_literal(text) for text in texts)

        def settled(text: str) -> bool:
            return len({repr(options[option]) for option in texts if option.startswith(text)}) <= 1

        text = self.sample("choice:" + gbnf, gbnf, settled)
        chosen = next((option for option in texts if option.startswith(text)), texts[0])
        self.force(chosen[len(text) :])
        return options[chosen]

    def space_before_value(self) -> str:
        """The space after a key's colon, taken off the forced text so the
        sampled value's first token carries it, as the model writes it
        (`": "todo"` is `":` then ` "`; forced alone, the space is a token the
        model never wrote there, and after it the 1.5B and the 0.5B chose
        "shopping" for "add it to my to do list" every time)."""
        if self.pending.endswith(" "):
            self.pending = self.pending[:-1]
            return " "
        return ""

    def value(self, schema: dict[str, Any], ends: list[str]) -> tuple[Any, str | None]:
        """One property's value, and the end sampled with it ("," or "}"): a
        number's (which has no end of its own), or what came in one token with
        a string's closing quote; None otherwise."""
        if schema.get("enum") is not None:
            lead = self.space_before_value()
            return self.choose({lead + json.dumps(value): value for value in schema["enum"]}), None
        kind = schema.get("type")
        if kind == "boolean":
            lead = self.space_before_value()
            return self.choose({lead + "true": True, lead + "false": False}), None
        if kind == "string":
            # The closing quote may come with what follows it in one token ('"}}', '",'): offered only
            # '"', the model wrote its '}}' into the string ("London}}") and closed it after.
            self.force('"')
            closes = [close for end in ends for close in ((end,) if end == "," else OBJECT_CLOSES)]
            gbnf = _STRING_BODY + "\ntail ::= (" + " | ".join(_literal(close) for close in closes) + ")?"
            text = self.sample("string:" + gbnf, gbnf, _closes_string)
            quote = _string_end(text)
            body, tail = (text, "") if quote < 0 else (text[:quote], text[quote + 1 :])
            end = "}" if tail.startswith("}") else "," if tail.startswith(",") else None
            try:
                return json.loads('"' + body + '"'), end
            except json.JSONDecodeError:  # cut by MAX_ARGUMENT_TOKENS
                return body.rstrip("\\"), end
        digits = '"-"? [0-9]{1,15}' + ("" if kind == "integer" else ' ("." [0-9]{1,10})?')
        gbnf = f"root ::= {digits} ({' | '.join(_literal(end) for end in ends)})"
        text = self.sample("number:" + gbnf, gbnf, lambda text: text.endswith(tuple(ends)))
        end = text[-1] if text.endswith(tuple(ends)) else None
        number = json.loads(text[:-1] if end else text or "0")
        return number, end

    def arguments(self, required: list[tuple[str, dict]], optional: list[tuple[str, dict]]) -> dict[str, Any]:
        """An object of plain properties, key by key: the required ones in
        the schema's order, then the optional ones the model chooses to give."""
        values: dict[str, Any] = {}
        remaining = dict(optional)
        end: str | None = "{"
        for index, (key, schema) in enumerate(required):
            self.force(("{" if index == 0 else " " if end == "," else ", ") + json.dumps(key) + ": ")
            last = index == len(required) - 1
            ends = [","] if not last else [",", "}"] if remaining else ["}"]
            values[key], end = self.value(schema, ends)
        if not required:
            self.force("{")
        while remaining and end != "}":
            if end == ",":  # a number ended with "," : one of the optional keys follows
                options = {" " + json.dumps(key): key for key in remaining}
            else:
                # After "{" the model writes '{ "city"' (its tokens: ' {', ' "'), rarely '{"city"'
                # (' {"' is one token, not there after the forced ' {'); offered only '"city"' and
                # '}', it closed arguments it meant to give ("What time is it in Tokyo?" → {}).
                leads = ("", " ") if end == "{" else (", ",)
                options = {lead + json.dumps(key): key for lead in leads for key in remaining}
                options |= {close: None for close in OBJECT_CLOSES}
            key = self.choose(options)
            if key is None:
                break
            self.force(": ")
            schema = remaining.pop(key)
            values[key], end = self.value(schema, [",", "}"] if remaining else ["}"])
        return values


def _closes_string(text: str) -> bool:
    """Whether a string body (after its opening quote) has reached its closing quote."""
    return _string_end(text) >= 0


def _string_end(text: str) -> int:
    """Where the closing quote of a string body is (the first quote not escaped); -1: not yet."""
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return index
    return -1
