"""The end of the pipeline, whatever the output: play the audio, then close the turn.

Every mode's sink does the same bookkeeping around its own way of putting
audio out: stamp when the first reply audio left, record what was played
(so an interruption can be mapped back onto the words heard), end each turn
exactly once (a failed stage can send a second `EndOfResponse` for a turn
already ended), log its metrics, tell the session's observer, and give the
floor back to the user (`should_listen`).  A speculative turn's audio is held
here until the VAD confirms the turn; a withdrawn one is dropped unheard.
Subclasses only say how audio goes out and what "finished" means for them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from baseHandler import BaseHandler
from utils.messages import EndOfResponse, LLMSentence, TTSAudio, Turn
from utils.turn_log import report_turn


class AudioSink(BaseHandler):
    # LLMSentence: the text replies of a session that wants no audio.
    accepts = (TTSAudio, LLMSentence, EndOfResponse)

    def setup_sink(
        self,
        should_listen: threading.Event,
        metrics_file: str | Path | None = None,
        echo: bool = False,
        yield_floor_while_speaking: bool = False,
    ) -> None:
        self.should_listen = should_listen
        self.metrics_file = Path(metrics_file) if metrics_file else None
        self.echo = echo
        # Half duplex on a live input: the user's audio is ignored from the
        # reply's first sound to its end (until then, resumed speech still
        # joins the turn), so the assistant does not answer its own voice.
        self.yield_floor_while_speaking = yield_floor_while_speaking
        self.turns: deque[Turn] = deque(maxlen=100)  # the last ones ended

    def output(self, audio: TTSAudio) -> None:
        """Send, play or store one chunk of reply audio."""
        raise NotImplementedError

    def finish_turn(self, turn: Turn) -> None:
        """Hook before a turn is closed (e.g. wait until the speaker is done)."""

    def process(self, message: TTSAudio | LLMSentence | EndOfResponse) -> Iterator[None]:
        turn = message.turn
        if not turn.wait_until_decided(self.stop_event) and not turn.interrupted:
            return  # a speculative reply to a pause that did not end the turn
        if isinstance(message, TTSAudio):
            self._play(message)
            return
        if isinstance(message, LLMSentence):
            if not turn.stale:
                turn.mark("first_audio_out")
                if turn.session is not None:
                    turn.session.observer.response_text(turn, message.text)
            return
        if any(ended is turn for ended in self.turns) or turn.withdrawn:
            return  # ended already (a failed stage sends a second end), or withdrawn unheard
        if turn.interrupted:
            silent_at = turn.playback.silent_at()
            turn.mark("audio_stopped", max(silent_at, turn.marks.get("interrupt", silent_at)))
        else:
            self.finish_turn(turn)
        turn.mark("last_audio_out")
        self.turns.append(turn)
        report_turn(turn, self.metrics_file, self.echo)
        if turn.session is not None:
            turn.session.observer.response_done(turn)
        self.should_listen.set()
        yield from ()

    def _play(self, audio: TTSAudio) -> None:
        turn = audio.turn
        if not turn.begin_playback():
            return  # withdrawn before a sound of it was played
        if self.yield_floor_while_speaking:
            self.should_listen.clear()
        turn.playback.add(audio.text, len(audio.samples), audio.sample_rate, time.perf_counter())
        self.output(audio)
        if turn.session is not None:
            turn.session.observer.response_audio(audio)
