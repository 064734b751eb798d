from dataclasses import dataclass, field


@dataclass
class RealtimeArguments:
    """--mode realtime: the OpenAI Realtime API over WebSocket."""

    realtime_host: str = field(
        default="127.0.0.1",
        metadata={
            "help": "Address the realtime server binds. Anything but loopback needs an API key "
            "(S2S_API_KEY or --api_key) unless --allow_unauthenticated."
        },
    )
    realtime_port: int = field(default=8765, metadata={"help": "Port of the realtime server (0: any free port)."})
    api_key: str | None = field(
        default=None,
        metadata={"help": "Clients must send 'Authorization: Bearer <key>' (default: $S2S_API_KEY; none: no auth)."},
    )
    allow_unauthenticated: bool = field(
        default=False, metadata={"help": "Serve a non-loopback address without an API key (anyone may talk)."}
    )
    max_sessions: int = field(
        default=4,
        metadata={
            "help": "Conversations served at once; one more gets an error event and is closed. Sessions "
            "asking at once wait for each other's replies (benchmarks/RESULTS_sessions.md)."
        },
    )
    drain_timeout_s: float = field(
        default=10.0,
        metadata={
            "help": "On SIGTERM the server takes no new conversations and lets the turns under way finish, "
            "for at most this many seconds, then exits 0 (SIGINT stops at once)."
        },
    )
    realtime_playback_lead_ms: int = field(
        default=250,
        metadata={
            "help": "Reply audio goes to a realtime client at most this far ahead of its playback, so a sound "
            "over the reply silences the client within about this long while it is judged, and a backchannel "
            "lets it play on. 0: send it as fast as it is made, as OpenAI's API does (the client then plays its "
            "buffer until an interruption is announced)."
        },
    )
    realtime_model_name: str = field(
        default="s2s", metadata={"help": "The model name the server reports in session.created."}
    )
    ssl_certfile: str | None = field(
        default=None,
        metadata={
            "help": "TLS certificate (PEM): serve wss:// and https://, needed for a browser's "
            "microphone on another machine."
        },
    )
    ssl_keyfile: str | None = field(default=None, metadata={"help": "TLS private key (PEM) for --ssl_certfile."})


@dataclass
class TurnTakingArguments:
    """Barge-in: the user may interrupt the assistant."""

    barge_in: bool = field(
        default=False,
        metadata={
            "help": "Socket mode: keep listening while the reply plays; user speech over it interrupts it "
            "(the client must cancel its own echo, e.g. listen_and_play.py --barge_in). Realtime mode "
            "always listens (turn_detection.interrupt_response)."
        },
    )
    interrupt_min_speech_ms: int = field(
        default=200,
        metadata={"help": "False-interruption guard: this much speech over the reply before it is interrupted."},
    )
    resume_false_interruption: bool = field(
        default=True,
        metadata={
            "help": "A sound over the reply pauses it at once and is transcribed: a backchannel ('uh-huh', 'yeah', "
            "'right', 'I see') or no words (a cough, a laugh, a knock) resumes it where it paused and is no turn; "
            "other words stop it. Realtime clients get no speech_started until it is an interruption. False: any "
            "speech past --interrupt_min_speech_ms stops the reply. Needs --stt faster-whisper."
        },
    )
    false_interruption_timeout_ms: int = field(
        default=1500,
        metadata={
            "help": "The longest a reply stays paused while a sound over it is judged: a sound still going on "
            "then stops the reply, anything else lets it go on."
        },
    )
