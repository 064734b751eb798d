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

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from baseHandler import BaseHandler
from connections.server_tools import ServerTools
from conversation.turn import Turn
from utils.messages import EndOfResponse, LLMSentence, ToolCall, TTSAudio
from utils.turn_log import report_turn

logger = logging.getLogger(__name__)


class AudioSink(BaseHandler):
    # LLMSentence: the text replies of a session that wants no audio.
    # ToolCall: a function the reply calls, after the words said before it.
    accepts = (TTSAudio, LLMSentence, ToolCall, EndOfResponse)
    # True where the listener buffers the reply and plays it after it was all
    # sent (realtime clients): a turn's metrics then wait until it was heard.
    listener_buffers = False

    def setup_sink(
        self,
        should_listen: threading.Event,
        metrics_file: str | Path | None = None,
        echo: bool = False,
        yield_floor_while_speaking: bool = False,
        tools: ServerTools | None = None,
    ) -> None:
        self.should_listen = should_listen
        self.tools = tools  # runs the calls to the server's own tools
        self.metrics_file = Path(metrics_file) if metrics_file else None
        self.echo = echo
        # Half duplex on a live input: the user's audio is ignored from the
        # reply's first sound to its end (until then, resumed speech still
        # joins the turn), so the assistant does not answer its own voice.
        self.yield_floor_while_speaking = yield_floor_while_speaking
        self.turns: deque[Turn] = deque(maxlen=100)  # the last ones ended
        # Ended (all sent) but still playing on the listener's side: their
        # metrics wait until the audio was heard out or interrupted, so a
        # user who talks over the end of a buffered reply is counted.
        self.being_heard: list[Turn] = []

    def output(self, audio: TTSAudio) -> None:
        """Send, play or store one chunk of reply audio."""
        raise NotImplementedError

    def finish_turn(self, turn: Turn) -> None:
        """Hook before a turn is closed (e.g. wait until the speaker is done)."""

    def process(self, message: TTSAudio | LLMSentence | ToolCall | EndOfResponse) -> Iterator[None]:
        if self.being_heard:
            self.report_heard_turns()
        turn = message.turn
        if not turn.wait_until_decided(self.stop_event) and not turn.interrupted:
            return  # a speculative reply to a pause that did not end the turn
        if isinstance(message, TTSAudio):
            self._play(message)
            return
        if isinstance(message, ToolCall):
            self._hand_on_call(message)
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
        if self.listener_buffers and not turn.interrupted and turn.playback.playing():
            self.being_heard.append(turn)
        else:
            report_turn(turn, self.metrics_file, self.echo)
        if turn.session is not None:
            turn.session.observer.response_done(turn)
        self.should_listen.set()
        yield from ()

    def idle(self) -> None:
        self.report_heard_turns()

    def _hand_on_call(self, call: ToolCall) -> None:
        """A call to the server's own tools runs here (its output comes back
        into the pipeline); one to the client's tools goes to the client."""
        turn = call.turn
        if turn.stale:
            return
        if not call.by_server:
            if turn.session is not None:
                turn.session.observer.function_call(turn, call.call_id, call.name, call.arguments)
            return
        if self.tools is None:
            raise RuntimeError(f"the reply called {call.name}, but this sink runs no tools")
        self.tools.run(call)

    def report_heard_turns(self, everything: bool = False) -> None:
        """Log the metrics of the ended turns the listener has now heard out
        (or interrupted); `everything` logs them all (the pipeline stops)."""
        now = time.perf_counter()
        for turn in list(self.being_heard):
            if everything or turn.interrupted or not turn.playback.playing(now):
                self.being_heard.remove(turn)
                report_turn(turn, self.metrics_file, self.echo)

    def _play(self, audio: TTSAudio) -> None:
        turn = audio.turn
        if not turn.begin_playback():
            return  # withdrawn before a sound of it was played
        if self.yield_floor_while_speaking:
            self.should_listen.clear()
        if not turn.playback.pieces or turn.playback.pieces[-1][0] != audio.text:
            # What the assistant says as it starts saying it: an operator (or a
            # test) can follow a reply in step with its audio.
            logger.info("turn %d says: %s", turn.number or turn.turn_id, audio.text)
        turn.playback.add(audio.text, len(audio.samples), audio.sample_rate, time.perf_counter())
        self.output(audio)
