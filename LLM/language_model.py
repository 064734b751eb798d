"""What every LLM stage shares: the chat options, per-session chat, warm-up, and the answer loop.

A backend only says how it loads its model (`setup`, given its own options
alone) and how a list of chat messages becomes a stream of text pieces
(`generate`).  The chat options every backend takes (arguments_classes/
chat_arguments.py, plus the reply pacing) go to `setup_chat` here, before
`setup`; the warm-up runs after it.  The conversation itself is not the
handler's: each session carries its own chat (`Session.chat`), so one
loaded model answers every conversation on the server, each with its own
history and system prompt (a realtime client's `instructions` replace
`--lm_init_chat_prompt`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import queue
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from baseHandler import BaseHandler
from conversation.chat import Chat
from conversation.session import Session
from conversation.turn import Turn
from LLM.answer_loop import ReplyPacing, answer_chat, user_content
from LLM.output_answers import answer_outputs_in_words
from LLM.reply_interleave import PausedReply, most_urgent, should_pause, waits_for_paused
from LLM.tool_calls import FunctionCall, ToolChoice, ToolOffer
from utils.messages import (
    CreateResponse,
    EndOfResponse,
    LLMSentence,
    PartialTranscript,
    SessionUpdated,
    ToolCall,
    ToolResult,
    Transcript,
    UserText,
)

logger = logging.getLogger(__name__)

# Calls to the server's own tools one turn may make before it must answer in words
# (a model that calls again after each output would otherwise never answer).
MAX_SERVER_CALLS_PER_TURN = 3


class LanguageModelHandler(BaseHandler):
    # PartialTranscript: the user's stable words while they still speak; a
    # backend that can work ahead with them overrides `read_ahead`.
    accepts = (Transcript, UserText, CreateResponse, ToolResult, PartialTranscript, SessionUpdated)
    # Tokens the warm-up generates after setup (None: no warm-up, e.g. a remote server).
    warmup_tokens: ClassVar[int | None] = None
    # Whether replies of several conversations can take turns on this backend
    # (LLM/reply_interleave.py): it computes a reply only as it is pulled
    # (not in a thread of its own, which would go on generating while paused),
    # and `pause_state` / `resume_state` keep a paused reply's state.
    can_interleave: ClassVar[bool] = False

    def __init__(self, *args: Any, setup_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """The chat options go to `setup_chat`, the rest to the backend's `setup`."""
        backend_kwargs = dict(setup_kwargs or {})
        self.setup_chat(**{name: backend_kwargs.pop(name) for name in CHAT_OPTIONS if name in backend_kwargs})
        super().__init__(*args, setup_kwargs=backend_kwargs, **kwargs)

    def setup_chat(
        self,
        user_role: str = "user",
        init_chat_role: str = "system",
        init_chat_prompt: str | None = None,
        chat_size: int = 2,
        pacing: ReplyPacing | None = None,
        server_tools: list[dict[str, Any]] | None = None,
        interleave_replies: bool = True,
        interleave_cover_ms: int = 0,
    ) -> None:
        """The chat options every backend takes (ChatArguments), the reply
        pacing, the server's own tools (offered to sessions that declare
        none; the warm-up prepares the prompt with them), and whether
        conversations' replies are interleaved (LLM/reply_interleave.py)."""
        self.user_role = user_role
        self.init_chat_role = init_chat_role
        self.init_chat_prompt = init_chat_prompt
        self.chat_size = chat_size
        self.pacing = pacing or ReplyPacing()
        # Turns that name no session (a bare handler in tests, benchmarks)
        # share this one conversation.
        self.default_session = Session()
        self.default_session.settings.server_tools = list(server_tools or [])
        self.serving: Session = self.default_session  # the conversation being answered now
        self.answering: Turn | None = None  # the turn being answered now (None: the warm-up)
        self.interleave_replies = interleave_replies and self.can_interleave
        self.interleave_cover_s = interleave_cover_ms / 1000.0  # audio a reply has ahead before it yields
        self.paused: list[PausedReply] = []  # replies paused for another conversation's first sentence

    def generate(
        self, messages: list[dict[str, Any]], max_tokens: int | None = None, tools: ToolOffer | None = None
    ) -> Iterable[str | FunctionCall]:
        """The reply to `messages` as text pieces (at most `max_tokens` tokens
        when given: the warm-up's short run), and the functions it calls
        when `tools` offers some."""
        raise NotImplementedError

    def tool_offer(self, session: Session | None, turn: Turn | None = None) -> ToolOffer:
        """What a reply in this session may call: the response's own tools
        when it names some, else the tools the client declared, else the
        server's own (run by the server); and the tool_choice likewise."""
        settings = (session or self.default_session).settings
        if turn is not None and turn.tools is not None:
            declarations, by_server = turn.tools, False
        elif settings.tools:
            declarations, by_server = settings.tools, False
        else:
            declarations, by_server = settings.server_tools, True
        wanted = turn.tool_choice if turn is not None and turn.tool_choice is not None else settings.tool_choice
        try:
            choice = ToolChoice.parse(wanted)
        except ValueError:
            choice = ToolChoice()  # checked where it came in; never fail a reply over it
        if by_server and turn is not None and turn.calls_made >= MAX_SERVER_CALLS_PER_TURN:
            choice = ToolChoice("none")
        return ToolOffer(tuple(declarations), choice, by_server)

    def chat_for(self, session: Session | None) -> Chat:
        """The session's chat, with this model's history bound and the
        session's system prompt (its own instructions, else the default)."""
        session = session or self.default_session
        chat = session.chat
        chat.size = self.chat_size
        chat.system_role = self.init_chat_role
        instructions = session.settings.instructions
        chat.system_prompt = instructions if instructions is not None else self.init_chat_prompt
        return chat

    @property
    def chat(self) -> Chat:
        """The default session's chat."""
        return self.chat_for(None)

    def warmup_messages(self) -> list[dict[str, str]]:
        """The system prompt and a greeting: evaluating them once loads the
        model's kernels and (llama.cpp) caches the system prompt."""
        return [*self.chat.messages(), {"role": self.user_role, "content": "Hi"}]

    def warmup(self) -> None:
        """A reply of `warmup_tokens` tokens to the warm-up messages, so the
        first real turn does not pay for the model's first run."""
        if self.warmup_tokens is None:
            return
        for _ in self.generate(self.warmup_messages(), self.warmup_tokens):
            pass

    def on_reset(self) -> None:
        self.chat.reset()

    def read_ahead(self, partial: PartialTranscript) -> int:
        """Work ahead on the answer to the words heard so far (llama.cpp:
        evaluate the prompt); returns how many tokens were evaluated.  By
        default nothing: the partial transcript is dropped here."""
        return 0

    def prepare(self, session: Session) -> None:
        """Get ready for the session's new instructions or tools before its
        next turn (llama.cpp: their prompt prefix).  By default nothing."""

    def prompt_so_far(self, partial: PartialTranscript) -> list[dict[str, str]] | None:
        """The messages the coming answer will start from, with the user's
        words heard so far; None while one of the conversation's questions is
        still unanswered (its answer comes first)."""
        chat = self.chat_for(partial.session)
        messages = chat.messages()
        if messages and messages[-1]["role"] == self.user_role:
            return None
        content = user_content(partial.text, partial.language, own_instructions(partial.session))
        return [*messages, {"role": self.user_role, "content": content}]

    def process(
        self, message: Transcript | UserText | CreateResponse | ToolResult | PartialTranscript | SessionUpdated
    ) -> Iterator[LLMSentence | ToolCall | EndOfResponse]:
        if isinstance(message, SessionUpdated):
            if not message.session.closed and not self.answer_waiting():
                self.prepare(message.session)
            return
        if isinstance(message, PartialTranscript):
            closed = message.session is not None and message.session.closed
            if not closed and answers_by_itself(message.session) and not self.answer_waiting():
                evaluated = self.read_ahead(message)
                if evaluated:
                    logger.debug("read ahead %d prompt tokens: %r", evaluated, message.text[-60:])
            return
        turn = message.turn
        self.serving = turn.session or self.default_session
        self.answering = turn
        chat = self.chat_for(turn.session)
        language = getattr(message, "language", None)
        if isinstance(message, Transcript):
            content = user_content(message.text, language, own_instructions(turn.session))
            chat.add_user(content, role=self.user_role, turn_id=turn.turn_id)
        elif isinstance(message, UserText):
            chat.add_user(message.text, role=self.user_role, turn_id=turn.turn_id)
        elif isinstance(message, ToolResult) and not chat.add_tool_result(message.call_id, message.output):
            logger.warning("output for call %s, which the chat no longer holds: dropped", message.call_id)
            if turn.respond:
                yield EndOfResponse(turn=turn)
            return
        if not turn.respond:
            return  # the words join the conversation; a later response.create answers
        offer = self.tool_offer(turn.session, turn)
        with_tools = functools.partial(self.generate, tools=offer) if offer else self.generate
        generate = answer_outputs_in_words(with_tools, self.generate, self.init_chat_role)
        yield from answer_chat(
            turn, chat, generate, self.stop_event, language, self.pacing, calls_run_by_server=offer.by_server
        )

    def answer_waiting(self, besides: Turn | None = None) -> bool:
        """Whether a message that asks for an answer (any conversation's) is
        queued: it goes first, reading ahead would only delay it.  Only one
        that may be answered now counts: not one of a conversation whose
        reply is paused, nor of `besides`'s (the reply being written: its
        conversation's next turn comes after it)."""
        return self.queued(
            lambda queued: isinstance(queued, ANSWER_MESSAGES) and not waits_for_paused(queued, self.paused, besides)
        )

    # --- interleaving conversations' replies (LLM/reply_interleave.py) ---------------
    def pause_state(self) -> Any:
        """What the backend must save to go on with a reply after another
        one used the model (llama.cpp: the KV cache).  By default nothing:
        the backend keeps each generation's state apart."""
        return None

    def resume_state(self, state: Any, session: Session | None) -> None:
        """Put back what `pause_state` saved, to go on with `session`'s reply."""

    def _emit_all(self, outputs: Iterator[Any], turn: Turn | None = None, pause: Any = None) -> bool:
        """Hand on a reply's outputs; with interleaving on, it may pause at a
        sentence for another conversation (`should_pause`) and be resumed
        later from the paused list."""
        if not self.interleave_replies or turn is None:
            return super()._emit_all(outputs, turn, pause)

        def pause_here(output: Any) -> bool:
            return should_pause(
                output, turn, self.paused, self.answer_waiting(besides=turn), cover_s=self.interleave_cover_s
            )

        if not super()._emit_all(outputs, turn, pause_here):
            return False
        self.paused.append(PausedReply(turn, outputs, self.pause_state()))
        logger.debug("turn %s paused after a sentence: another conversation goes first", turn.turn_id)
        return True

    def resume_paused(self) -> bool:
        """Go on with the paused reply whose listener needs audio first,
        unless a question that may be answered now is waiting."""
        reply = most_urgent(self.paused)
        if reply is None or (self.answer_waiting() and not reply.turn.stale):
            return False  # a withdrawn or interrupted reply is ended at once: it only has to close
        self.paused.remove(reply)
        self.serving = reply.turn.session or self.default_session
        self.answering = reply.turn
        outputs = reply.outputs
        if not reply.turn.stale:  # a cut or withdrawn reply only closes: it stops before its next token
            try:
                self.resume_state(reply.state, reply.turn.session)
            except Exception as error:  # the turn ends with the error; nothing computed from another conversation
                outputs = failed_within(outputs, error)
        self._emit_all(outputs, reply.turn)
        return True

    def next_message(self) -> Any:
        """The queue's next message that need not wait for a paused reply
        (queue.Empty: none now; the paused replies go on meanwhile)."""
        if not self.paused:
            return super().next_message()
        with self.queue_in.mutex:
            for index, message in enumerate(self.queue_in.queue):
                if not waits_for_paused(message, self.paused):
                    del self.queue_in.queue[index]
                    self.queue_in.not_full.notify()
                    return message
        raise queue.Empty

    def cleanup(self) -> None:
        """Close the replies still paused when the stage stops."""
        while self.paused:
            close = getattr(self.paused.pop().outputs, "close", None)
            if close is not None:
                close()
        super().cleanup()


def answers_by_itself(session: Session | None) -> bool:
    """Whether the conversation's turns are answered as they end; not where
    the client asked for no answers (the realtime API's `create_response:
    false`): reading its prompt ahead would only push the conversation that
    does want an answer out of llama.cpp's cache (its next prompt then read
    again from the start: 3.3 s to the first token instead of 0.8 while
    another session spoke, benchmarks/RESULTS_contention.md)."""
    detection = session.settings.turn_detection if session is not None else None
    return detection is None or detection.create_response


def own_instructions(session: Session | None) -> bool:
    """Whether a conversation replaced the system prompt (a realtime client's
    `instructions`): then the reply language is asked for English too."""
    return session is not None and session.settings.instructions is not None


def failed_within(outputs: Iterator[Any], error: Exception) -> Iterator[Any]:
    """A paused reply that cannot go on: `error` raised inside it (the answer
    loop drops the unanswered question from the chat) and out of this
    generator, for the stage to end the turn with it."""
    try:
        yield outputs.throw(error)
    finally:
        close = getattr(outputs, "close", None)
        if close is not None:
            close()


# The messages that ask the model for an answer.
ANSWER_MESSAGES = (Transcript, UserText, CreateResponse, ToolResult)

# setup_kwargs that LanguageModelHandler hands to setup_chat, not to the backend's setup.
CHAT_OPTIONS = tuple(inspect.signature(LanguageModelHandler.setup_chat).parameters)[1:]
