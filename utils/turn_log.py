"""What every output stage does when a turn is over: log it, once, in one line.

Every sink of every mode ends its turns here, so this is also where the
process's metrics (`utils/metrics.py`, scraped at `GET /metrics`) count them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from conversation.turn import Turn
from utils.metrics import METRICS

logger = logging.getLogger("s2s.turns")


def report_turn(turn: Turn, metrics_file: Path | None = None, echo: bool = False) -> None:
    """Log the turn's latency record as one JSON line, append it to
    `metrics_file` if given, count it in the process's metrics, and with
    `echo` print the exchange for a person."""
    line = turn.metrics_json()
    METRICS.record_turn(turn.metrics())
    logger.info(line)
    if metrics_file is not None:
        metrics_file.parent.mkdir(parents=True, exist_ok=True)
        with open(metrics_file, "a") as out:
            out.write(line + "\n")
    if echo:
        number = turn.number or turn.turn_id  # the conversation's count, as the log and metrics say it
        print(f"[turn {number}] you: {turn.transcript}", file=sys.stdout)
        print(f"[turn {number}] assistant: {turn.reply}", file=sys.stdout)
        if turn.error:
            print(f"[turn {number}] error: {turn.error}", file=sys.stdout)
        sys.stdout.flush()
