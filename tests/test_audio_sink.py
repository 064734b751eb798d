"""The turn-closing logic every output mode shares, with an in-memory output."""

import queue
import threading

import numpy as np

from connections.audio_sink import AudioSink
from conversation.turn import Turn
from utils.messages import EndOfResponse, TTSAudio


class ListSink(AudioSink):
    def setup(self, should_listen: threading.Event) -> None:
        self.setup_sink(should_listen)
        self.played: list[np.ndarray] = []
        self.finished: list[int] = []

    def output(self, audio: TTSAudio) -> None:
        self.played.append(audio.samples)

    def finish_turn(self, turn: Turn) -> None:
        self.finished.append(turn.turn_id)


def test_a_turn_is_closed_once_and_gives_the_floor_back():
    should_listen = threading.Event()
    sink = ListSink(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={"should_listen": should_listen})
    turn = Turn()
    audio = TTSAudio(np.ones(160, np.int16), 16000, "Hi.", turn)
    for message in (audio, EndOfResponse(turn), EndOfResponse(turn)):
        list(sink.process(message))
    assert len(sink.played) == 1 and sink.finished == [turn.turn_id]
    assert should_listen.is_set()
    assert turn.marks["first_audio_out"] <= turn.marks["last_audio_out"]
