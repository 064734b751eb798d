"""Sounds over the reply: backchannels and noises resume it, real interruptions stop it.

The judgement's logic alone first (no models, scripted time), then the real
VAD and the real STT on real audio: Piper's voice and the interruption set's
recorded and synthesized sounds over a reply that is playing.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from audio.pcm import load_audio
from conversation.playback import PlaybackLog
from conversation.session import Session, SessionSettings
from conversation.turn import Turn
from tests.conftest import QUESTIONS, REPO
from utils.messages import Overheard
from VAD.overlap import Heard, Overlap, OverlapRules, Step, classify, words_of

RATE = 16000
INTERRUPTIONS = REPO / "tests" / "data" / "interruptions"


# --- logic, no models -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "heard"),
    [
        ("Uh-huh.", Heard.BACKCHANNEL), ("Mm-hmm.", Heard.BACKCHANNEL), ("Yeah.", Heard.BACKCHANNEL),
        ("Okay.", Heard.BACKCHANNEL), ("Right.", Heard.BACKCHANNEL), ("I see.", Heard.BACKCHANNEL),
        ("Oh, I see.", Heard.BACKCHANNEL), ("Yeah, yeah, right.", Heard.BACKCHANNEL), ("OK", Heard.BACKCHANNEL),
        ("Ha ha ha!", Heard.BACKCHANNEL), ("Hmm", Heard.BACKCHANNEL),
        ("M.", Heard.BACKCHANNEL), ("M H M", Heard.BACKCHANNEL), ("Mmm-hmm.", Heard.BACKCHANNEL),  # hums
        ("Him.", Heard.WORDS), ("Mom", Heard.WORDS),
        ("", Heard.NOTHING), ("(coughing)", Heard.NOTHING), ("[LAUGHTER]", Heard.NOTHING), ("*cough*", Heard.NOTHING),
        ("♪", Heard.NOTHING), ("...", Heard.NOTHING),
        ("Wait.", Heard.WORDS), ("Stop!", Heard.WORDS), ("No, I meant Paris.", Heard.WORDS),
        ("What is the capital of France?", Heard.WORDS), ("Yeah, but what about Spain?", Heard.WORDS),
        ("I", Heard.WORDS), ("Okay, stop.", Heard.WORDS), ("Hold on", Heard.WORDS),
        # A synthesized "mm-hmm" as Whisper base heard it: a hum and one word, or the hum's cut-off tail.
        ("M M Thun.", Heard.BACKCHANNEL), ("M.M. Van", Heard.BACKCHANNEL), ("mm film", Heard.BACKCHANNEL),
        ("MMI.", Heard.BACKCHANNEL),
        # After a hum, a word that takes the floor, or more than one word, is the user's.
        ("Mm, no.", Heard.WORDS), ("Hmm, wait", Heard.WORDS), ("Hm, what?", Heard.WORDS),
        ("Hmm, tell me more", Heard.WORDS), ("Emma.", Heard.WORDS),
    ],
)  # fmt: skip
def test_what_a_transcript_of_a_sound_over_the_reply_amounts_to(text, heard):
    assert classify(text) is heard


def test_text_whisper_itself_doubts_is_no_words():
    assert classify("Thank you.", likely_speech=False) is Heard.NOTHING
    assert classify("Stop.", likely_speech=False) is Heard.NOTHING
    assert words_of("Uh-huh, I'm (laughs) fine") == ["uh", "huh", "i'm", "fine"]


def heard(text: str, likely_speech: bool = True) -> Overheard:
    result = Overheard()
    result.answer(text, likely_speech)
    return result


def overlap() -> Overlap:
    return Overlap(Turn(), onset_ms=1000, started_at=0.0, rules=OverlapRules(timeout_ms=1500))


def test_a_backchannel_is_judged_once_it_is_over_and_its_words_are_known():
    judging = overlap()
    assert judging.step(voiced_ms=64, silent_ms=0, now=0.06) is Step.WAIT
    assert judging.step(voiced_ms=160, silent_ms=0, now=0.16) is Step.PROBE
    judging.probing(Overheard(), 160)
    assert judging.step(voiced_ms=320, silent_ms=0, now=0.3) is Step.WAIT  # one transcription at a time
    judging.heard.answer("Uh", True)
    assert judging.step(voiced_ms=350, silent_ms=96, now=0.4) is Step.WAIT  # "uh" so far, still sounding
    assert judging.step(voiced_ms=350, silent_ms=160, now=0.45) is Step.PROBE  # over: hear all of it
    judging.probing(heard("Uh-huh."), 350)
    assert judging.step(voiced_ms=350, silent_ms=192, now=0.6) is Step.RESUME
    assert judging.step(voiced_ms=350, silent_ms=500, now=0.9) is Step.RESUME  # a verdict is final
    assert "backchannel" in judging.reason


def test_words_that_are_no_backchannel_interrupt_at_once_even_while_the_sound_goes_on():
    judging = overlap()
    judging.probing(heard("Wait, I"), 240)
    assert judging.step(voiced_ms=300, silent_ms=0, now=0.3) is Step.INTERRUPT
    short = overlap()
    short.probing(heard("No."), 150)
    assert short.step(voiced_ms=150, silent_ms=32, now=0.2) is Step.WAIT  # not past the guard, not over
    assert short.step(voiced_ms=150, silent_ms=160, now=0.35) is Step.INTERRUPT  # over: "No." was said


def test_a_fragment_of_a_backchannel_heard_while_it_goes_on_stops_nothing():
    """A transcription of a sound cut off mid-way may end in a fragment that
    is no backchannel ("I" of "I see", "Emma." of "mm-hmm"): such a last word
    only counts once another word follows it, the next transcription says it
    again, or the sound is over."""
    i_see = overlap()
    i_see.probing(heard("I"), 160)
    assert i_see.step(voiced_ms=250, silent_ms=0, now=0.3) is Step.WAIT  # not "I ..." yet
    assert i_see.step(voiced_ms=260, silent_ms=0, now=0.32) is Step.PROBE  # heard again soon
    i_see.probing(heard("I see."), 260)
    assert i_see.step(voiced_ms=300, silent_ms=160, now=0.6) is Step.PROBE  # over: hear all of it
    i_see.probing(heard("I see."), 300)
    assert i_see.step(voiced_ms=300, silent_ms=192, now=0.7) is Step.RESUME
    fragment = overlap()
    fragment.probing(heard("Emma."), 160)
    assert fragment.step(voiced_ms=250, silent_ms=0, now=0.3) is Step.WAIT
    fragment.probing(heard("M M"), 300)
    assert fragment.step(voiced_ms=300, silent_ms=160, now=0.6) is Step.RESUME


def test_a_word_said_again_by_the_next_transcription_or_heard_whole_interrupts():
    again = overlap()
    again.probing(heard("Wait."), 160)
    assert again.step(voiced_ms=250, silent_ms=0, now=0.3) is Step.WAIT
    again.probing(heard("Wait, wait"), 260)  # "wait" said again, and followed by a word
    assert again.step(voiced_ms=280, silent_ms=0, now=0.4) is Step.INTERRUPT
    repeated = overlap()
    repeated.probing(heard("Sorry"), 160)
    repeated.probing(heard("Sorry."), 260)
    assert repeated.step(voiced_ms=280, silent_ms=0, now=0.4) is Step.INTERRUPT
    whole = overlap()
    whole.probing(heard("Spell."), 160)  # "Stop." cut off
    assert whole.step(voiced_ms=250, silent_ms=0, now=0.3) is Step.WAIT
    whole.probing(heard("Stop."), 300)
    assert whole.step(voiced_ms=300, silent_ms=100, now=0.5) is Step.WAIT  # a different word, not over
    assert whole.step(voiced_ms=300, silent_ms=160, now=0.55) is Step.INTERRUPT  # over, and heard whole


def test_a_lone_word_that_takes_no_floor_resumes_and_a_floor_word_stops():
    """Whisper base heard a spoken "right" over a reply as "Brie." (three
    times in the interruption set) and two knocks as "you": one word, none
    that takes the floor, and the sound over.  "Stop." or "Sorry?" alone still
    stop it, and a word followed by more words is the user's."""
    for text in ("Brie.", "Hi.", "you"):
        judging = overlap()
        judging.probing(heard(text), 300)
        assert judging.step(voiced_ms=300, silent_ms=160, now=0.5) is Step.RESUME, text
        assert "lone word" in judging.reason
    for text in ("Stop.", "Sorry?", "Nee.", "Počkej!", "Brie, wait"):
        judging = overlap()
        judging.probing(heard(text), 300)
        assert judging.step(voiced_ms=300, silent_ms=160, now=0.5) is Step.INTERRUPT, text
    going_on = overlap()
    going_on.probing(heard("Please"), 240)  # "Please wait while I connect your call." cut off
    assert going_on.step(voiced_ms=300, silent_ms=0, now=0.3) is Step.WAIT
    going_on.probing(heard("Please wait"), 480)
    assert going_on.step(voiced_ms=500, silent_ms=0, now=0.6) is Step.INTERRUPT


def test_a_lone_word_through_an_echo_canceller_still_stops_the_reply():
    """In local mode a real "Stop." came out of the echo canceller as
    "Scott." or "Start.": where the mic measured the reply's echo, a lone word
    is taken at its word."""
    judging = overlap()
    for _ in range(4):  # voiced windows measured, little of them echo
        judging.hear(np.zeros(512, np.float32), last_voiced=judging.last_voiced + 512, echo_leak=0.05)
    judging.probing(heard("Scott."), 300)
    assert judging.step(voiced_ms=300, silent_ms=160, now=0.5) is Step.INTERRUPT


def test_a_noise_resumes_and_a_backchannel_that_goes_on_into_words_interrupts():
    cough = overlap()
    cough.probing(heard("you", likely_speech=False), 300)
    assert cough.step(voiced_ms=300, silent_ms=160, now=0.5) is Step.RESUME
    going_on = overlap()
    going_on.probing(heard("Yeah,"), 200)
    assert going_on.step(voiced_ms=500, silent_ms=0, now=0.5) is Step.PROBE  # more to hear
    going_on.probing(heard("Yeah, but what about"), 500)
    assert going_on.step(voiced_ms=600, silent_ms=0, now=0.7) is Step.INTERRUPT


def test_the_pause_never_outlasts_the_timeout():
    still = overlap()
    still.probing(heard("Ha ha"), 300)
    assert still.step(voiced_ms=1400, silent_ms=0, now=1.4) is Step.PROBE
    still.probing(Overheard(), 1400)  # the STT is slow
    assert still.step(voiced_ms=1500, silent_ms=0, now=1.5) is Step.INTERRUPT  # the user holds the floor
    quiet = overlap()
    quiet.probing(Overheard(), 200)  # never answered
    assert quiet.step(voiced_ms=200, silent_ms=1000, now=1.5) is Step.WAIT  # the reply plays on; words awaited
    assert quiet.step(voiced_ms=200, silent_ms=3000, now=4.5) is Step.RESUME  # three timeouts: no words


def test_words_that_come_after_the_timeout_still_decide():
    """On a busy machine the transcription of a question with a pause in it
    came after the timeout: it was resumed over, and the question lost."""
    late = overlap()
    late.probing(Overheard(), 600)  # asked while the question went on
    assert late.step(voiced_ms=900, silent_ms=400, now=1.6) is Step.WAIT
    late.heard.answer("What is the", True)
    assert late.step(voiced_ms=900, silent_ms=450, now=2.2) is Step.INTERRUPT
    unheard = overlap()
    unheard.probing(heard("Uh"), 200)  # answered, but of less than was said
    assert unheard.step(voiced_ms=900, silent_ms=400, now=1.6) is Step.PROBE  # hear all of it first
    noise = overlap()
    noise.probing(Overheard(), 300)
    assert noise.step(voiced_ms=300, silent_ms=400, now=1.6) is Step.WAIT
    noise.heard.answer("you", False)
    assert noise.step(voiced_ms=300, silent_ms=450, now=2.0) is Step.RESUME  # heard whole: no words


def sounding(judging: Overlap, windows: int, echo_leak: float | None) -> None:
    for _ in range(windows):
        judging.hear(np.zeros(512, np.float32), last_voiced=judging.last_voiced + 512, echo_leak=echo_leak)


def test_words_whisper_makes_of_the_replys_own_echo_resume_it():
    """Local mode: the echo canceller let the reply's voice through, and
    Whisper heard words in it ("I'm dead." for "The capital of France").
    Most of the sound's windows were its echo: no user said them."""
    echo = overlap()
    sounding(echo, 10, echo_leak=0.6)
    echo.probing(heard("I'm dead."), 320)
    assert echo.step(voiced_ms=320, silent_ms=0, now=0.4) is Step.WAIT  # not "settled words" of a user
    assert echo.step(voiced_ms=320, silent_ms=160, now=0.5) is Step.RESUME  # over: its own voice
    assert "its own voice" in echo.reason and "10 of 10 measured" in echo.reason
    user = overlap()  # the same words, where the canceller left nothing of the reply
    sounding(user, 10, echo_leak=0.05)
    user.probing(heard("I'm dead."), 320)
    assert user.step(voiced_ms=320, silent_ms=160, now=0.5) is Step.INTERRUPT
    unknown = overlap()  # no measure (the other modes): words decide, as ever
    sounding(unknown, 10, echo_leak=None)
    unknown.probing(heard("I'm dead."), 320)
    assert unknown.step(voiced_ms=320, silent_ms=160, now=0.5) is Step.INTERRUPT
    mixed = overlap()  # the user talks on once the leak is over: a user's sound
    sounding(mixed, 4, echo_leak=0.6)
    sounding(mixed, 8, echo_leak=0.1)
    mixed.probing(heard("I'm dead. What is the capital"), 380)
    assert mixed.step(voiced_ms=380, silent_ms=0, now=0.45) is Step.INTERRUPT


def test_a_sound_that_goes_on_after_the_paused_replys_echo_is_a_users():
    """The reply pauses at the sound's start, so its echo stops a moment
    later (the mic then measures nothing: the speaker is silent).  A sound
    that began over a leak but goes on after it is a user talking over the
    leak, and it interrupts; so does one still sounding at the timeout."""
    talking_on = overlap()
    sounding(talking_on, 10, echo_leak=0.6)
    sounding(talking_on, 8, echo_leak=None)  # the reply paused, its echo over: still voiced
    talking_on.probing(heard("I'm dead. Wait, what"), 560)
    assert talking_on.step(voiced_ms=576, silent_ms=160, now=0.7) is Step.INTERRUPT
    short_tail = overlap()
    sounding(short_tail, 10, echo_leak=0.6)
    sounding(short_tail, 3, echo_leak=None)  # the VAD's hangover as the echo stops
    short_tail.probing(heard("I'm dead."), 416)
    assert short_tail.step(voiced_ms=416, silent_ms=160, now=0.7) is Step.RESUME
    still = overlap()
    sounding(still, 10, echo_leak=0.6)
    still.probing(heard("I'm"), 320)
    assert still.step(voiced_ms=1400, silent_ms=0, now=1.5) is Step.INTERRUPT


def test_a_paused_reply_resumes_by_itself_at_its_deadline():
    log = PlaybackLog()
    log.pause(1.0, now=10.0)
    assert log.paused(now=10.5)
    assert not log.paused(now=11.2)
    assert log.pauses == 1 and log.paused_s == pytest.approx(1.0)
    log.pause(1.0, now=20.0)
    log.resume(now=20.25)
    assert not log.paused(now=20.3) and log.paused_s == pytest.approx(1.25)


def test_the_session_pauses_only_an_audible_reply_and_resumes_it_whole():
    session = Session()
    turn = Turn(session=session)
    session.active_turn = turn
    assert session.pause_reply(1.0) is None  # nothing audible yet
    assert turn.begin_playback()
    session.chat.add_user("Recommend a book.", turn_id=turn.turn_id)
    turn.playback.add("You could read Dune, a long novel.", RATE * 2, RATE)
    assert session.pause_reply(1.0) is turn and turn.playback.paused()
    session.resume_reply(turn)
    assert not turn.playback.paused() and not turn.stale and turn.backchannels == 1
    session.chat.add_assistant("You could read Dune, a long novel.", turn_id=turn.turn_id)
    assert session.chat.messages()[-1]["content"] == "You could read Dune, a long novel."


# --- the real VAD and STT on real audio ---------------------------------------------------------
def playing_reply(session: Session) -> Turn:
    """A reply that has been playing for a second, with ten more to go."""
    turn = Turn(session=session)
    session.active_turn = turn
    assert turn.begin_playback()
    turn.playback.add("Paris is the capital of France. It is known for the Eiffel Tower.", RATE * 11, RATE,
                      when=time.perf_counter() - 1.0)  # fmt: skip
    return turn


def over_the_reply(sound: np.ndarray, stt_handler, echo_leak: float | None = None, **settings) -> tuple[Turn, list]:
    """`sound` heard over a playing reply by the real VAD, whose questions
    the real STT answers as they come; returns the reply's turn and the turns
    the VAD handed on.  `echo_leak`: what the mic measured of the reply's
    echo in the sound's audio (local mode; None elsewhere)."""
    from tests.conftest import make_handler
    from utils.messages import AudioChunk, OverheardSpeech, SpeechSegment
    from VAD.vad_handler import VADHandler

    # A generous timeout: the words decide here, not a slow machine's clock.
    session = Session(SessionSettings(barge_in=True, false_interruption_timeout_ms=60000, **settings))
    vad = make_handler(VADHandler, should_listen=threading.Event(), session=session, hears_overlaps=True)
    turn = playing_reply(session)
    audio = np.concatenate([np.zeros(RATE // 2, np.int16), sound, np.zeros(RATE * 2, np.int16)])
    handed_on = []
    for start in range(0, len(audio), 512):
        block = audio[start : start + 512]
        # What the mic measured of the sound's audio (its meter looks at a quarter second at a
        # time); nothing of the silence around it.
        leak = echo_leak if RATE // 2 <= start < RATE // 2 + len(sound) else None
        for message in vad.process(AudioChunk(samples=block, session=session, echo_leak=leak)):
            if isinstance(message, OverheardSpeech):
                assert turn.playback.paused()  # held back while the sound is judged
                list(stt_handler.process(message))
            elif isinstance(message, SpeechSegment) and not message.provisional:
                handed_on.append(message.turn)
    return turn, handed_on


def sound_of(name: str) -> np.ndarray:
    return load_audio(INTERRUPTIONS / name)


@pytest.mark.parametrize("name", ["bc_piper_00.flac", "bc_piper_03.flac", "bc_piper_05.flac", "bc_human_00.flac"])
def test_a_backchannel_over_the_reply_pauses_it_then_it_goes_on_whole(name, stt_handler):
    turn, handed_on = over_the_reply(sound_of(name), stt_handler)
    assert not turn.stale and not turn.interrupted, turn.heard_reply
    assert turn.backchannels == 1 and turn.playback.pauses == 1 and not turn.playback.paused()
    assert handed_on == []  # no turn of its own: nothing to answer


@pytest.mark.parametrize("name", ["noise_cough_double.flac", "noise_laugh_short.flac"])
def test_a_cough_or_a_laugh_over_the_reply_is_no_interruption(name, stt_handler):
    turn, handed_on = over_the_reply(sound_of(name), stt_handler)
    assert not turn.stale and not turn.interrupted
    assert handed_on == []


@pytest.mark.parametrize("name", ["short_piper_01.flac", "short_human_whole_02.flac"])
def test_stop_over_the_reply_stops_it(name, stt_handler):
    turn, _ = over_the_reply(sound_of(name), stt_handler)
    assert turn.stale and turn.interrupted


@pytest.mark.parametrize(("name", "interrupted"), [("short_piper_01.flac", True), ("bc_piper_00.flac", False)])
def test_a_sound_whose_audio_stops_coming_is_judged_all_the_same(name, interrupted, stt_handler):
    """A client that stops sending right after the sound (a muted mic,
    push-to-talk) on a busy machine, whose STT answers only after the audio
    stopped: the VAD judges the sound on its idle steps, the time without
    audio counting as silence.  Before, no verdict came without more audio
    (seen on one shared core: "Stop." got no speech_started), and the reply
    stayed paused until the sink's deadline, then played on."""
    from tests.conftest import make_handler
    from utils.messages import AudioChunk, OverheardSpeech
    from VAD.vad_handler import AUDIO_GONE_S, VADHandler

    session = Session(SessionSettings(barge_in=True, false_interruption_timeout_ms=60000, audio_gaps_are_silence=True))
    vad = make_handler(VADHandler, should_listen=threading.Event(), session=session, hears_overlaps=True)
    turn = playing_reply(session)
    sound = sound_of(name)
    sound = sound[: np.flatnonzero(np.abs(sound) > 500)[-1]]  # the client stops as the sound does
    audio = np.concatenate([np.zeros(RATE // 2, np.int16), sound])
    asked = []  # the STT is busy: it answers once the audio has stopped
    for start in range(0, len(audio), 512):
        asked += vad.process(AudioChunk(samples=audio[start : start + 512], session=session))
    assert any(isinstance(message, OverheardSpeech) for message in asked)
    assert turn.playback.paused() and not turn.stale  # no verdict yet
    for message in asked:
        if isinstance(message, OverheardSpeech):
            list(stt_handler.process(message))
    time.sleep(AUDIO_GONE_S)
    vad.queue_in.put(AudioChunk(samples=np.zeros(512, np.int16), session=session))
    vad.idle()  # its audio waits in the queue (the stage is behind): not gone, no verdict
    assert vad.queue_out.empty() and turn.playback.paused() and not turn.stale
    vad.queue_in.get()
    for _ in range(20):  # the idle steps: decide, or ask the STT again and hear its answer
        vad.idle()
        while not vad.queue_out.empty():
            message = vad.queue_out.get()
            if isinstance(message, OverheardSpeech):
                list(stt_handler.process(message))
        if turn.stale or not turn.playback.paused():
            break  # a verdict: stopped, or playing on
    assert turn.interrupted is interrupted and turn.stale is interrupted
    assert interrupted or not turn.playback.paused()
    assert not vad.stream_for(session).iterator.speaking  # the speech ended with its audio: no turn left open


def test_audio_sent_seconds_at_a_time_is_not_gone_between_its_chunks(stt_handler):
    """A client may append seconds of audio at a time: the gap before its next
    chunk is no silence, and a sound over the reply is not judged over in it."""
    from tests.conftest import make_handler
    from utils.messages import AudioChunk, OverheardSpeech
    from VAD.vad_handler import AUDIO_GONE_S, VADHandler

    session = Session(SessionSettings(barge_in=True, false_interruption_timeout_ms=60000, audio_gaps_are_silence=True))
    vad = make_handler(VADHandler, should_listen=threading.Event(), session=session, hears_overlaps=True)
    turn = playing_reply(session)
    speech = load_audio(QUESTIONS / "q01.wav")
    # One chunk of 4 s: 3.5 s of quiet, then the sound's first half second (long enough that the
    # STT's answers below and the wait fit in it on a busy machine).
    chunk = np.concatenate([np.zeros(RATE * 7 // 2, np.int16), speech[: RATE // 2]])
    asked = list(vad.process(AudioChunk(samples=chunk, session=session)))
    assert vad.stream_for(session).overlap is not None and turn.playback.paused()
    for message in asked:  # what it asked of the STT is answered
        if isinstance(message, OverheardSpeech):
            list(stt_handler.process(message))
    time.sleep(AUDIO_GONE_S + 0.2)  # far less than the chunk's 4 s: its next chunk is not due yet
    vad.idle()
    # Taken for silence, the sound would be over and heard again whole (or judged).
    assert vad.queue_out.empty() and vad.stream_for(session).overlap is not None


def test_a_quiet_session_is_judged_while_another_keeps_the_stage_busy(stt_handler):
    """Session B's client stops sending right after "Stop."; session A goes on
    streaming, so the stage is never idle: B's sound is judged between A's
    chunks (the stage's next_message), not left paused until A stops."""
    from tests.conftest import make_handler
    from utils.messages import AudioChunk, OverheardSpeech
    from VAD.vad_handler import AUDIO_GONE_S, VADHandler

    a, b = (
        Session(SessionSettings(barge_in=True, false_interruption_timeout_ms=60000, audio_gaps_are_silence=True))
        for _ in range(2)
    )
    vad = make_handler(VADHandler, should_listen=threading.Event(), session=a, hears_overlaps=True)
    turn = playing_reply(b)
    sound = sound_of("short_piper_01.flac")
    sound = sound[: np.flatnonzero(np.abs(sound) > 500)[-1]]
    audio = np.concatenate([np.zeros(RATE // 2, np.int16), sound])
    asked = []
    for start in range(0, len(audio), 512):
        asked += vad.process(AudioChunk(samples=audio[start : start + 512], session=b))
    for message in asked:  # answered late, after B's audio stopped
        if isinstance(message, OverheardSpeech):
            list(stt_handler.process(message))
    time.sleep(AUDIO_GONE_S)
    silence = np.zeros(512, np.int16)
    for _ in range(100):  # A's chunks, one at a time, as they come
        vad.queue_in.put(AudioChunk(samples=silence, session=a))
        list(vad.process(vad.next_message()))
        while not vad.queue_out.empty():
            message = vad.queue_out.get()
            if isinstance(message, OverheardSpeech):
                list(stt_handler.process(message))
        if turn.stale:
            break
        time.sleep(0.01)
    assert turn.interrupted and turn.stale


def test_a_new_question_over_the_reply_stops_it_and_becomes_the_next_turn(stt_handler):
    turn, handed_on = over_the_reply(load_audio(QUESTIONS / "q01.wav"), stt_handler)
    assert turn.interrupted and turn.heard_reply
    assert len(handed_on) == 1 and handed_on[0] is not turn


def test_a_question_with_a_pause_judged_slowly_becomes_one_turn_with_all_of_it(stt_handler):
    """On a busy machine the sound's transcriptions come late, and the
    question's pause ends an utterance before the verdict; the rest of it
    must join that utterance, not replace it (it did: the turn kept the last
    0.8 s of "What is the capital of France?" and was heard "Blunt Rams")."""
    from tests.conftest import make_handler
    from utils.messages import AudioChunk, OverheardSpeech, SpeechSegment
    from VAD.vad_handler import VADHandler

    first, second = load_audio(QUESTIONS / "q01.wav"), load_audio(QUESTIONS / "q05.wav")
    session = Session(SessionSettings(barge_in=True, false_interruption_timeout_ms=60000))
    vad = make_handler(VADHandler, should_listen=threading.Event(), session=session, hears_overlaps=True)
    turn = playing_reply(session)
    pause = np.zeros(int(0.8 * RATE), np.int16)  # ends an utterance (the VAD's silence is 300 ms)
    audio = np.concatenate([np.zeros(RATE // 2, np.int16), first, pause, second, np.zeros(RATE * 2, np.int16)])
    late: list[OverheardSpeech] = []  # transcriptions asked, answered only once both parts are over
    segments = []
    answer_from = RATE // 2 + len(first) + len(pause) + len(second) + RATE // 2
    for start in range(0, len(audio), 512):
        for message in vad.process(AudioChunk(samples=audio[start : start + 512], session=session)):
            if isinstance(message, OverheardSpeech):
                late.append(message)
            elif isinstance(message, SpeechSegment) and not message.provisional:
                segments.append(message)
        if start >= answer_from:
            for message in late:
                list(stt_handler.process(message))
            late.clear()
    assert turn.interrupted
    assert len(segments) == 1, [len(segment.audio) / RATE for segment in segments]
    assert len(segments[0].audio) >= len(first) + len(second)
    heard = stt_handler.transcribe(segments[0].audio)[0].lower()
    assert "capital" in heard and "boiling" in heard, heard


@pytest.mark.parametrize(("echo_leak", "interrupted"), [(0.6, False), (0.05, True)])
def test_the_replys_own_echo_over_it_is_no_interruption(echo_leak, interrupted, stt_handler):
    """The real VAD and STT: the reply's own words heard back over it are
    words, but where the mic measured them as its echo they resume the reply
    and become no turn; the same audio measured as a user's stops it."""
    from piper import SynthesisConfig

    from tests.conftest import make_handler
    from TTS.piper_handler import PiperTTSHandler

    # Rendered without Piper's sampling noise: the same audio every run.
    voice = make_handler(PiperTTSHandler, voice="joe", output_sample_rate=RATE)
    voice.synthesis = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    echo = np.concatenate(list(voice.synthesize("The capital of France is Paris.")))
    turn, handed_on = over_the_reply(echo, stt_handler, echo_leak=echo_leak)
    assert turn.interrupted is interrupted and turn.stale is interrupted
    assert bool(handed_on) is interrupted
    if not interrupted:
        assert turn.playback.pauses == 1 and not turn.playback.paused()
    # Without the judgement (the seed's barge-in: speech past the guard stops the reply),
    # the guard counts only the user's speech, not the reply's own.
    unjudged, _ = over_the_reply(echo, stt_handler, echo_leak=echo_leak, resume_false_interruption=False)
    assert unjudged.interrupted is interrupted and unjudged.playback.pauses == 0


def test_without_resuming_any_speech_past_the_guard_stops_the_reply(stt_handler):
    turn, _ = over_the_reply(sound_of("bc_piper_00.flac"), stt_handler, resume_false_interruption=False)
    assert turn.interrupted and turn.playback.pauses == 0


# --- real servers -------------------------------------------------------------------------------
THREE_SENTENCES = "You are a helpful assistant. Always answer in four or five sentences."


@pytest.fixture(scope="module")
def realtime_server(tmp_path_factory):
    from benchmarks.server_process import ServerProcess
    from tests.test_realtime import KEY

    # A generous timeout, so a slow machine's transcription cannot decide for the words.
    running = ServerProcess(
        "realtime", tmp_path_factory.mktemp("overlap_rt"), "--false_interruption_timeout_ms", "4000", api_key=KEY
    )
    yield running
    assert running.stop() == 0


@pytest.mark.timing
def test_realtime_a_backchannel_is_never_announced_and_stop_is(realtime_server):
    """Over a reply the client is playing: "uh-huh" sends no speech_started
    (every client would stop playing) and gets no response of its own; the
    reply's item stays whole.  "Stop." is announced and cuts the reply."""
    from benchmarks.bargein import voiced_onset
    from benchmarks.interruptions import REALTIME_RATE, playback, ran_dry_at, realtime_arrivals
    from connections.realtime.client import connect, to_pcm24k
    from tests.test_realtime import KEY

    conversation = connect(realtime_server.port, KEY)
    try:
        conversation.wait_for("session.created", timeout=10)
        conversation.send({"type": "session.update", "session": {"type": "realtime", "instructions": THREE_SENTENCES}})
        conversation.wait_for("session.updated", timeout=10)
        conversation.speak(to_pcm24k(load_audio(QUESTIONS / "q04.wav"), RATE), silence_s=0.3)
        first = conversation.wait_for("response.output_audio.delta", timeout=90)[0]
        silence = bytes(480 * 2)
        while time.perf_counter() - first.at < 1.5:  # the user listens a while
            conversation.append(silence)
            time.sleep(0.02)
        mark = len(conversation.events)
        conversation.speak(to_pcm24k(sound_of("bc_piper_00.flac"), RATE), silence_s=4.5)  # "Uh-huh." and a wait
        assert conversation.of("input_audio_buffer.speech_started", mark) == []
        done = conversation.wait_for("response.done", timeout=120)[0].event.response
        assert done.status == "completed"
        reply_s = len(conversation.reply_audio()) / 24000
        assert len(conversation.of("response.created")) == 1  # the backchannel got no answer
        # The user hears the reply out before asking again: response.done comes
        # once it is all sent, seconds before a client playing it has played it.
        heard_out = conversation.playback(done.id).silent_at() + 0.5
        while time.perf_counter() < heard_out:
            conversation.append(silence)
            time.sleep(0.02)
        # The next reply, and "Stop." over it.
        mark = len(conversation.events)
        conversation.speak(to_pcm24k(load_audio(QUESTIONS / "q02.wav"), RATE), silence_s=0.3)
        second = conversation.wait_for("response.output_audio.delta", timeout=90, after=mark)[0]
        while time.perf_counter() - second.at < 1.0:
            conversation.append(silence)
            time.sleep(0.02)
        stop_at = len(conversation.events)
        stop = sound_of("short_piper_01.flac")
        began = time.perf_counter()
        conversation.speak(to_pcm24k(stop, RATE), silence_s=1.5)
        # The microphone goes on sending (silence), as a client's does: the VAD judges the sound as
        # audio comes in, and on a loaded core the sound's transcription can take longer than 1.5 s.
        deadline = time.perf_counter() + 10
        while not conversation.of("input_audio_buffer.speech_started", stop_at) and time.perf_counter() < deadline:
            conversation.append(silence)
            time.sleep(0.02)
        announced = conversation.wait_for("input_audio_buffer.speech_started", timeout=1, after=stop_at)[0].at
    finally:
        conversation.close()
    # Paced (--realtime_playback_lead_ms 250), the reply's audio stops coming
    # while "Stop." is judged: a client playing it as it arrives falls silent
    # within the lead, before the verdict is announced.
    onset = began + voiced_onset(stop)
    spans = playback(realtime_arrivals(conversation, mark), REALTIME_RATE)
    silent = min(ran_dry_at(spans, onset), announced)
    print(f"onset -> silent {1000 * (silent - onset):.0f} ms; announced {1000 * (announced - onset):.0f} ms")
    # Measured on 2 idle cores: silent 330 ms after the onset, announced 881 ms after it (with the
    # audio unpaced both 857 ms).  On a slower machine both come later; the paced reply still falls
    # silent before the verdict is announced.
    assert announced - silent > 0.15 and silent - onset < 1.0
    # The cut turn's metrics are written once it is cut: on a loaded core, seconds after speech_started.
    turns = realtime_server.wait_for_turn(lambda turn: "fact" in turn["transcript"].lower())
    book = [t for t in turns if "book" in t["transcript"].lower()]
    assert book and not book[-1]["interrupted"] and book[-1]["backchannels"] == 1, book
    assert reply_s > 3.0, "the reply was over before the backchannel"
    stopped = [t for t in turns if "fact" in t["transcript"].lower()]
    assert stopped and stopped[-1]["interrupted"], turns


@pytest.fixture(scope="module")
def socket_server(tmp_path_factory):
    from benchmarks.server_process import ServerProcess

    running = ServerProcess(
        "socket", tmp_path_factory.mktemp("overlap_socket"), "--barge_in", "True", "--init_chat_prompt",
        THREE_SENTENCES, "--false_interruption_timeout_ms", "4000",
    )  # fmt: skip
    yield running
    assert running.stop() == 0


@pytest.mark.timing
def test_socket_a_backchannel_and_a_cough_pause_the_reply_and_it_plays_on_to_its_end(socket_server):
    """Socket mode with --barge_in: "yeah" and then a cough over the reply
    each hold it back a moment; it then plays on from where it paused and
    ends whole, and neither sound becomes a turn."""
    from benchmarks.socket_client import ReplyRecorder, stream
    from tests.test_conversation import silence, wait_until_saying

    server = socket_server
    before = len(server.turns())
    replies = ReplyRecorder(server.send_port)
    try:
        with socket.create_connection(("127.0.0.1", server.recv_port)) as audio:
            stream(audio, np.concatenate([silence(0.3), load_audio(QUESTIONS / "q04.wav"), silence(0.3)]))
            said_before = 0
            wait_until_saying(server, audio, said_before, min_words=4)
            onsets = []
            for name in ("bc_piper_02.flac", "noise_cough_single.flac"):
                onsets.append(time.perf_counter())
                stream(audio, np.concatenate([sound_of(name), silence(2.5)]))
            turns = server.wait_for_turns(before + 1, timeout=120)[before:]
            stream(audio, silence(1.0))
    finally:
        replies.close()
    assert len(turns) == 1, [t["transcript"] for t in turns]
    reply = turns[0]
    assert "book" in reply["transcript"].lower()
    assert not reply["interrupted"] and reply["heard_reply"] is None
    assert reply["backchannels"] >= 1 and reply["paused_ms"] > 0
    # The reply went on after each sound (audio arrived after it), and ended by itself.
    for onset in onsets:
        assert replies.bytes_between(onset + 1.0, onset + 3.0) > 0
    log = server.log.read_text()
    assert "the sound over the reply was" in log
