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
from typing import ClassVar

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
