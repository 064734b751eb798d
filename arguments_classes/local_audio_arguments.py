from dataclasses import dataclass, field


@dataclass
class LocalAudioArguments:
    """`--mode local`: this machine's microphone and speakers."""

    input_device: str | None = field(
        default=None, metadata={"help": "Microphone: device index or part of its name; none: the system's default."}
    )
    output_device: str | None = field(
        default=None, metadata={"help": "Speaker: device index or part of its name; none: the system's default."}
    )
    list_devices: bool = field(default=False, metadata={"help": "Print the audio devices and exit."})
    list_play_chunk_size: int = field(
        default=512, metadata={"help": "Frames per audio block of the full-duplex stream (512 = 32 ms at 16 kHz)."}
    )
    audio_latency_s: float = field(
        default=0.1,
        metadata={
            "help": "Device latency asked of PortAudio, in seconds: what is already in the speaker's buffer still "
            "plays after an interruption (0.1: measured ~140 ms faster barge-in than 0.2); raise it if sound crackles."
        },
    )
    aec: bool = field(
        default=True,
        metadata={
            "help": "Echo cancellation (WebRTC AEC3) on the microphone, with what the speaker plays as reference: "
            "the mic stays open while the assistant speaks, which never hears itself, and the user can interrupt "
            "it (barge-in, --interrupt_min_speech_ms). False: half duplex, the mic is muted during replies."
        },
    )
    aec_engine: str = field(
        default="auto",
        metadata={"help": "Echo canceller: auto (webrtc, else speex), webrtc (pip: livekit) or speex (pip: pyaec)."},
    )
