"""s2s: a cascaded speech-to-speech voice assistant (VAD -> STT -> LLM -> TTS).

    python s2s_pipeline.py --mode file --input_file question.wav --output_file answer.wav
    python s2s_pipeline.py                      # socket server (listen_and_play.py is the client)
    python s2s_pipeline.py --mode local         # microphone and speakers of this machine
    python s2s_pipeline.py --mode realtime      # the OpenAI Realtime API on ws://127.0.0.1:8765/v1/realtime
    python s2s_pipeline.py config.json          # every flag from one JSON object

Exit status: 0 on success; 1 when the input, an output, a model or a stage
fails (file mode: also when no turn was answered, or one failed); 2 for a
malformed configuration; 130 when file mode is interrupted (what was answered
so far is written).  Errors are one line on stderr, not a traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from audio.pcm import AudioInputError, check_output_file, load_audio
from config.parse import ConfigError, PipelineConfig, parse_config
from connections.local_audio_streamer import AudioDeviceError
from conversation.session import Session, SessionSettings
from models.packaged import ModelNotInstalledError
from pipeline.builder import BackendUnavailableError, Channels, build_model_stages
from tools.worker import ToolWorker, ToolWorkerError
from utils.metrics import METRICS
from utils.net import address_to_open
from utils.signals import ctrl_c_requested, listen_for_ctrl_c
from utils.thread_manager import StageFailedError, ThreadManager

logger = logging.getLogger("s2s")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Quiet the chattiest libraries unless debugging.
    if level.lower() != "debug":
        for noisy in ("faster_whisper", "httpx", "urllib3", "numba"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def turn_taking_settings(
    config: PipelineConfig, barge_in: bool, server_tools: list[dict[str, Any]] | None = None
) -> SessionSettings:
    """A session's settings from the turn-taking flags (and the server's own tools)."""
    turn_taking = config.turn_taking
    return SessionSettings(
        server_tools=list(server_tools or []),
        barge_in=barge_in,
        interrupt_min_speech_ms=turn_taking.interrupt_min_speech_ms,
        resume_false_interruption=turn_taking.resume_false_interruption,
        false_interruption_timeout_ms=turn_taking.false_interruption_timeout_ms,
    )


def run_file_mode(config: PipelineConfig, tools: ToolWorker | None = None) -> int:
    from connections.file_io import FileAudioSink, FileAudioSource

    samples = load_audio(config.file_mode.input_file)  # bad input fails before models load
    check_output_file(config.file_mode.output_file)  # and so does an output that cannot be written
    channels = Channels()
    channels.serve_tools(tools)
    stages = build_model_stages(config, channels, yield_floor_at_end_of_turn=True)
    sink = FileAudioSink(
        channels.stop_event,
        channels.audio_out,
        queue_out=_Discard(),
        setup_kwargs={
            "should_listen": channels.should_listen,
            "output_file": config.file_mode.output_file,
            "metrics_file": config.module.metrics_file,
            "tools": channels.tools,
        },
    )
    source = FileAudioSource(samples, channels.audio_in, channels.should_listen, channels.stop_event)
    manager = ThreadManager([source, *stages, sink], channels.stop_event)
    manager.start()
    interrupted = _wait_or_interrupt(manager)
    status, lines = sink.outcome(config.file_mode.input_file, interrupted)
    for line in lines:
        print(line, file=sys.stderr if line.startswith("s2s:") else sys.stdout)
    return status


def run_socket_mode(config: PipelineConfig, tools: ToolWorker | None = None) -> int:
    from connections.socket_receiver import SocketReceiver
    from connections.socket_sender import SocketSender

    channels = Channels()
    channels.serve_tools(tools)
    # Bind both ports before loading models: a port in use fails in a second.
    receiver = SocketReceiver(
        channels.stop_event,
        channels.audio_in,
        channels.should_listen,
        turn_taking_settings(config, config.turn_taking.barge_in, channels.server_tools),
        host=config.socket_receiver.recv_host,
        port=config.socket_receiver.recv_port,
        chunk_size=config.socket_receiver.chunk_size,
        sample_rate=config.vad.sample_rate,
    )
    sender = SocketSender(
        channels.stop_event,
        channels.audio_out,
        _Discard(),
        setup_kwargs={
            "should_listen": channels.should_listen,
            "host": config.socket_sender.send_host,
            "port": config.socket_sender.send_port,
            "send_timeout_s": config.socket_sender.send_timeout_s,
            "metrics_file": config.module.metrics_file,
            "playback_lead_ms": config.socket_sender.playback_lead_ms,
            "yield_floor_while_speaking": not config.turn_taking.barge_in,
            "tools": channels.tools,
        },
    )
    manager, loaded = _start_operations_server(config, channels)
    METRICS.sessions_max.set(1)  # one client at a time
    stages = build_model_stages(config, channels)
    manager.add([receiver, *stages, sender])
    loaded.set()
    logger.info("ready: send audio to port %d, replies come from port %d", receiver.port, sender.port)
    _wait_or_interrupt(manager)
    return 0


def run_local_mode(config: PipelineConfig, tools: ToolWorker | None = None) -> int:
    from connections.local_audio_streamer import (
        LocalAudioSink,
        LocalAudioStreamer,
        PlaybackBuffer,
        describe_devices,
        import_sounddevice,
    )

    options = config.local_audio
    if options.list_devices:
        print(describe_devices(import_sounddevice()))
        return 0
    # With echo cancellation the user may talk over the assistant (barge-in).
    settings = turn_taking_settings(config, barge_in=options.aec)
    channels = Channels(session=Session(settings))
    channels.serve_tools(tools)
    playback = PlaybackBuffer()
    # Open the devices before loading models: a missing microphone fails in a second.
    streamer = LocalAudioStreamer(
        channels.stop_event,
        channels.audio_in,
        channels.should_listen,
        playback,
        input_device=options.input_device,
        output_device=options.output_device,
        list_play_chunk_size=options.list_play_chunk_size,
        latency_s=options.audio_latency_s,
        echo_cancellation=options.aec_engine if options.aec else None,
        session=channels.session,
    )
    settings.barge_in = streamer.full_duplex  # no canceller installed: half duplex
    manager, loaded = _start_operations_server(config, channels)
    METRICS.sessions_max.set(1)  # whoever is at the microphone
    stages = build_model_stages(config, channels)
    sink = LocalAudioSink(
        channels.stop_event,
        channels.audio_out,
        _Discard(),
        setup_kwargs={
            "should_listen": channels.should_listen,
            "playback": playback,
            "streamer": streamer,
            "metrics_file": config.module.metrics_file,
            "tools": channels.tools,
        },
    )
    manager.add([streamer, *stages, sink])
    loaded.set()
    METRICS.session_opened()  # the one conversation, with whoever is at the microphone
    streamer.started.wait(5)
    if not channels.stop_event.is_set():  # else the stream could not be opened: reported below
        logger.info("ready: speak into the microphone")
    _wait_or_interrupt(manager)
    return 0


def run_realtime_mode(config: PipelineConfig, tools: ToolWorker | None = None) -> int:
    from connections.realtime.connection import RealtimeOptions
    from connections.realtime.server import RealtimeServer
    from connections.realtime.sink import RealtimeSink
    from conversation.session import TurnDetection

    options = config.realtime
    if hasattr(config.tts, "tts_output_sample_rate"):
        config.tts.tts_output_sample_rate = 24000  # the API's PCM rate: no second resampling
    channels = Channels()
    channels.serve_tools(tools)
    server = RealtimeServer(  # binds its port now, before the models load
        channels.stop_event,
        channels.audio_in,
        RealtimeOptions(
            model=options.realtime_model_name,
            pipeline_rate=config.vad.sample_rate,
            defaults=TurnDetection(
                threshold=config.vad.thresh,
                silence_duration_ms=config.vad.min_silence_ms,
                prefix_padding_ms=config.vad.speech_pad_ms,
            ),
            interrupt_min_speech_ms=config.turn_taking.interrupt_min_speech_ms,
            resume_false_interruption=config.turn_taking.resume_false_interruption,
            false_interruption_timeout_ms=config.turn_taking.false_interruption_timeout_ms,
            server_tools=channels.server_tools,
            playback_lead_ms=options.realtime_playback_lead_ms,
        ),
        host=options.realtime_host,
        port=options.realtime_port,
        api_key=options.api_key,
        max_sessions=options.max_sessions,
        ssl_certfile=options.ssl_certfile,
        ssl_keyfile=options.ssl_keyfile,
    )
    # /healthz answers, /readyz says "models loading" while they load.
    manager, _ = _start_operations_server(config, channels, [server], server.not_ready)
    stages = build_model_stages(config, channels)
    sink = RealtimeSink(
        channels.stop_event,
        channels.audio_out,
        _Discard(),
        setup_kwargs={
            "should_listen": channels.should_listen,
            "connections": server.connections,
            "metrics_file": config.module.metrics_file,
            "tools": channels.tools,
        },
    )
    manager.add([*stages, sink])
    server.loaded.set()
    server.started.wait(5)
    logger.info(
        "ready: realtime API on %s://%s:%d/v1/realtime%s",
        "wss" if options.ssl_certfile else "ws",
        address_to_open(options.realtime_host),
        server.port,
        "" if options.api_key else " (no API key: anyone who reaches it can talk)",
    )
    _wait_or_interrupt(manager, drain=lambda: server.drain(options.drain_timeout_s))
    return 0


def _start_operations_server(
    config: PipelineConfig,
    channels: Channels,
    first: Sequence[object] = (),
    not_ready: Callable[[], str | None] | None = None,
) -> tuple[ThreadManager, threading.Event]:
    """The threads that run while the models load: `first` (the realtime
    server) and the `--metrics_port` server if asked for, which answers probes
    meanwhile; returns their manager and the event to set once the models are
    loaded."""
    from connections.operations import OperationsServer

    threads = list(first)
    loaded = threading.Event()
    module = config.module
    if module.metrics_port is not None:
        server = OperationsServer(channels.stop_event, module.metrics_host, module.metrics_port, not_ready)
        threads.append(server)
        loaded = server.loaded
    manager = ThreadManager(threads, channels.stop_event)
    manager.start()
    return manager, loaded


class _Discard:
    """The queue after the last stage: nobody reads it."""

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        pass


def _wait_or_interrupt(manager: ThreadManager, drain: Callable[[], None] | None = None) -> bool:
    """Block until the stages drain; Ctrl-C (SIGINT) or SIGTERM stops them all.

    SIGINT is handled explicitly, not left to KeyboardInterrupt: a shell
    starts background jobs with SIGINT ignored, and a server started that way
    must still stop on `kill -INT`.  With `drain` (realtime mode), the first
    SIGTERM calls it instead: the server finishes the turns under way and
    sets the stop event itself; a second SIGTERM, or SIGINT, stops at once.
    A stage that died stops them all too, and raises StageFailedError naming
    it.  Returns True when a signal stopped the pipeline.
    """
    signalled: list[str] = []

    def request_stop(signum: int, _frame: object) -> None:
        signalled.append(signal.Signals(signum).name)
        if drain is not None and signalled == ["SIGTERM"]:
            logger.info("SIGTERM received: finishing the turns under way, then stopping (SIGINT: stop now)")
            drain()
            return
        logger.info("%s received: stopping", signalled[-1])
        manager.stop_event.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if ctrl_c_requested():  # it came while the stages started, its KeyboardInterrupt lost in a C callback
        request_stop(signal.SIGINT, None)
    try:
        while manager.alive() and not manager.stop_event.is_set():
            manager.stop_event.wait(0.2)
    finally:
        manager.stop()
    if manager.failure is not None:
        raise StageFailedError(manager.failure)
    return bool(signalled)


MODES = {"file": run_file_mode, "socket": run_socket_mode, "local": run_local_mode, "realtime": run_realtime_mode}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse_config(argv)
    except ConfigError as error:
        print(f"s2s: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(config.module.log_level)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    listen_for_ctrl_c()  # also while the models load, also as a background job
    try:
        tools = start_tool_worker(config)
    except ToolWorkerError as error:
        print(f"s2s: error: {error}", file=sys.stderr)
        return 2
    try:
        return MODES[config.module.mode](config, tools)
    except KeyboardInterrupt:  # Ctrl-C while the models were still loading
        print("s2s: interrupted", file=sys.stderr)
        return 130
    except (
        AudioInputError,
        AudioDeviceError,
        ModelNotInstalledError,
        BackendUnavailableError,
        StageFailedError,
        OSError,
    ) as error:
        print(f"s2s: error: {error}", file=sys.stderr)
        return 1
    finally:
        if tools is not None:
            tools.stop()


def start_tool_worker(config: PipelineConfig) -> ToolWorker | None:
    """The worker that runs the server's own tools (the built-ins and the
    `--tools` files), started before any model loads: a file that does not
    import, or a function that cannot be a tool, stops here with one line
    naming it (exit status 2).  None when no tool is wanted."""
    options = config.tools
    if config.module.mode == "local" and config.local_audio.list_devices:
        return None
    if not options.tools and not options.builtin_tools:
        return None
    return ToolWorker(options.tools, builtins=options.builtin_tools, timeout_s=options.tool_timeout_s)


def exit_now(status: int) -> None:
    """Leave without the interpreter's teardown.

    By now every stage thread has stopped and every output is written; the
    teardown would only free the models one by one, which takes seconds on
    a busy machine (measured 3.6 s under load), while Ctrl-C must stop the
    server within 2 s.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader that went away (`| head`)
            pass
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":
    exit_now(main())
