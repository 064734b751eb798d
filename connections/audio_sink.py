"""The end of the pipeline, whatever the output: play the audio, then close the turn.

Every mode's sink does the same bookkeeping around its own way of putting
audio out: stamp when the first reply audio left, end each turn exactly once
(a failed stage can send a second `EndOfResponse` for a turn already ended),
log its metrics, and give the floor back to the user (`should_listen`).
A speculative turn's audio is held here until the VAD confirms the turn.
Subclasses only say how audio goes out and what "finished" means for them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from baseHandler import BaseHandler
from utils.messages import EndOfResponse, TTSAudio, Turn
from utils.turn_log import report_turn


class AudioSink(BaseHandler):
    accepts = (TTSAudio, EndOfResponse)

    def setup_sink(
        self, should_listen: threading.Event, metrics_file: str | Path | None = None, echo: bool = False
    ) -> None:
        self.should_listen = should_listen
        self.metrics_file = Path(metrics_file) if metrics_file else None
        self.echo = echo
        self.turns: list[Turn] = []

    def output(self, audio: TTSAudio) -> None:
        """Send, play or store one chunk of reply audio."""
        raise NotImplementedError

    def finish_turn(self, turn: Turn) -> None:
        """Hook before a turn is closed (e.g. wait until the speaker is done)."""

    def process(self, message: TTSAudio | EndOfResponse) -> Iterator[None]:
        turn = message.turn
        if not turn.wait_until_decided(self.stop_event):
            return  # a speculative reply to a pause that did not end the turn
        if isinstance(message, TTSAudio):
            turn.mark("first_audio_out")
            self.output(message)
            return
        if turn in self.turns:
            return  # a second end for a turn that already failed and ended
        self.finish_turn(turn)
        turn.mark("last_audio_out")
        self.turns.append(turn)
        del self.turns[:-100]
        report_turn(turn, self.metrics_file, self.echo)
        self.should_listen.set()
        yield from ()
