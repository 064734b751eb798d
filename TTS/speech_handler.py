"""What every TTS stage shares: sentences in, audio out, one failed sentence not ending the turn.

A backend writes how it synthesises (`synthesize`: text in, int16 audio at
`output_sample_rate` out, in one array or in arrays as they are made) and,
where it cuts a sentence into pieces spoken one after the other, how
(`pieces`).  The rest is here, once: the turn's `tts_start` and
`tts_first_audio` marks, each piece's audio wrapped as `TTSAudio` with the
text it speaks, empty audio dropped, and a default warm-up.

A session that asked for text replies only (the realtime API's
`output_modalities: ["text"]`) gets its sentences passed through untouched:
the sink sends them as text, and no voice is synthesised for nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np

from baseHandler import BaseHandler
from utils.cpu_baton import TTS_AHEAD_S
from utils.messages import LLMSentence, TTSAudio

Audio = np.ndarray | Iterable[np.ndarray]


class SpeechHandler(BaseHandler):
    accepts = (LLMSentence,)
    # A TTS stage that fails on one sentence keeps speaking the rest.
    end_turn_on_error = False
    # True: the backend has a voice per language, and `synthesize(text,
    # language)` is given the sentence's language; else `synthesize(text)`.
    voice_per_language: ClassVar[bool] = False
    output_sample_rate: int = 16000  # set by each backend's setup

    def work_priority(self, message: LLMSentence) -> float:
        """Each piece is synthesised holding the CPU baton a little before the
        turn's audio is due (utils/cpu_baton.py): before the same reply's next
        LLM token, after another turn's whose audio is due sooner."""
        return message.turn.audio_due() - TTS_AHEAD_S

    def next_message(self) -> Any:
        """The queued message whose listener needs audio first: of each
        conversation's first queued message (a conversation's own stay in
        order), the one whose turn's audio is due soonest (`Turn.audio_due`:
        a reply with no audio yet at once).  With several conversations, a
        first sentence is spoken before another reply's next one, which its
        listener needs only once what they have has played."""
        with self.queue_in.mutex:
            index = most_urgent_head(self.queue_in.queue)
            if index:
                message = self.queue_in.queue[index]
                del self.queue_in.queue[index]
                self.queue_in.not_full.notify()
                return message
        return super().next_message()

    def handles(self, message: LLMSentence) -> bool:
        session = message.turn.session
        return session is None or session.settings.audio_output

    # --- what a backend writes ---------------------------------------------------------
    def synthesize(self, text: str, language: str | None = None) -> Audio:
        """`text` as int16 mono at `output_sample_rate`: one array, or
        arrays as they are made (the first is played while the rest is made)."""
        raise NotImplementedError

    def pieces(self, message: LLMSentence) -> list[str]:
        """The texts a sentence is spoken in, each synthesised whole, in
        order; by default the sentence itself."""
        return [message.text]

    def voice_name(self, language: str | None) -> str | None:
        """What speaks a sentence in `language` (for the turn's metrics); None: not said."""
        return None

    def warmup(self) -> None:
        """One short synthesis, so the first sentence does not pay for the model's first run."""
        for _ in self.audio("Hello.", None):
            pass

    # --- shared -----------------------------------------------------------------------------
    def audio(self, text: str, language: str | None) -> Iterator[np.ndarray]:
        """`synthesize`'s audio for one piece, as arrays."""
        made = self.synthesize(text, language) if self.voice_per_language else self.synthesize(text)
        yield from (made,) if isinstance(made, np.ndarray) else made

    def process(self, message: LLMSentence) -> Iterator[TTSAudio]:
        turn = message.turn
        turn.mark("tts_start")
        if turn.voice is None:
            turn.voice = self.voice_name(message.language)
        for piece in self.pieces(message):
            if turn.stale:
                return  # interrupted or withdrawn: the rest would never be heard
            for samples in self.audio(piece, message.language):
                if samples.size == 0:
                    continue
                turn.mark("tts_first_audio")
                yield TTSAudio(samples=samples, sample_rate=self.output_sample_rate, text=piece, turn=turn)


def most_urgent_head(messages: Iterable[Any]) -> int | None:
    """Index of the message to take next: among each conversation's first
    message (before any message that names no turn, which keeps its place),
    the one whose turn's audio is due soonest; None when the queue is empty."""
    heads: dict[int, tuple[float, int]] = {}
    for index, message in enumerate(messages):
        turn = getattr(message, "turn", None)
        if turn is None:
            break
        heads.setdefault(id(turn.session), (turn.audio_due(), index))
    return min(heads.values())[1] if heads else None
