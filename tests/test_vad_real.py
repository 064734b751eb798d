"""The real Silero VAD, through VADHandler's loading path, on real audio."""

import threading
import time

import numpy as np
import pytest

from audio.pcm import load_audio, split_chunks
from tests.conftest import HUMAN, QUESTIONS, drain, make_handler, read_transcripts
from utils.messages import AudioChunk, EndOfStream, SpeechSegment
from VAD.vad_handler import VADHandler


@pytest.fixture
def vad():
    return make_handler(VADHandler, should_listen=threading.Event())


def segments_of(vad: VADHandler, samples: np.ndarray, chunk: int = 512) -> list[SpeechSegment]:
    vad.on_reset()
    out = []
    for piece in split_chunks(samples, chunk):
        out.extend(vad.process(AudioChunk(samples=piece)))
    out.extend(vad.flush())
    return out


def test_three_questions_make_three_turns(vad):
    samples = load_audio(QUESTIONS / "conversation_3turns.wav")
    segments = segments_of(vad, samples)
    assert len(segments) == 3
    durations = [s.audio.size / 16000 for s in segments]
    assert all(1.0 < d < 5.0 for d in durations), durations
    # Turns come out in order and each carries its own Turn record.
    assert len({s.turn.turn_id for s in segments}) == 3
    assert all("end_of_turn" in s.turn.marks for s in segments)


def test_odd_chunk_sizes_give_the_same_turns(vad):
    samples = load_audio(QUESTIONS / "conversation_3turns.wav")
    assert len(segments_of(vad, samples, chunk=333)) == 3


def test_the_vad_clears_should_listen_when_it_hands_a_turn_on(vad):
    vad.should_listen.set()
    segments_of(vad, load_audio(QUESTIONS / "q01.wav"))
    assert not vad.should_listen.is_set()


def test_silence_and_noise_are_not_speech(vad):
    rng = np.random.default_rng(1)
    silence = np.zeros(16000 * 3, dtype=np.int16)
    hiss = (rng.normal(0, 300, 16000 * 3)).astype(np.int16)
    assert segments_of(vad, silence) == []
    assert segments_of(vad, hiss) == []


def test_speech_is_found_in_the_human_recordings(vad):
    """Every language, every speaker set: at least 95% of the clips have a turn
    (a few game lines are a grunt or a whisper shorter than min_speech_ms)."""
    rows = read_transcripts(HUMAN)
    found = {}
    for row in rows:
        folder = row["file"].split("/")[0]
        segments = segments_of(vad, load_audio(HUMAN / row["file"]))
        found.setdefault(folder, []).append(bool(segments))
    rates = {folder: sum(hits) / len(hits) for folder, hits in found.items()}
    assert set(rates) == {"alsa", "pocketsphinx", "asterisk_en", "fillets_nl", "fillets_cs"}
    assert all(rate >= 0.9 for rate in rates.values()), rates
    overall = sum(sum(h) for h in found.values()) / sum(len(h) for h in found.values())
    assert overall >= 0.95, rates


def test_end_of_stream_flushes_then_forwards(vad):
    samples = load_audio(QUESTIONS / "q01.wav")[: 16000 * 2]  # cut mid-speech: no trailing silence
    vad.on_reset()
    for piece in split_chunks(samples, 512):
        vad.queue_in.put(AudioChunk(samples=piece))
    vad.queue_in.put(EndOfStream())
    vad.run()
    out = drain(vad.queue_out)
    assert isinstance(out[-1], EndOfStream)
    assert sum(isinstance(m, SpeechSegment) for m in out) == 1


def test_speculation_sends_one_provisional_segment_per_pause_with_the_final_key():
    vad = make_handler(VADHandler, should_listen=threading.Event(), speculative_stt_ms=96)
    out = segments_of(vad, load_audio(QUESTIONS / "q01.wav"))
    provisional = [s for s in out if s.provisional]
    final = [s for s in out if not s.provisional]
    assert len(final) == 1 and provisional
    assert all(s.turn is None for s in provisional)
    # The last pause is the one that ended the turn: same speech, same key.
    assert provisional[-1].speech_key == final[0].speech_key


def speculative_vad() -> VADHandler:
    return make_handler(VADHandler, should_listen=threading.Event(), speculative_stt_ms=96, speculative_reply=True)


def test_the_pause_that_ends_the_turn_confirms_its_speculative_turn():
    out = segments_of(speculative_vad(), load_audio(QUESTIONS / "q01.wav"))
    provisional = [s for s in out if s.provisional]
    (final,) = [s for s in out if not s.provisional]
    assert provisional and all(s.turn is not None and s.turn.speculative for s in provisional)
    # The last pause became the end of turn: its turn, confirmed, rides on the final segment.
    assert final.turn is provisional[-1].turn
    assert final.turn.decided and not final.turn.stale and "end_of_turn" in final.turn.marks
    # Any earlier pause inside the question was followed by speech: dropped.
    assert all(s.turn.cancelled for s in provisional[:-1])


def test_speech_after_a_pause_cancels_the_speculative_turn():
    """A 200 ms pause between two questions is long enough to speculate on
    (96 ms) but not to end the turn (300 ms): the speculation is cancelled
    and the final segment, holding both questions, is a new turn."""
    gap = np.zeros(3200, np.int16)
    first = load_audio(QUESTIONS / "q01.wav")[:-5000]  # the file ends in 350 ms of silence
    second = load_audio(QUESTIONS / "q03.wav")
    out = segments_of(speculative_vad(), np.concatenate([first, gap, second, np.zeros(16000, np.int16)]))
    provisional = [s for s in out if s.provisional]
    (final,) = [s for s in out if not s.provisional]
    assert len(final.audio) > len(first) + len(second) - 16000  # both questions in one turn
    cancelled = [s.turn for s in provisional if s.turn.cancelled]
    assert cancelled and final.turn not in cancelled
    assert all(turn.stale for turn in cancelled) and not final.turn.stale


@pytest.mark.parametrize(("eagerness", "turns"), [("high", 2), ("low", 1)])
def test_semantic_vad_eagerness_decides_whether_a_pause_ends_the_turn(eagerness, turns):
    """Two questions 400 ms apart: `high` answers at the pause, `low` waits it out and
    hears one turn; the session's waits after unfinished words follow the eagerness too."""
    from conversation.eagerness import EAGERNESS_MS, semantic_turn_detection
    from conversation.session import Session, SessionSettings

    vad = make_handler(VADHandler, should_listen=threading.Event(), turn_detector="evidence")
    session = Session(SessionSettings(turn_detection=semantic_turn_detection(eagerness)))
    first, second = (load_audio(QUESTIONS / name) for name in ("q01.wav", "q02.wav"))
    first, second = first[: int(1.7 * 16000)], second[int(0.05 * 16000) :]  # their own silences cut off
    samples = np.concatenate([first, np.zeros(int(0.4 * 16000), np.int16), second, np.zeros(16000, np.int16)])
    segments = []
    for piece in split_chunks(samples, 512):
        segments.extend(vad.process(AudioChunk(samples=piece, session=session)))
    assert len([s for s in segments if not s.provisional]) == turns
    stream = vad.stream_for(session)
    assert (stream.unfinished_silence_ms, stream.finished_silence_ms) == EAGERNESS_MS[eagerness]
    assert stream.decision is not None and stream.decision.eagerness == eagerness


def test_a_turn_whose_audio_stops_coming_mid_speech_ends_there_and_is_handed_on():
    """A realtime client that stops sending in the middle of a question (a
    muted mic, a push-to-talk let go): the speech ends where its audio did
    and the turn goes on once nothing came for a while; a chunk still queued
    for the stage is not gone.  Before, the turn stayed open until more audio
    came, perhaps never.  What it says after a second press is a turn of its
    own, not the first one's continuation: no audio came in between, but
    time passed."""
    from conversation.session import Session, SessionSettings
    from VAD.vad_handler import SPEECH_AUDIO_GONE_S

    session = Session(SessionSettings(audio_gaps_are_silence=True))
    vad = make_handler(VADHandler, should_listen=threading.Event(), session=session)
    question = load_audio(QUESTIONS / "q01.wav")
    cut = int(len(question) * 0.55)  # "What is the capi-"
    handed_on = []
    for piece in split_chunks(np.concatenate([np.zeros(8000, np.int16), question[:cut]]), 512):
        handed_on += vad.process(AudioChunk(samples=piece, session=session))
    assert vad.stream_for(session).iterator.speaking and not handed_on
    time.sleep(SPEECH_AUDIO_GONE_S + 0.1)
    vad.queue_in.put(AudioChunk(samples=np.zeros(512, np.int16), session=session))
    vad.idle()  # its next chunk waits in the queue (the stage is behind): not gone
    assert vad.queue_out.empty()
    vad.queue_in.get()
    vad.idle()
    (segment,) = drain(vad.queue_out)
    assert isinstance(segment, SpeechSegment) and not segment.provisional
    assert "end_of_turn" in segment.turn.marks
    assert segment.turn.silence_waited_ms >= SPEECH_AUDIO_GONE_S * 1000  # waited for on the wall clock
    assert abs(segment.audio.size - cut) < 16000 * 0.6  # the question so far, with the lead-in's pre-roll
    assert not vad.stream_for(session).iterator.speaking
    vad.idle()
    assert vad.queue_out.empty()  # once
    # The second press: the rest of the question, right after the first part in the stream but more
    # than the join window later on the wall clock.
    time.sleep(vad.join_window / 16000 + 0.2)
    rest = []
    for piece in split_chunks(np.concatenate([question[cut:], np.zeros(16000, np.int16)]), 512):
        rest += vad.process(AudioChunk(samples=piece, session=session))

    (second,) = [message for message in rest if isinstance(message, SpeechSegment) and not message.provisional]
    assert second.turn is not segment.turn and not segment.turn.stale  # the first turn was not withdrawn


def test_audio_held_back_by_its_source_is_no_end_of_the_turn():
    """Local and socket sources hold or drop audio on purpose (the echo
    canceller's holds, half duplex), and a sound too short to be speech
    would only lose its onset: neither ends when the audio stops coming."""
    from conversation.session import Session, SessionSettings
    from VAD.vad_handler import SPEECH_AUDIO_GONE_S

    held, short = Session(), Session(SessionSettings(audio_gaps_are_silence=True))
    vad = make_handler(VADHandler, should_listen=threading.Event(), session=held)
    question = load_audio(QUESTIONS / "q01.wav")
    for session, speech in ((held, question[: len(question) // 2]), (short, question[4000:6400])):
        for piece in split_chunks(np.concatenate([np.zeros(8000, np.int16), speech]), 512):
            list(vad.process(AudioChunk(samples=piece, session=session)))
        assert vad.stream_for(session).iterator.speaking
    time.sleep(SPEECH_AUDIO_GONE_S + 0.2)
    vad.idle()
    assert vad.queue_out.empty()
    assert vad.stream_for(held).iterator.speaking and vad.stream_for(short).iterator.speaking


def test_speech_that_joins_the_turn_just_ended_gives_the_floor_back(vad):
    """File mode's source stops at each end of turn until the reply is over
    (half duplex); one chunk may already be queued.  If that chunk resumes
    the speech, the turn is withdrawn and joined, its reply never plays, and
    the floor must come back with it: the sink only gives it back at a
    reply's end, so the source waited for ever."""
    first, second = load_audio(QUESTIONS / "q01.wav"), load_audio(QUESTIONS / "q05.wav")
    vad.should_listen.set()
    ended = None
    for piece in split_chunks(np.concatenate([first, np.zeros(16000, np.int16)]), 512):
        for message in vad.process(AudioChunk(samples=piece)):
            if isinstance(message, SpeechSegment) and not message.provisional:
                ended = message.turn
        if ended is not None:
            break
    assert ended is not None and not vad.should_listen.is_set()
    joined, floor = [], []
    for piece in split_chunks(np.concatenate([second, np.zeros(16000, np.int16)]), 512):
        joined += vad.process(AudioChunk(samples=piece))
        if ended.stale and not floor:
            floor.append(vad.should_listen.is_set())  # as the turn is joined: the floor is the user's again
    assert floor == [True]
    assert ended.withdrawn
    (whole,) = [message for message in joined if isinstance(message, SpeechSegment) and not message.provisional]
    assert whole.audio.size > first.size + second.size - 16000 * 0.5


def test_a_pause_streamed_in_real_time_joins_as_it_does_in_the_stream():
    """A realtime client streaming its microphone in real time sends its
    pauses as audio: the wall clock between two chunks is the audio between
    them, and a pause within the join window joins the turn just ended as it
    does for a client that sends faster than real time.  Before, the wall
    gap was counted from the last voiced chunk to the chunk where the speech
    was found, the audio kept after the one and before the other included,
    which shortened every realtime session's join window by half a second."""
    from conversation.session import Session, SessionSettings

    first, second = load_audio(QUESTIONS / "q01.wav"), load_audio(QUESTIONS / "q05.wav")
    pause_s = 1.2  # of audio between the questions' own silences, within the join window with them
    samples = np.concatenate([first, np.zeros(int(pause_s * 16000), np.int16), second, np.zeros(16000, np.int16)])
    for realtime in (False, True):
        session = Session(SessionSettings(audio_gaps_are_silence=realtime))
        vad = make_handler(VADHandler, should_listen=threading.Event(), session=session)
        started, sent, segments = time.perf_counter(), 0, []
        for piece in split_chunks(samples, 320):  # 20 ms, as realtime clients send
            sent += len(piece)
            chunk = AudioChunk(samples=piece, session=session, received_at=started + sent / 16000)
            segments += [m for m in vad.process(chunk) if isinstance(m, SpeechSegment) and not m.provisional]
        turns = {segment.turn.number: segment for segment in segments}
        assert len(turns) == 2, "the pause should end the first turn before the second question joins it"
        first_turn, last = segments[0].turn, segments[-1]
        assert first_turn.withdrawn, f"streamed in real time: {realtime}"
        assert last.audio.size > first.size + second.size - 16000 * 0.8
