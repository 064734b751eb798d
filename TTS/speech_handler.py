"""What every TTS stage shares: sentences in, audio out, one failed sentence not ending the turn.

A session that asked for text replies only (the realtime API's
`output_modalities: ["text"]`) gets its sentences passed through untouched:
the sink sends them as text, and no voice is synthesised for nobody.
"""

from __future__ import annotations

from baseHandler import BaseHandler
from utils.messages import LLMSentence


class SpeechHandler(BaseHandler):
    accepts = (LLMSentence,)
    # A TTS stage that fails on one sentence keeps speaking the rest.
    end_turn_on_error = False

    def handles(self, message: LLMSentence) -> bool:
        session = message.turn.session
        return session is None or session.settings.audio_output
