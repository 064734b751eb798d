"""The realtime mode's sink: each turn's reply goes to its own connection.

The reply audio goes out here (`output`), through the `RealtimeConnection`
of the turn's session (the server's map of open connections), which encodes
it and emits the API's deltas; the text and the end of each reply reach the
client through the session's observer (that same connection), which the
shared `AudioSink` bookkeeping calls.  The connection paces the audio a
little ahead of the client's playback (`--realtime_playback_lead_ms`; 0: as
fast as it is made, the client buffering it as with the real API); the
client reports what it played with `conversation.item.truncate` when the
user interrupts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from connections.audio_sink import AudioSink
from connections.realtime.connection import RealtimeConnection
from connections.server_tools import ServerTools
from conversation.session import Session
from utils.messages import TTSAudio


class RealtimeSink(AudioSink):
    listener_buffers = True

    def setup(
        self,
        should_listen: threading.Event,
        connections: Mapping[Session, RealtimeConnection],
        metrics_file: str | Path | None = None,
        tools: ServerTools | None = None,
    ) -> None:
        self.setup_sink(should_listen, metrics_file, tools=tools)
        self.connections = connections

    def output(self, audio: TTSAudio) -> None:
        """Send it to the client whose conversation it answers (nobody's, once
        that client has left)."""
        connection = self.connections.get(audio.turn.session)
        if connection is not None:
            connection.response_audio(audio)

    def cleanup(self) -> None:
        self.report_heard_turns(everything=True)
