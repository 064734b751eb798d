"""The incremental transcriber's bookkeeping, with a scripted decoder instead of Whisper.

The scripted decoder "hears" a fixed timeline of words: every word that ends
inside the audio it is given, after the known words, with times from the
audio's start.  The real decoder's behaviour on real speech is tested in
test_stt_incremental_real.py.
"""

import numpy as np

from STT.incremental_transcript import (
    MAX_DECODE_S,
    IncrementalTranscriber,
    TailDecoding,
    Word,
    agreed_prefix,
    drop_repeated_head,
    join_words,
    quietest_point,
    real_length,
    skipped_speech,
)

RATE = 16000
# "What is the capital of France? And how many people live there, today?"
TIMELINE = [
    Word("What", 0.3, 0.5), Word("is", 0.55, 0.7), Word("the", 0.75, 0.85), Word("capital", 0.9, 1.4),
    Word("of", 1.45, 1.55), Word("France?", 1.6, 2.2), Word("And", 2.6, 2.8), Word("how", 2.85, 3.0),
    Word("many", 3.05, 3.3), Word("people", 3.35, 3.7), Word("live", 3.75, 4.0), Word("there,", 4.05, 4.5),
    Word("today?", 4.8, 5.4),
]  # fmt: skip


# The same question asked twice: a 12 s turn.
TWICE = [*TIMELINE, *(word.shifted(6.0) for word in TIMELINE)]


def speech(seconds: float, timeline: list[Word] = TIMELINE) -> np.ndarray:
    """Loud where the timeline has words, quiet between them."""
    audio = np.full(int(seconds * RATE), 0.001, dtype=np.float32)
    for word in timeline:
        audio[int(word.start * RATE) : int(word.end * RATE)] = 0.3
    return audio


class ScriptedDecoder:
    def __init__(self, audio: np.ndarray, timeline: list[Word] = TIMELINE) -> None:
        self.audio = audio
        self.timeline = timeline
        self.calls: list[tuple[float, float, str]] = []  # (start s, length s, known text)
        self.doubtful = False

    def __call__(self, audio: np.ndarray, known: str, language: str | None, with_words: bool) -> TailDecoding:
        offset = 0  # a padded copy starts where the utterance does
        if np.shares_memory(audio, self.audio):
            offset = (audio.__array_interface__["data"][0] - self.audio.__array_interface__["data"][0]) // 4
        start, end = offset / RATE, (offset + real_length(audio)) / RATE
        self.calls.append((start, len(audio) / RATE, known))
        heard = [w for w in self.timeline if w.start >= start - 0.05 and w.end <= end]
        new = heard[len(known.split()) :]
        words = [w.shifted(-start) for w in new] if with_words else []
        return TailDecoding(" ".join(w.text for w in new), "en", words, doubtful=self.doubtful)


def follow(audio: np.ndarray, until_s: float, transcriber: IncrementalTranscriber, state, every_s: float = 1.0):
    results = []
    for end in np.arange(every_s, until_s + 1e-9, every_s):
        results.append(transcriber.progress(state, audio[: int(end * RATE)]))
    return results


def test_words_settle_when_two_decodes_agree_and_the_tail_moves_past_a_phrase():
    audio = speech(6.0)
    decoder = ScriptedDecoder(audio)
    transcriber = IncrementalTranscriber(decoder, RATE, "en", context_s=0.0)
    state = transcriber.new_utterance()
    first, second, third, fourth = follow(audio, 4.0, transcriber, state)
    assert not first.newly_stable  # one decode: nothing to agree with yet
    assert second.newly_stable and third.newly_stable
    assert third.text.startswith("What is the capital of France? And")
    # Once "France?", which ends a phrase, is agreed on and a word was heard
    # after it, the tail starts between them.
    assert fourth.newly_stable and state.done_text == "What is the capital of France?"
    assert 2.2 * RATE <= state.tail_start <= 2.6 * RATE


def test_the_end_of_a_long_turn_decodes_only_its_tail_with_a_little_context():
    audio = speech(12.0, TWICE)
    decoder = ScriptedDecoder(audio, TWICE)
    transcriber = IncrementalTranscriber(decoder, RATE, "en", context_s=4.0)
    state = transcriber.new_utterance()
    follow(audio, 11.0, transcriber, state)
    result = transcriber.finish(state, audio)
    assert result.text == " ".join(w.text for w in TWICE) and not result.doubtful
    start, length, known = decoder.calls[-1]
    assert start > 0 and length <= MAX_DECODE_S  # not from the turn's start
    assert known and state.done_text.endswith(known)  # context: done words, given as known


def test_without_context_a_decode_starts_at_the_tail():
    audio = speech(6.0)
    decoder = ScriptedDecoder(audio)
    transcriber = IncrementalTranscriber(decoder, RATE, "en", context_s=0.0)
    state = transcriber.new_utterance()
    follow(audio, 5.0, transcriber, state)
    transcriber.finish(state, audio)
    start, _, known = decoder.calls[-1]
    assert known == "" and start * RATE == state.tail_start


def test_a_word_near_the_end_of_the_audio_does_not_settle():
    audio = speech(6.0)
    transcriber = IncrementalTranscriber(ScriptedDecoder(audio), RATE, "en")
    state = transcriber.new_utterance()
    transcriber.progress(state, audio[: int(1.45 * RATE)])
    transcriber.progress(state, audio[: int(1.5 * RATE)])  # "capital" ends 0.1 s before the end
    assert state.stable_text == "What is the"


def test_a_doubtful_tail_asks_for_a_whole_decode():
    audio = speech(6.0)
    decoder = ScriptedDecoder(audio)
    transcriber = IncrementalTranscriber(decoder, RATE, "en")
    state = transcriber.new_utterance()
    follow(audio, 4.0, transcriber, state)
    decoder.doubtful = True
    assert transcriber.finish(state, audio).doubtful


def test_a_pause_becomes_the_tail_start_once_the_next_decode_agrees():
    audio = speech(6.0)
    decoder = ScriptedDecoder(audio)
    transcriber = IncrementalTranscriber(decoder, RATE, "en", context_s=0.0)
    state = transcriber.new_utterance()
    paused = np.concatenate([audio[: int(4.6 * RATE)], np.zeros(RATE // 2, np.float32)])  # padded like the VAD's
    transcriber.finish(state, paused)  # no progress before: the pause's decode is all there is
    assert state.tail_start == 0
    transcriber.progress(state, audio[: int(5.6 * RATE)])  # the speaker went on and the decode agrees
    assert state.tail_start == real_length(paused) and state.done_text.endswith("live there,")


def test_utterances_are_kept_apart():
    """The transcriber keeps nothing of its own: two utterances followed in
    turns (two conversations on one STT) each get their own words."""
    audio = speech(6.0)
    transcriber = IncrementalTranscriber(ScriptedDecoder(audio), RATE, "en", context_s=0.0)
    one, two = transcriber.new_utterance(), transcriber.new_utterance()
    for end_s in (1.0, 2.0, 3.0):
        transcriber.progress(one, audio[: int(end_s * RATE)])
    transcriber.progress(two, audio[: int(1.0 * RATE)])
    assert two.stable_text == "" and two.decodes == 1  # one decode: nothing agreed yet
    assert one.stable_text.startswith("What is the capital") and one.decodes == 3
    transcriber.progress(two, audio[: int(2.0 * RATE)])
    assert two.stable_text == "What is the" and one.decodes == 3


def test_helpers():
    assert join_words([Word("First", 0, 1), Word(",", 1, 1), "I", " will."]) == "First, I will."
    words = [Word("Paris,", 0, 1), Word("the", 1, 2)]
    assert agreed_prefix(words, [Word("paris", 0, 1), Word("a", 1, 2)]) == 1
    assert (
        drop_repeated_head([Word("of", 0, 0), Word("France.", 0, 0)], [Word("France", 0, 0), Word("And", 0, 0)])[0].text
        == "And"
    )
    assert skipped_speech([Word("Press", 0.0, 3.0), Word("one", 3.0, 3.3)])
    assert not skipped_speech([Word("Press", 0.0, 0.4), Word("one", 0.4, 3.3)])  # the last word may run on
    padded = np.concatenate([np.ones(100, np.float32), np.zeros(50, np.float32)])
    assert real_length(padded) == 100
    audio = speech(3.0)
    assert 2.2 * RATE <= quietest_point(audio, int(2.1 * RATE), int(2.7 * RATE), RATE) <= 2.6 * RATE


def test_a_whole_decode_at_a_pause_is_agreed_with_like_a_tail_decode():
    """With nothing done yet the handler decodes a pause whole (as without
    following); what it heard there still lets the next decode move the tail
    to the pause."""
    audio = speech(6.0)
    transcriber = IncrementalTranscriber(ScriptedDecoder(audio), RATE, "en", context_s=0.0)
    state = transcriber.new_utterance()
    paused = np.concatenate([audio[: int(4.6 * RATE)], np.zeros(RATE // 2, np.float32)])
    transcriber.heard_whole(state, paused, "What is the capital of France? And how many people live there,")
    assert state.tail_start == 0 and state.pause is not None
    transcriber.progress(state, audio[: int(5.6 * RATE)])
    assert state.tail_start == real_length(paused) and state.done_text.endswith("live there,")


def test_a_short_turn_whose_tail_decode_would_hear_it_all_is_said_to_be_heard_from_its_start():
    """The caller then decodes it plainly: the same audio, without the done
    words forced as its start (an early decode's mishearing would steer it)."""
    audio = speech(6.0)
    transcriber = IncrementalTranscriber(ScriptedDecoder(audio), RATE, "en", context_s=4.0)
    state = transcriber.new_utterance()
    follow(audio, 4.0, transcriber, state)
    assert state.done_text == "What is the capital of France?"  # words are done, the tail starts after them
    assert transcriber.hears_from_start(state, audio)  # but 4 s of context reach back to the start
    long_audio = speech(12.0, TWICE)
    long_state = transcriber.new_utterance()
    transcriber.decode = ScriptedDecoder(long_audio, TWICE)
    follow(long_audio, 11.0, transcriber, long_state)
    assert not transcriber.hears_from_start(long_state, long_audio)
    without_context = IncrementalTranscriber(ScriptedDecoder(audio), RATE, "en", context_s=0.0)
    short_state = without_context.new_utterance()
    follow(audio, 4.0, without_context, short_state)
    assert not without_context.hears_from_start(short_state, audio)
