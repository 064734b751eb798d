"""What every LLM stage shares: per-session chat, warm-up, and the answer loop.

A backend only says how a list of chat messages becomes a stream of text
pieces (`generate`).  The conversation itself is not the handler's: each
session carries its own chat (`Session.chat`), so one loaded model answers
every conversation on the server, each with its own history and system
prompt (a realtime client's `instructions` replace `--lm_init_chat_prompt`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from baseHandler import BaseHandler
from utils.chat import Chat, language_instruction
from utils.llm_stream import answer_chat
from utils.messages import CreateResponse, EndOfResponse, LLMSentence, Transcript, UserText
from utils.session import Session


class LanguageModelHandler(BaseHandler):
    accepts = (Transcript, UserText, CreateResponse)

    def setup_chat(
        self,
        user_role: str = "user",
        init_chat_role: str = "system",
        init_chat_prompt: str | None = None,
        chat_size: int = 2,
        first_clause_words: int = 0,
    ) -> None:
        """Chat options every backend takes (called from each `setup`)."""
        self.user_role = user_role
        self.init_chat_role = init_chat_role
        self.init_chat_prompt = init_chat_prompt
        self.chat_size = chat_size
        self.first_clause_words = first_clause_words
        # Turns that name no session (a bare handler in tests, benchmarks)
        # share this one conversation.
        self.default_session = Session()
        self.serving: Session = self.default_session  # the conversation being answered now

    def generate(self, messages: list[dict[str, str]]) -> Iterable[str]:
        raise NotImplementedError

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

    def on_reset(self) -> None:
        self.chat.reset()

    def process(self, message: Transcript | UserText | CreateResponse) -> Iterator[LLMSentence | EndOfResponse]:
        turn = message.turn
        self.serving = turn.session or self.default_session
        chat = self.chat_for(turn.session)
        language = getattr(message, "language", None)
        if isinstance(message, Transcript):
            chat.add_user(language_instruction(language) + message.text, role=self.user_role, turn_id=turn.turn_id)
        elif isinstance(message, UserText):
            chat.add_user(message.text, role=self.user_role, turn_id=turn.turn_id)
        if not turn.respond:
            return  # the words join the conversation; a later response.create answers
        yield from answer_chat(turn, chat, self.generate, self.stop_event, language, self.first_clause_words)
