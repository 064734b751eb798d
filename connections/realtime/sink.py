"""The realtime mode's sink: each turn's reply goes to its own connection.

The audio, the text and the end of each reply reach the client through the
turn's session observer (its `RealtimeConnection`), which the shared
`AudioSink` bookkeeping already calls; nothing else goes out here.  Replies
are not paced: the client buffers them (as with the real API) and reports
what it played with `conversation.item.truncate` when the user interrupts.
"""

from __future__ import annotations

import threading
from pathlib import Path

from connections.audio_sink import AudioSink
from utils.messages import TTSAudio


class RealtimeSink(AudioSink):
    listener_buffers = True

    def setup(self, should_listen: threading.Event, metrics_file: str | Path | None = None) -> None:
        self.setup_sink(should_listen, metrics_file)

    def output(self, audio: TTSAudio) -> None:
        """The session's observer sends it (see `AudioSink._play`)."""

    def cleanup(self) -> None:
        self.report_heard_turns(everything=True)
