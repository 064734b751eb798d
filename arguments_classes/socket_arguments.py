from dataclasses import dataclass, field


@dataclass
class SocketReceiverArguments:
    recv_host: str = field(
        default="127.0.0.1",
        metadata={"help": "Address the audio receiver binds; anything but loopback opens the port."},
    )
    recv_port: int = field(default=12345, metadata={"help": "Port of the audio receiver."})
    chunk_size: int = field(default=1024, metadata={"help": "Bytes read per chunk (int16: 512 samples)."})


@dataclass
class SocketSenderArguments:
    send_host: str = field(
        default="127.0.0.1",
        metadata={"help": "Address the reply sender binds; anything but loopback opens the port."},
    )
    send_port: int = field(default=12346, metadata={"help": "Port of the reply sender."})
    playback_lead_ms: int = field(
        default=150,
        metadata={
            "help": "Reply audio is sent at real-time pace, at most this far ahead of playback, so that when "
            "the server stops sending (an interruption) the client falls silent within this lead. 0: send "
            "as fast as it is made."
        },
    )
    send_timeout_s: float = field(
        default=5.0,
        metadata={
            "help": "A reply client that accepts no audio for this long (it stopped reading: a frozen app, a lost "
            "network) is dropped and logged, so the server goes on serving."
        },
    )
