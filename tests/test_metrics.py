"""What `/metrics` counts, without models: audio stalls, turns by outcome, the flags' checks.

The endpoints themselves are scraped over real HTTP from real servers in
tests/test_operations.py; here the counting rules are pinned down with
exact figures (a registry of its own per test, so nothing else moves them).
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from config.parse import ConfigError, parse_config
from connections.audio_sink import AudioSink
from conversation.playback import STALL_GAP_S, PlaybackLog
from conversation.turn import Turn
from utils.messages import EndOfResponse, TTSAudio
from utils.metrics import METRICS, PipelineMetrics, failed_stage

RATE = 16000


def test_a_reply_that_arrives_ahead_of_playback_never_stalls():
    log = PlaybackLog()
    log.add("One.", RATE, RATE, when=10.0)  # 1 s of audio, heard until 11.0
    log.add("Two.", RATE, RATE, when=10.9)  # arrives while "One." still plays
    log.add("Three.", RATE, RATE, when=12.0 + STALL_GAP_S - 0.01)  # "Two." ends at 12.0: a gap under the limit
    assert log.stalls == []


def test_a_reply_that_runs_dry_counts_each_gap_with_its_length():
    log = PlaybackLog()
    log.add("One.", RATE // 2, RATE, when=10.0)  # heard until 10.5
    log.add("Two.", RATE // 2, RATE, when=11.0)  # 0.5 s of silence first
    log.add("Three.", RATE, RATE, when=11.5)  # "Two." ends exactly then
    log.add("Four.", RATE, RATE, when=13.0)  # 0.5 s after "Three." ended
    assert log.stalls == pytest.approx([0.5, 0.5])
    turn = Turn(playback=log)
    assert turn.metrics()["audio_stalls"] == 2 and turn.metrics()["audio_stalled_ms"] == pytest.approx(1000.0)


def test_pieces_at_another_rate_are_timed_at_the_first_rate():
    log = PlaybackLog()
    log.add("One.", 24000, 24000, when=0.0)  # 1 s at 24 kHz
    log.add("Two.", 16000, 16000, when=0.5)  # 1 s at 16 kHz, converted: plays 1.0 .. 2.0
    log.add("Three.", 100, 24000, when=2.1)
    assert log.stalls == []


class ListSink(AudioSink):
    """The shared sink bookkeeping with an in-memory output."""

    def setup(self, should_listen: threading.Event) -> None:
        self.setup_sink(should_listen)

    def output(self, audio: TTSAudio) -> None:
        pass


def test_a_sink_that_waits_on_the_next_sentence_reports_a_stall_in_the_turn_and_the_metrics():
    """The real sink path: 0.1 s of audio, then the next sentence 0.5 s
    later (as when the TTS waits behind the LLM); the turn's metrics and the
    process's counters both say so once the turn ends."""
    sink = ListSink(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={"should_listen": threading.Event()})
    stalls_before = METRICS.audio_stalls._value.get()
    answered_before = METRICS.turns.labels("answered")._value.get()
    turn = Turn()
    turn.number = 1
    list(sink.process(TTSAudio(np.zeros(RATE // 10, np.int16), RATE, "Certainly!", turn)))
    time.sleep(0.5)  # a slower machine only makes the gap longer
    list(sink.process(TTSAudio(np.zeros(RATE, np.int16), RATE, "Paris is the capital.", turn)))
    list(sink.process(EndOfResponse(turn)))
    record = turn.metrics()
    assert record["audio_stalls"] == 1 and record["audio_stalled_ms"] >= 400 - STALL_GAP_S
    assert METRICS.audio_stalls._value.get() == stalls_before + 1
    assert METRICS.turns.labels("answered")._value.get() == answered_before + 1


def sample(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_turns_are_counted_by_outcome_with_their_stage_latencies():
    metrics = PipelineMetrics(CollectorRegistry())
    answered = {"stt_ms": 120.0, "llm_first_sentence_ms": 400.0, "tts_first_audio_ms": 90.0,
                "speech_end_to_first_audio_ms": 950.0, "end_of_turn_to_first_audio_ms": 640.0,
                "audio_stalls": 2, "audio_stalled_ms": 700.0, "interrupted": False, "error": None}  # fmt: skip
    metrics.record_turn(answered)
    metrics.record_turn({**answered, "interrupted": True, "audio_stalls": 0})
    metrics.record_turn({"stt_ms": 100.0, "error": "OpenApiLanguageModelHandler: the LLM server is unreachable"})
    assert sample(metrics, "s2s_turns_total", outcome="answered") == 1
    assert sample(metrics, "s2s_turns_total", outcome="interrupted") == 1
    assert sample(metrics, "s2s_turns_total", outcome="failed") == 1
    assert sample(metrics, "s2s_interruptions_total") == 1
    assert sample(metrics, "s2s_turn_failures_total", stage="OpenApiLanguageModelHandler") == 1
    assert sample(metrics, "s2s_stage_latency_seconds_count", stage="stt") == 3
    assert sample(metrics, "s2s_stage_latency_seconds_sum", stage="stt") == pytest.approx(0.34)
    assert sample(metrics, "s2s_stage_latency_seconds_count", stage="llm_first_sentence") == 2
    assert sample(metrics, "s2s_stage_latency_seconds_bucket", stage="llm_first_sentence", le="0.5") == 2
    assert sample(metrics, "s2s_stage_latency_seconds_bucket", stage="llm_first_sentence", le="0.3") == 0
    assert sample(metrics, "s2s_first_audio_latency_seconds_count", since="speech_end") == 2
    assert sample(metrics, "s2s_first_audio_latency_seconds_sum", since="end_of_turn") == pytest.approx(1.28)
    assert sample(metrics, "s2s_audio_stalls_total") == 2
    assert sample(metrics, "s2s_audio_stalled_seconds_total") == pytest.approx(0.7)


def test_every_series_is_there_from_the_first_scrape():
    body, content_type = PipelineMetrics(CollectorRegistry()).exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for line in ('s2s_turns_total{outcome="failed"} 0.0', 's2s_stage_latency_seconds_count{stage="stt"} 0.0',
                 's2s_first_audio_latency_seconds_count{since="speech_end"} 0.0', "s2s_audio_stalls_total 0.0",
                 "s2s_sessions_open 0.0", "s2s_draining 0.0"):  # fmt: skip
        assert line in text, line
    assert "process_resident_memory_bytes" in text


def test_the_failed_stage_is_read_from_the_turns_error():
    assert failed_stage("LlamaCppLanguageModelHandler: out of memory") == "LlamaCppLanguageModelHandler"
    assert failed_stage("something odd happened") == "unknown"
    assert failed_stage("a b: c") == "unknown"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mode", "realtime", "--metrics_port", "-1"], "0-65535"),
        (["--input_file", "a.wav", "--output_file", "b.wav", "--metrics_port", "9100"], "not --mode file"),
        (["--metrics_port", "70000"], "0-65535"),
        (["--mode", "realtime", "--drain_timeout_s", "-1"], "--drain_timeout_s"),
    ],
)
def test_operations_flags_are_checked(flags, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(flags)


def test_operations_flags_parse():
    config = parse_config(["--metrics_port", "0", "--metrics_host", "0.0.0.0"])
    assert config.module.metrics_port == 0 and config.module.metrics_host == "0.0.0.0"
    assert parse_config(["--mode", "realtime"]).realtime.drain_timeout_s == 10.0


def test_the_printed_exchange_numbers_the_conversations_turns_not_the_process_ids(capsys):
    """A speculative turn cancelled in between takes an id but no number:
    stdout said "[turn 3]" for the second answer while the log and the
    metrics said turn 2."""
    from conversation.session import Session
    from conversation.turn import Turn
    from utils.turn_log import report_turn

    session = Session()
    Turn(session=session).cancel()  # a speculation dropped: an id, no number
    turn = Turn(session=session, transcript="Hi.")
    turn.reply_sentences.append("Hello!")
    turn.confirm()
    assert turn.turn_id != turn.number == 1
    report_turn(turn, echo=True)
    assert capsys.readouterr().out.splitlines() == ["[turn 1] you: Hi.", "[turn 1] assistant: Hello!"]
