"""Voice activity detection: audio chunks in, one SpeechSegment per user turn out.

Silero VAD is loaded once from the `silero-vad` wheel (its weights ship inside
it; `torch.hub` is never used) and shared by every conversation; each
session's stream state (Silero's memory, the end-of-turn state machine in
`vad_iterator.py`, audio not yet scored, the turn in flight) lives in the
session (`Session.state`), so many clients can talk at once through this one
thread.  Incoming chunks of any size are re-cut into the 512-sample windows
Silero expects.

Turn-taking decided here, per session:
- End of turn on the evidence of the pause (VAD/end_of_turn.py: the silence
  so far, the early transcript's words, Smart Turn where installed, the
  speaker's own pauses), as eager as the session asks; after a fixed
  `--min_silence_ms` with `--turn_detector silence` or a client's
  `silence_duration_ms`; or at the client's `input_audio_buffer.commit` when
  it turned server turn detection off.
- A pause that turns out not to be the end: speech that resumes after the
  turn was handed on, but before any of its reply was heard, joins that turn
  (its reply is withdrawn and the whole utterance answered once).
- Barge-in (where the session listens while the assistant speaks): a sound
  over an audible reply pauses it, and its words decide (VAD/overlap.py): a
  backchannel or a noise resumes it, anything else interrupts it, and the
  chat keeps only what the user heard.  Without an STT that can tell
  (`hears_overlaps`), or with `resume_false_interruption` off, speech over
  the reply interrupts it once it lasts `interrupt_min_speech_ms`.

Half duplex (file mode): the VAD clears `should_listen` when it hands a turn
on, and the sink sets it again once the reply is out; the sources hold back
their input meanwhile, so the assistant never answers its own voice.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audio.pcm import int16_to_float, resample
from baseHandler import BaseHandler
from conversation.session import Session
from conversation.turn import Turn
from models.packaged import ModelNotInstalledError
from utils.messages import (
    AudioChunk,
    ClearInput,
    CommitInput,
    Overheard,
    OverheardSpeech,
    SpeechProgress,
    SpeechSegment,
)
from VAD.end_of_turn import EAGERNESS, EndOfTurn, PauseHabits, Words, words_evidence
from VAD.overlap import Overlap, OverlapRules, Step, is_echo
from VAD.silero import SileroModel, SileroStream
from VAD.smart_turn import INSTALL as SMART_TURN_INSTALL
from VAD.smart_turn import SmartTurnModel
from VAD.turn_end import looks_unfinished
from VAD.vad_iterator import Utterance, VADIterator

logger = logging.getLogger(__name__)

# A committed buffer shorter than this is no turn (the realtime API says 100 ms).
MIN_COMMIT_MS = 100
# Audio a client may append without committing (no server turn detection).
MAX_UNCOMMITTED_S = 120
# A sound over the reply is transcribed with this much of its trailing silence at most.
OVERHEARD_TAIL_S = 0.4
# A sound over the reply whose session sent no audio for this long is judged on
# without it: the time since counts as silence (a muted mic, push-to-talk, a
# client that sends only while the user speaks), so its verdict does not wait
# for audio that may never come.  Longer than a live client's gap between
# chunks (20-100 ms) and a busy machine's hiccup.
AUDIO_GONE_S = 0.3
# A client that sent nothing for this long after its last chunk's own length,
# in the middle of someone's speech, has stopped sending (a mic muted, a
# push-to-talk let go, a tab put away): the speech ends where its audio did,
# and its turn is answered.  Longer than for a sound over the reply, whose
# judging only waits on it: ending a turn on a stall would split it, and
# stalls pass a second on a loaded machine (the browser's question in the
# one-core suite beside a busy core, audio stopped 1.1 s: "What is the
# largest plane" | "it in our solar system", two turns).  A stall of the
# browser and one of the server's own reading look alike from here.
SPEECH_AUDIO_GONE_S = 2.5
# The sink's own deadline for a paused reply, beyond the VAD's timeout: the
# reply goes on even if the VAD never hears another chunk (a client that
# stopped sending).
PAUSE_MARGIN_S = 0.25


@dataclass
class VADStream:
    """One session's audio stream as the VAD follows it."""

    silero: SileroStream
    iterator: VADIterator
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    # (stream position after the chunk, arrival time) of recent chunks, to
    # find when the last voiced sample actually arrived.
    arrivals: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=2048))
    received: int = 0
    speculated: tuple[int, int] | None = None
    speculative_turn: Turn | None = None
    # The last turn handed on, with its audio: speech resuming before its
    # reply is heard joins it.
    last_turn: tuple[Turn, Utterance] | None = None
    interrupted: bool = False  # the speech in progress already interrupted a reply
    base_silence: int | None = None  # the session's end-of-turn silence, in samples
    decision: EndOfTurn | None = None  # the end of turn on evidence (None: a fixed silence)
    fixed_silence: bool = False  # a client asked for its own silence: it ends the turn, as it is
    smart_turn_key: tuple[int, int] | None = None  # the pause Smart Turn last judged
    smart_turn_probability: float = 0.5
    smart_turn_due: int = 0  # stream position from which its verdict may be used (it took that long)

    @property
    def smart_turn_finished(self) -> bool | None:
        """Smart Turn's verdict on the last pause it judged (None: none yet)."""
        return None if self.smart_turn_key is None else self.smart_turn_probability > 0.5

    trailing: int = 0  # the trailing silence at the last window, in samples
    manual_audio: list[np.ndarray] = field(default_factory=list)  # client-committed turns
    overflowed: bool = False  # manual_audio outgrew its bound since the last commit
    cancelled_speculations: int = 0  # early replies dropped in the turn under way, for its metrics
    progress_sent: tuple[int, int] = (-1, 0)  # (speech start, stream position) of the last SpeechProgress
    announced: bool = False  # speech_started was told for the speech in progress
    overlap: Overlap | None = None  # a sound over the reply, being judged
    # Samples of the speech in progress the mic measured as the reply's own echo, and as not.
    echo_voiced: int = 0
    user_voiced: int = 0
    # The session's own waits after an unfinished / a finished-sounding pause
    # (semantic_vad's eagerness sets them where the detector is not "evidence");
    # None: the handler's flags.
    unfinished_silence_ms: int | None = None
    finished_silence_ms: int | None = None


class VADHandler(BaseHandler):
    accepts = (AudioChunk, CommitInput, ClearInput)

    def setup(
        self,
        should_listen: threading.Event,
        thresh: float = 0.3,
        sample_rate: int = 16000,
        min_silence_ms: int = 300,
        min_speech_ms: int = 500,
        max_speech_ms: float = float("inf"),
        speech_pad_ms: int = 500,
        session: Session | None = None,
        speculative_stt_ms: int = 0,
        speculative_reply: bool = False,
        yield_floor_at_end_of_turn: bool = True,
        join_window_ms: int = 1500,
        unfinished_silence_ms: int = 900,
        turn_detector: str = "silence",
        finished_silence_ms: int = 150,
        eagerness: str = "auto",
        incremental_stt_ms: int = 0,
        hears_overlaps: bool = False,
    ) -> None:
        self.should_listen = should_listen
        # Audio that names no session (file mode, tests) belongs to this one.
        self.default_session = session or Session()
        self.sample_rate = sample_rate
        self.thresh = thresh
        self.min_silence_ms = min_silence_ms
        self.min_speech_ms = min_speech_ms
        self.max_speech_ms = max_speech_ms
        self.speech_pad_ms = speech_pad_ms
        self.model = SileroModel()
        self.window = 512 if sample_rate == 16000 else 256
        # Send a provisional segment this long into the end-of-turn silence
        # (0: never), so the STT can start before the turn is over.
        self.speculate_after = int(speculative_stt_ms * sample_rate / 1000) if speculative_stt_ms > 0 else None
        # ...and open a speculative turn with it, so the LLM and TTS start too.
        self.speculative_reply = speculative_reply
        # Half duplex where the input is not live (file mode): stop the input
        # at the end of a turn.  Live modes keep hearing the user until the
        # reply is audible, so a resumed sentence joins its turn.
        self.yield_floor_at_end_of_turn = yield_floor_at_end_of_turn
        # ...but only this soon after the end of the turn: later speech is a new turn.
        self.join_window = int(join_window_ms * sample_rate / 1000)
        # The silence that ends a turn whose early transcript stops mid-sentence.
        self.unfinished_silence_ms = unfinished_silence_ms
        # "evidence": the end of turn weighs all a pause tells (VAD/end_of_turn.py),
        # Smart Turn's ear included where it is installed.  "smart-turn": Smart
        # Turn asked once a pause is `finished_silence_ms` old; a turn it hears
        # as finished (and whose words do not dangle) ends right then, one it
        # hears as unfinished waits `unfinished_silence_ms`.  "silence": the
        # words alone lengthen the fixed silence.
        self.turn_detector = turn_detector
        self.eagerness = EndOfTurn(eagerness).eagerness
        self.smart_turn = self._smart_turn(turn_detector)
        self.finished_silence_ms = finished_silence_ms
        # Send the speech so far every this many samples of it (None: never),
        # so the STT transcribes while the user speaks.
        self.progress_every = int(incremental_stt_ms * sample_rate / 1000) if incremental_stt_ms > 0 else None
        # The STT transcribes sounds over the reply at once (OverheardSpeech),
        # so a backchannel or a noise can be told from an interruption.
        self.hears_overlaps = hears_overlaps
        self._sessions: weakref.WeakSet[Session] = weakref.WeakSet()

    @staticmethod
    def _smart_turn(turn_detector: str) -> SmartTurnModel | None:
        if turn_detector == "smart-turn":
            return SmartTurnModel()
        if turn_detector != "evidence":
            return None
        try:
            model = SmartTurnModel()
        except ModelNotInstalledError:
            logger.info("end of turn on the words and the silence (Smart Turn is not installed: %s)",
                        SMART_TURN_INSTALL)  # fmt: skip
            return None
        logger.info("end of turn on the words, the silence and Smart Turn's ear")
        return model

    # --- per-session state --------------------------------------------------------
    def stream_for(self, session: Session) -> VADStream:
        return session.state("vad", lambda: self._new_stream(session))

    def _new_stream(self, session: Session) -> VADStream:
        detection = session.settings.turn_detection
        threshold = detection.threshold if detection and detection.threshold is not None else self.thresh
        silence = detection.silence_duration_ms if detection and detection.silence_duration_ms is not None else None
        pad = detection.prefix_padding_ms if detection and detection.prefix_padding_ms is not None else None
        self._sessions.add(session)
        decision = None
        if self.turn_detector == "evidence" and silence is None:  # a client's fixed silence wins
            wanted = detection.eagerness if detection is not None else None
            decision = EndOfTurn(wanted if wanted in EAGERNESS else self.eagerness)
        return VADStream(
            decision=decision,
            fixed_silence=self.turn_detector == "evidence" and silence is not None,
            silero=self.model.stream(self.sample_rate),
            iterator=VADIterator(
                threshold=threshold,
                sample_rate=self.sample_rate,
                min_silence_ms=self.min_silence_ms if silence is None else silence,
                min_speech_ms=self.min_speech_ms,
                max_speech_ms=self.max_speech_ms,
                speech_pad_ms=self.speech_pad_ms if pad is None else pad,
            ),
            unfinished_silence_ms=detection.unfinished_silence_ms if detection else None,
            finished_silence_ms=detection.finished_silence_ms if detection else None,
        )

    @property
    def iterator(self) -> VADIterator:
        """The default session's end-of-turn state machine."""
        return self.stream_for(self.default_session).iterator

    def speech_probability(self, window: np.ndarray, session: Session | None = None) -> float:
        return self.stream_for(session or self.default_session).silero.probability(window)

    def on_reset(self) -> None:
        stream = self.stream_for(self.default_session)
        self._cancel_speculation(stream)
        self._forget_overlap(self.default_session, stream)
        self.default_session.drop_state("vad")
        self.default_session.drop_state("pause_habits")  # a new client: a new speaker

    # --- messages ---------------------------------------------------------------------
    def process(
        self, message: AudioChunk | CommitInput | ClearInput
    ) -> Iterator[SpeechSegment | SpeechProgress | OverheardSpeech]:
        session = self._session_of(message)
        if session.closed:
            return  # audio of a client that has left: never a turn of anyone
        stream = self.stream_for(session)
        if isinstance(message, ClearInput):
            self._clear(session, stream)
            return
        if isinstance(message, CommitInput):
            yield from self._commit(session, stream, message.turn)
            return
        samples = message.samples
        if message.sample_rate != self.sample_rate:
            samples = resample(samples, message.sample_rate, self.sample_rate)
        audio = int16_to_float(samples) if samples.dtype == np.int16 else samples.astype(np.float32, copy=False)
        if session.settings.turn_detection is None:
            self._keep_uncommitted(session, stream, audio)
            return
        stream.received += len(audio)
        stream.arrivals.append((stream.received, message.received_at))
        stream.pending = np.concatenate([stream.pending, audio])
        usable = len(stream.pending) - len(stream.pending) % self.window
        windows, stream.pending = stream.pending[:usable], stream.pending[usable:]
        iterator = stream.iterator
        for start in range(0, usable, self.window):
            window = windows[start : start + self.window]
            self._fit_silence_to_evidence(session, stream)
            was_speaking = iterator.speaking
            utterance = iterator(window, stream.silero.probability(window))
            self._learn_pauses(session, stream, utterance)
            if iterator.speaking and not was_speaking:
                stream.echo_voiced = stream.user_voiced = 0
                self._speech_started(session, stream)
            if iterator.speaking and not iterator.in_silence and message.echo_leak is not None:
                if is_echo(message.echo_leak):
                    stream.echo_voiced += len(window)
                else:
                    stream.user_voiced += len(window)
            if stream.overlap is not None:
                if utterance is not None:
                    stream.overlap.held, utterance = utterance, None  # its fate waits for the verdict
                yield from self._judge_overlap(session, stream, window, message.echo_leak)
                if stream.overlap is not None:
                    continue  # still judging: no speculation, no progress
            if utterance is not None:
                yield from self._segment(session, stream, utterance)
                continue
            if not iterator.speaking and was_speaking and stream.announced:
                stream.announced = False
                session.observer.speech_stopped(session, self._ms(iterator.position))  # noise, not a turn
            if iterator.speaking and not stream.interrupted:
                self._maybe_interrupt(session, stream)
            if stream.speculative_turn is not None and self._current_key(stream) != stream.speculated:
                self._cancel_speculation(stream)  # speech resumed: the pause did not end the turn
            if self._should_speculate(stream):
                yield from self._provisional_segment(session, stream)
            elif self._should_report_progress(stream):
                yield from self._progress(session, stream)

    def next_message(self) -> Any:
        """Before each message (other sessions' audio keeps this stage from
        idling), and in `idle`: judge the sounds whose audio stopped coming."""
        self.idle()
        return super().next_message()

    def idle(self) -> None:
        for output in self._judge_sounds_without_audio():
            self.put(output)

    def _judge_sounds_without_audio(self) -> Iterator[SpeechSegment | OverheardSpeech]:
        """Go on with each session whose audio stopped coming in the middle of
        a sound, where a gap in its audio is silence (`audio_gaps_are_silence`:
        realtime clients; elsewhere audio is held back on purpose): after
        `AUDIO_GONE_S` beyond its last chunk's own length for a sound over a
        reply, `SPEECH_AUDIO_GONE_S` for a turn (a client may send a second
        of audio at a time).  A sound over a reply is judged, the time without
        audio counting as silence: without this a client that went quiet
        mid-judgement left its reply paused to the sink's deadline and the
        sound unjudged, a real "Stop." included.  A turn's speech ends where
        its audio did, and the turn is answered: without this it stayed open
        until the client sent audio again, perhaps never.  A sound too short
        to be speech is left open (ended, it would be dropped with its onset,
        and a client that only stalled would lose its first words).  Audio
        of the session still waiting in this stage's queue (a stage behind)
        is not gone."""
        now = time.perf_counter()
        for session in list(self._sessions):
            if session.closed or not session.settings.audio_gaps_are_silence:
                continue
            if session.settings.turn_detection is None:
                continue  # the client ends its turns itself (commit)
            stream = self.stream_for(session)
            if not stream.arrivals or (stream.overlap is None and not stream.iterator.holds_speech()):
                continue
            (end, arrived), before = stream.arrivals[-1], stream.arrivals[-2][0] if len(stream.arrivals) > 1 else 0
            quiet_s = now - arrived
            gone_s = AUDIO_GONE_S if stream.overlap is not None else SPEECH_AUDIO_GONE_S
            if quiet_s < (end - before) / self.sample_rate + gone_s:
                continue
            if self.queued(lambda message, of=session: self._session_of(message) is of):
                continue
            if stream.overlap is not None:
                yield from self._judge_overlap(session, stream, None, quiet_ms=quiet_s * 1000)
                continue
            logger.debug("%s: no audio for %.1f s in the middle of speech: it ends there", session.id, quiet_s)
            utterance = stream.iterator.flush()
            stream.pending = np.zeros(0, dtype=np.float32)  # under a window, cut off; not the next press's start
            if utterance is None:  # not expected after holds_speech(); nothing of it stays open
                self._cancel_speculation(stream)
                continue
            yield from self._segment(session, stream, utterance, waited_ms=quiet_s * 1000)

    def _session_of(self, message: object) -> Session:
        return getattr(message, "session", None) or self.default_session

    def flush(self) -> Iterator[SpeechSegment]:
        for session in list(self._sessions):
            if session.closed:
                continue
            stream = self.stream_for(session)
            self._forget_overlap(session, stream)
            utterance = stream.iterator.flush()
            if utterance is not None:
                yield from self._segment(session, stream, utterance)
            self._cancel_speculation(stream)

    # --- turn-taking ------------------------------------------------------------------
    def _ms(self, position: int) -> int:
        return int(position * 1000 / self.sample_rate)

    def _speech_started(self, session: Session, stream: VADStream) -> None:
        if stream.overlap is not None:
            # The sound being judged goes on after a break.  If the break ended
            # an utterance (a question with a pause in it, judged slowly on a
            # busy machine), what follows continues it: one sound, one turn.
            # Held apart, the next utterance to end replaced it, and the turn
            # kept only the question's last words.
            if stream.overlap.held is not None:
                stream.iterator.join_previous(stream.overlap.held)
                stream.overlap.held = None
            return
        stream.interrupted = False
        if self._judges_overlaps(session) and self._start_overlap(session, stream):
            return  # not announced (clients stop playing at speech_started) until it interrupts
        stream.announced = True
        session.observer.speech_started(session, self._ms(stream.iterator.speech_start))
        if stream.last_turn is None:
            return
        turn, utterance = stream.last_turn
        resumed_after = stream.iterator.speech_start - utterance.end_position
        if session.settings.audio_gaps_are_silence:
            resumed_after += self._wall_gap(stream, utterance)
        if resumed_after <= self.join_window and turn.withdraw_unheard():
            # The pause was not the end: its reply is withdrawn before a word of
            # it was heard, and what the user says now continues that turn.
            logger.info("turn %d: speech resumed before the reply was heard; joining it", turn.number)
            self._habits(session).observe(self._ms(stream.iterator.speech_start - utterance.end_sample))
            session.chat.forget(turn.turn_id)  # its answer may be stored already (a fast reply)
            stream.iterator.join_previous(utterance)
            session.observer.turn_withdrawn(turn)
            if session.active_turn is turn:
                session.active_turn = None
            if self.yield_floor_at_end_of_turn:
                # The floor went to the assistant with the turn; its reply will never play, and the
                # sink gives the floor back only at a reply's end (file mode's source waited for ever).
                self.should_listen.set()
        stream.last_turn = None

    def _barge_in(self, session: Session) -> bool:
        """Whether speech over this session's reply may interrupt it."""
        settings = session.settings
        detection = settings.turn_detection
        return settings.barge_in and (detection is None or detection.interrupt_response)

    def _judges_overlaps(self, session: Session) -> bool:
        return self.hears_overlaps and session.settings.resume_false_interruption and self._barge_in(session)

    def _maybe_interrupt(self, session: Session, stream: VADStream) -> None:
        """Barge-in without a judgement: speech over an audible reply, past the
        guard, stops it."""
        if not self._barge_in(session):
            return
        # The reply's own voice leaking through the mic's echo canceller is no user's speech:
        # where some of it was, only what was measured as not its echo counts.
        voiced = stream.user_voiced if stream.echo_voiced else stream.iterator.voiced_samples
        if voiced * 1000 < session.settings.interrupt_min_speech_ms * self.sample_rate:
            return
        self._interrupt(session, stream)

    def _interrupt(self, session: Session, stream: VADStream) -> None:
        stream.interrupted = True
        turn = session.interrupt_reply()
        if turn is not None:
            logger.info("turn %d interrupted by the user after: %s", turn.number, turn.heard_reply or "<nothing>")

    # --- sounds over the reply ----------------------------------------------------------
    def _start_overlap(self, session: Session, stream: VADStream) -> bool:
        """Speech began over an audible reply: pause it, and judge the sound."""
        settings = session.settings
        rules = OverlapRules(timeout_ms=settings.false_interruption_timeout_ms,
                             guard_ms=settings.interrupt_min_speech_ms)  # fmt: skip
        turn = session.pause_reply(rules.timeout_ms / 1000 + PAUSE_MARGIN_S)
        if turn is None:
            return False
        iterator = stream.iterator
        stream.overlap = Overlap(
            turn, self._ms(iterator.speech_start), time.perf_counter(), rules, audio=[iterator.audio_so_far()],
            first_voiced=iterator.speech_start, last_voiced=iterator.last_voiced_end,
        )  # fmt: skip
        logger.debug("turn %d: a sound over the reply; paused while it is judged", turn.number)
        return True

    def _judge_overlap(
        self,
        session: Session,
        stream: VADStream,
        window: np.ndarray | None,
        echo_leak: float | None = None,
        quiet_ms: float = 0.0,
    ) -> Iterator[SpeechSegment | OverheardSpeech]:
        """One step of the judgement of the sound over the reply: after a new
        `window` of audio, or (None) after `quiet_ms` without any."""
        overlap, iterator = stream.overlap, stream.iterator
        assert overlap is not None
        if window is not None:
            overlap.hear(window, iterator.last_voiced_end if iterator.speaking else None, echo_leak)
        voiced_ms = self._ms(overlap.last_voiced - overlap.first_voiced)
        sounding = iterator.speaking and not iterator.in_silence
        silent_ms = 0 if sounding else self._ms(iterator.position - overlap.last_voiced)
        silent_ms = max(silent_ms, quiet_ms)
        step = overlap.step(voiced_ms, silent_ms, time.perf_counter())
        if step is Step.PROBE:
            heard = Overheard()
            overlap.probing(heard, voiced_ms)
            audio = overlap.audio_to_transcribe(iterator.position, int(OVERHEARD_TAIL_S * self.sample_rate))
            yield OverheardSpeech(audio=audio, sample_rate=self.sample_rate, heard=heard, session=session)
            return
        if step is Step.WAIT:
            return
        stream.overlap = None
        turn = overlap.turn
        if overlap.measured_windows:
            logger.debug("turn %d: the sound's echo: %s", turn.number, overlap.echo_summary())
        if step is Step.RESUME:
            logger.info("turn %d: the sound over the reply was %s; it goes on", turn.number, overlap.reason)
            session.resume_reply(turn)
            if iterator.speaking:
                iterator.discard()  # no turn of its own
            return
        logger.info("turn %d: the sound over the reply is an interruption (%s)", turn.number, overlap.reason)
        stream.announced = True
        session.observer.speech_started(session, overlap.onset_ms)
        self._interrupt(session, stream)
        if overlap.held is None and window is None:
            overlap.held = iterator.flush()  # its audio stopped coming: the speech ends here, as at the input's end
        if overlap.held is not None:
            yield from self._segment(session, stream, overlap.held)
        elif not iterator.speaking:
            stream.announced = False
            session.observer.speech_stopped(session, self._ms(overlap.last_voiced))  # too short for a turn ("Stop.")

    def _forget_overlap(self, session: Session, stream: VADStream) -> None:
        """The input ended or was cleared while a sound over the reply was
        judged: the reply goes on, and the sound is nobody's turn."""
        if stream.overlap is not None:
            stream.overlap.turn.playback.resume()
            stream.iterator.discard()
        stream.overlap = None

    def _habits(self, session: Session) -> PauseHabits:
        """How this speaker pauses inside turns (kept apart from the VAD's
        stream, which a change of settings starts afresh)."""
        return session.state("pause_habits", PauseHabits)

    def _learn_pauses(self, session: Session, stream: VADStream, utterance: Utterance | None) -> None:
        """A pause the speaker went on after is one of their pauses inside a turn."""
        iterator = stream.iterator
        if stream.overlap is not None:
            stream.trailing = 0  # a sound over the reply says nothing of how the user pauses
            return
        if utterance is None and iterator.speaking and not iterator.in_silence and stream.trailing:
            self._habits(session).observe(self._ms(stream.trailing))
        stream.trailing = iterator.trailing_silence_samples

    def _fit_silence_to_evidence(self, session: Session, stream: VADStream) -> None:
        """The silence that ends this pause's turn.  On evidence: what the
        decision needs, given the words, the voice and the speaker's habits
        known now.  With a fixed silence: longer when the early transcript
        stops mid-sentence ("What is the capital city of...") or Smart Turn
        hears an unfinished voice; shorter when Smart Turn hears a finished
        one; the usual silence otherwise."""
        iterator = stream.iterator
        if stream.base_silence is None:
            stream.base_silence = iterator.min_silence_samples
        if not iterator.in_silence or stream.overlap is not None or stream.fixed_silence:
            return  # only a pause can end a turn; a sound over the reply waits for its verdict
        turn = stream.speculative_turn
        transcript = turn.transcript if turn is not None and "transcript_ready" in turn.marks else None
        if stream.decision is not None:
            words = words_evidence(transcript, turn.language if turn is not None else None)
            voice = self._smart_turn_probability(stream, self.speculate_after or 2 * self.window)
            needed = stream.decision.silence_needed_ms(words, voice, self._habits(session))
            if words is Words.UNFINISHED:  # dangling words wait at least as long as they always did
                needed = max(needed, stream.unfinished_silence_ms or self.unfinished_silence_ms)
            wanted = self._samples(needed)
            detail = f"words: {words.value}, voice finished: {'-' if voice is None else f'{voice:.2f}'}"
        else:
            words_unfinished = transcript is not None and looks_unfinished(transcript, turn.language)
            probability = self._smart_turn_probability(
                stream, self._samples(self.finished_silence_ms) - self.window, when_due=False
            )
            voice = None if probability is None else probability > 0.5
            unfinished = stream.unfinished_silence_ms or self.unfinished_silence_ms
            finished = stream.finished_silence_ms or self.finished_silence_ms
            if words_unfinished or voice is False:
                wanted = max(stream.base_silence, self._samples(unfinished))
            elif voice is True:
                wanted = min(stream.base_silence, self._samples(finished))
            else:
                wanted = stream.base_silence
            detail = f"words unfinished: {words_unfinished}, voice finished: {voice}"
        if wanted != iterator.min_silence_samples:
            logger.debug("end-of-turn silence %d ms (%s)", wanted * 1000 // self.sample_rate, detail)
            iterator.min_silence_samples = wanted

    def _samples(self, ms: float) -> int:
        return int(ms * self.sample_rate / 1000)

    def _smart_turn_probability(self, stream: VADStream, ask_at: int, when_due: bool = True) -> float | None:
        """Smart Turn's probability that the voice sounds finished, for the
        current pause: asked once, when the pause is `ask_at` samples old;
        None without the model, before that, and (`when_due`) before its
        answer is due: the evidence decision uses it only from the stream
        position the call would have reached live, however fast the audio
        comes (`--turn_detector smart-turn` uses it at once, as it always did)."""
        iterator = stream.iterator
        if self.smart_turn is None:
            return None
        key = self._current_key(stream)
        if stream.smart_turn_key != key:
            if iterator.trailing_silence_samples < ask_at:
                return None
            utterance = iterator.peek()
            if utterance is None:
                return None
            began = time.perf_counter()
            stream.smart_turn_probability = self.smart_turn.finished_probability(utterance.audio)
            took = self._samples((time.perf_counter() - began) * 1000)
            stream.smart_turn_key, stream.smart_turn_due = key, iterator.position + took
        due = iterator.position >= stream.smart_turn_due or not when_due
        return stream.smart_turn_probability if due else None

    def _current_key(self, stream: VADStream) -> tuple[int, int] | None:
        if not stream.iterator.speaking:
            return None
        return (stream.iterator.speech_start, stream.iterator.last_voiced_end)

    def _cancel_speculation(self, stream: VADStream) -> None:
        if stream.speculative_turn is not None:
            logger.debug("turn %d: speech resumed, speculative reply dropped", stream.speculative_turn.turn_id)
            stream.speculative_turn.cancel()
            stream.speculative_turn = None
            stream.cancelled_speculations += 1

    def _should_speculate(self, stream: VADStream) -> bool:
        return self.speculate_after is not None and stream.iterator.trailing_silence_samples >= self.speculate_after

    def _should_report_progress(self, stream: VADStream) -> bool:
        """Every `progress_every` samples of speech, while the user is speaking
        (not in a pause: that is the speculation's)."""
        iterator = stream.iterator
        if self.progress_every is None or not iterator.speaking or iterator.in_silence:
            return False
        start, sent_at = stream.progress_sent
        since = sent_at if start == iterator.speech_start else iterator.speech_start
        return iterator.position - since >= self.progress_every

    def _progress(self, session: Session, stream: VADStream) -> Iterator[SpeechProgress]:
        stream.progress_sent = (stream.iterator.speech_start, stream.iterator.position)
        utterance = stream.iterator.peek()
        if utterance is not None:
            key = (utterance.start_sample, utterance.end_sample)
            yield SpeechProgress(audio=utterance.audio, sample_rate=self.sample_rate, speech_key=key, session=session)

    def _new_turn(self, session: Session, speech_ms: float, speculative: bool = False) -> Turn:
        detection = session.settings.turn_detection
        return Turn(
            speech_duration_s=speech_ms / 1000.0,
            session=session,
            speculative=speculative,
            respond=detection is not None and detection.create_response,
        )

    def _provisional_segment(self, session: Session, stream: VADStream) -> Iterator[SpeechSegment]:
        iterator = stream.iterator
        utterance = iterator.peek()
        if utterance is None:
            return
        key = (utterance.start_sample, utterance.end_sample)
        if key == stream.speculated:
            return  # already sent for this pause
        stream.speculated = key
        # Whisper drops or mangles the last word when the audio stops 100 ms
        # after it; the final segment has up to speech_pad_ms of real silence
        # there, so the provisional one gets the same length of digital silence
        # (measured on the benchmark files: WER 10.1% unpadded, 8.6% padded,
        # 8.1% on the final segments).
        missing = iterator.pad_samples - iterator.trailing_silence_samples
        audio = utterance.audio
        if missing > 0:
            audio = np.concatenate([audio, np.zeros(missing, dtype=np.float32)])
        turn = None
        if self.speculative_reply:
            turn = self._new_turn(session, utterance.speech_ms, speculative=True)
            stream.speculative_turn = turn
        yield SpeechSegment(
            audio=audio,
            sample_rate=self.sample_rate,
            turn=turn,
            provisional=True,
            speech_key=key,
            session=session,
        )

    def _segment(
        self, session: Session, stream: VADStream, utterance: Utterance, waited_ms: float | None = None
    ) -> Iterator[SpeechSegment]:
        """Hand the utterance on as the end of a turn.  `waited_ms`: the
        silence waited for where it was not in the stream (its audio stopped
        coming)."""
        key = (utterance.start_sample, utterance.end_sample)
        if key != stream.speculated:
            self._cancel_speculation(stream)  # speculated on an earlier pause, not on this end
        turn, stream.speculative_turn = stream.speculative_turn, None
        if turn is None:
            turn = self._new_turn(session, utterance.speech_ms)
        ended = self._chunk_of(stream, utterance.end_sample)
        if ended is not None:
            turn.mark("speech_end", ended[1])  # when the chunk with the last voiced sample arrived
        in_stream_ms = float(self._ms(stream.iterator.position - utterance.end_sample))
        turn.silence_waited_ms = in_stream_ms if waited_ms is None else in_stream_ms + waited_ms
        stream.announced = False
        session.observer.speech_stopped(session, self._ms(utterance.end_sample))
        yield from self._hand_on(session, stream, turn, utterance, key)

    def _hand_on(
        self, session: Session, stream: VADStream, turn: Turn, utterance: Utterance, key: tuple[int, int]
    ) -> Iterator[SpeechSegment]:
        # The floor goes to the assistant before the turn is confirmed: a sink
        # woken by the confirmation gives it back, and must be the last to act.
        if self.yield_floor_at_end_of_turn:
            self.should_listen.clear()
        turn.confirm()  # marks end_of_turn
        turn.speculations_cancelled, stream.cancelled_speculations = stream.cancelled_speculations, 0
        stream.last_turn = (turn, utterance)
        if turn.respond:
            session.active_turn = turn
        session.observer.input_committed(turn)
        logger.debug("turn %d: %.0f ms of speech", turn.turn_id, utterance.speech_ms)
        yield SpeechSegment(
            audio=utterance.audio, sample_rate=self.sample_rate, turn=turn, speech_key=key, session=session
        )

    def _commit(self, session: Session, stream: VADStream, turn: Turn | None) -> Iterator[SpeechSegment]:
        """The client ends the turn itself (input_audio_buffer.commit)."""
        if session.settings.turn_detection is None:
            audio = np.concatenate(stream.manual_audio) if stream.manual_audio else np.zeros(0, np.float32)
            stream.manual_audio.clear()
            stream.overflowed = False
            utterance = Utterance(audio=audio, speech_ms=len(audio) * 1000.0 / self.sample_rate, end_sample=0)
        else:
            self._cancel_speculation(stream)
            utterance = stream.iterator.flush()
            if utterance is None:
                utterance = Utterance(audio=np.zeros(0, np.float32), speech_ms=0.0, end_sample=0)
        if len(utterance.audio) * 1000 < MIN_COMMIT_MS * self.sample_rate:
            seconds = len(utterance.audio) / self.sample_rate
            session.observer.error(
                session,
                "input_audio_buffer_commit_empty",
                f"buffer too small to commit: {seconds * 1000:.0f} ms of audio, at least {MIN_COMMIT_MS} ms needed",
            )
            return
        if turn is None:
            turn = self._new_turn(session, utterance.speech_ms)
        turn.mark("speech_end")
        yield from self._hand_on(session, stream, turn, utterance, (utterance.start_sample, utterance.end_sample))

    def _keep_uncommitted(self, session: Session, stream: VADStream, audio: np.ndarray) -> None:
        stream.manual_audio.append(audio)
        held = sum(len(piece) for piece in stream.manual_audio)
        if held <= MAX_UNCOMMITTED_S * self.sample_rate:
            return
        while held > MAX_UNCOMMITTED_S * self.sample_rate:
            held -= len(stream.manual_audio.pop(0))
        if stream.overflowed:
            return  # said once until the next commit or clear
        stream.overflowed = True
        session.observer.error(
            session,
            "input_audio_buffer_full",
            f"over {MAX_UNCOMMITTED_S} s of audio appended without a commit: the oldest audio was dropped",
        )

    def _clear(self, session: Session, stream: VADStream) -> None:
        stream.manual_audio.clear()
        stream.overflowed = False
        stream.pending = np.zeros(0, dtype=np.float32)
        stream.iterator.discard()
        self._cancel_speculation(stream)
        self._forget_overlap(session, stream)
        session.observer.input_cleared(session)

    def _wall_gap(self, stream: VADStream, utterance: Utterance) -> int:
        """How long (in samples) the client sent nothing between the chunk
        with the utterance's last voiced audio and the chunk being heard now:
        the wall-clock time between their arrivals beyond the audio sent in
        between.  A client streaming in real time has none (its pause is in
        the stream already); one that stopped sending (a turn ended by its
        audio stopping, then a second push-to-talk: two turns, not one) has
        the time it was silent.  0 where it is not known."""
        ended = self._chunk_of(stream, utterance.end_sample)
        if ended is None or not stream.arrivals:
            return 0
        (ended_end, ended_at), (resumed_end, resumed_at) = ended, stream.arrivals[-1]
        unsent_s = (resumed_at - ended_at) - (resumed_end - ended_end) / self.sample_rate
        return int(max(0.0, unsent_s) * self.sample_rate)

    def _chunk_of(self, stream: VADStream, sample_position: int) -> tuple[int, float] | None:
        """(end position, arrival time) of the chunk holding `sample_position`."""
        for end, received_at in stream.arrivals:
            if end >= sample_position:
                return end, received_at
        return None
