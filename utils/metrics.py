"""What an operator scrapes: the server's work and health, in Prometheus's text format.

One set of metrics per process (a process runs one pipeline).  Every mode's
sink reports each ended turn through the turn log (`utils/turn_log.py`),
which records it here once: its outcome, its stage latencies (the marks of
`Turn.metrics()`), its interruption and the times its audio ran dry.  The
front doors add what only they know: sessions opened and closed, the `error`
events sent to clients, whether the server is draining.  `exposition()` is
the body of `GET /metrics`.

The process's own CPU, memory and open files come with it
(prometheus_client's process and platform collectors).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

# No `*_created` timestamp series beside every counter and histogram: Prometheus's
# text format does not need them, and they double what an operator reads.
disable_created_metrics()

# Seconds: from a fast GPU stage (50 ms) to four sessions waiting their turn on 2 cores.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# Histogram label -> the key of `Turn.metrics()` (milliseconds) it observes.
STAGE_LATENCY_KEYS = {
    "stt": "stt_ms",
    "llm_first_sentence": "llm_first_sentence_ms",
    "tts_first_audio": "tts_first_audio_ms",
}
FIRST_AUDIO_KEYS = {
    "speech_end": "speech_end_to_first_audio_ms",
    "end_of_turn": "end_of_turn_to_first_audio_ms",
}
OUTCOMES = ("answered", "interrupted", "failed")


class PipelineMetrics:
    """The metric families, registered in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.sessions_open = Gauge("s2s_sessions_open", "Conversations open now.", registry=r)
        self.sessions_max = Gauge("s2s_sessions_max", "Conversations this server holds at once.", registry=r)
        self.sessions = Counter("s2s_sessions", "Conversations opened.", registry=r)
        self.draining = Gauge(
            "s2s_draining", "1 while the server finishes the replies in flight before it stops.", registry=r
        )
        self.turns = Counter("s2s_turns", "Turns ended, by outcome.", ["outcome"], registry=r)
        self.stage_latency = Histogram(
            "s2s_stage_latency_seconds",
            "Each stage's own time per turn: stt (transcription), llm_first_sentence (prompt to first "
            "sentence), tts_first_audio (first sentence to its first audio).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_audio = Histogram(
            "s2s_first_audio_latency_seconds",
            "From the end of the user's speech (since=speech_end) or the end-of-turn decision "
            "(since=end_of_turn) to the reply's first audio out.",
            ["since"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.interruptions = Counter(
            "s2s_interruptions", "Replies the user spoke over (barge-in) or the client cut.", registry=r
        )
        self.errors = Counter("s2s_errors", "error events sent to clients, by their code.", ["kind"], registry=r)
        self.turn_failures = Counter("s2s_turn_failures", "Turns a stage failed, by stage.", ["stage"], registry=r)
        self.audio_stalls = Counter(
            "s2s_audio_stalls",
            "Times a reply ran dry once its audio had started: a listener playing it as it arrived "
            "waited over 150 ms for the next piece.",
            registry=r,
        )
        self.audio_stalled = Counter(
            "s2s_audio_stalled_seconds", "Seconds listeners waited in those stalls.", registry=r
        )
        for outcome in OUTCOMES:  # every series is there from the first scrape, at 0
            self.turns.labels(outcome)
        for stage in STAGE_LATENCY_KEYS:
            self.stage_latency.labels(stage)
        for since in FIRST_AUDIO_KEYS:
            self.first_audio.labels(since)

    def record_turn(self, record: Mapping[str, object]) -> None:
        """One ended turn, from its `Turn.metrics()` record."""
        if record.get("error"):
            outcome = "failed"
            self.turn_failures.labels(failed_stage(str(record["error"]))).inc()
        elif record.get("interrupted"):
            outcome = "interrupted"
        else:
            outcome = "answered"
        self.turns.labels(outcome).inc()
        if record.get("interrupted"):
            self.interruptions.inc()
        for stage, key in STAGE_LATENCY_KEYS.items():
            _observe_ms(self.stage_latency.labels(stage), record.get(key))
        for since, key in FIRST_AUDIO_KEYS.items():
            _observe_ms(self.first_audio.labels(since), record.get(key))
        stalls = record.get("audio_stalls") or 0
        if isinstance(stalls, int) and stalls > 0:
            self.audio_stalls.inc(stalls)
            self.audio_stalled.inc(float(record.get("audio_stalled_ms") or 0.0) / 1000.0)

    def session_opened(self) -> None:
        self.sessions.inc()
        self.sessions_open.inc()

    def session_closed(self) -> None:
        self.sessions_open.dec()

    def error_sent(self, code: str) -> None:
        self.errors.labels(code).inc()

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of a scrape."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def failed_stage(error: str) -> str:
    """The stage named by a turn's error ("LlamaCppLanguageModelHandler: ..."), or "unknown"."""
    name, separator, _ = error.partition(":")
    return name if separator and name.isidentifier() else "unknown"


def _observe_ms(histogram: Histogram, value: object) -> None:
    if isinstance(value, int | float) and value >= 0:
        histogram.observe(value / 1000.0)


# The process's metrics: every front door and sink of this pipeline records here.
METRICS = PipelineMetrics()
