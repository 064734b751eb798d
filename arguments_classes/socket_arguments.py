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
    send_timeout_s: float = field(
        default=5.0,
        metadata={
            "help": "A reply client that accepts no audio for this long (it stopped reading: a frozen app, a lost "
            "network) is dropped and logged, so the server goes on serving."
        },
    )
