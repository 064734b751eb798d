"""The server's own tools (`--tools`, the built-ins), run for the calls a reply makes.

A call to one of them reaches the sink like a sentence (`ToolCall`, after
the words said before it); the sink hands it here, the tool worker runs it
(in its own process, with a timeout), and its output goes back into the
pipeline's input as a `ToolResult` of the same turn, which the LLM answers.
The sink never waits for a tool: other turns and conversations go on.
A turn interrupted or abandoned meanwhile drops the output.
"""

from __future__ import annotations

import json
import logging
import queue
from dataclasses import dataclass

from tools.worker import ToolWorker, error_output
from utils.messages import ToolCall, ToolResult

logger = logging.getLogger(__name__)


@dataclass
class ServerTools:
    worker: ToolWorker
    pipeline_in: queue.Queue

    @property
    def declarations(self) -> list[dict]:
        return self.worker.declarations

    def run(self, call: ToolCall) -> None:
        """Start the call; its output comes back as a ToolResult."""
        turn = call.turn

        def done(output: str) -> None:
            if turn.stale:
                logger.debug("turn %d: output of %s dropped (the turn is over)", turn.turn_id, call.name)
                return
            logger.info("turn %d: %s -> %s", turn.number or turn.turn_id, call.name, output[:200])
            self.pipeline_in.put(ToolResult(call.call_id, output, turn))

        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as error:
            done(error_output(f"the arguments are not JSON: {error}"))
            return
        self.worker.submit(call.name, arguments, done)
