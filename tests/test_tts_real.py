"""The real Piper TTS with the packaged voice, through its handler."""

import numpy as np

from conversation.turn import Turn
from utils.messages import LLMSentence, TTSAudio


def test_one_chunk_per_sentence_at_the_output_rate(tts_handler):
    turn = Turn()
    out = list(tts_handler.process(LLMSentence("The capital of France is Paris.", "en", turn)))
    assert len(out) == 1 and isinstance(out[0], TTSAudio)
    audio = out[0]
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.int16
    seconds = audio.samples.size / 16000
    assert 1.0 < seconds < 4.0
    assert np.abs(audio.samples).max() > 3000  # audible, not silence
    assert turn.elapsed_ms("tts_start", "tts_first_audio") > 0


def test_spoken_sentence_is_understood_by_the_stt(tts_handler, stt_handler):
    (audio,) = tts_handler.process(LLMSentence("Octopuses have three hearts.", "en", Turn()))
    text, _ = stt_handler.transcribe(audio.samples.astype(np.float32) / 32768)
    assert "three hearts" in text.lower()


def test_a_long_first_sentence_is_spoken_head_first_and_later_ones_whole(tts_handler, stt_handler):
    """The head's audio goes out before the rest is synthesised; both pieces
    together still say the whole sentence."""
    turn = Turn()
    sentence = "Walking from the train station to the old town takes about ten minutes on foot."
    head, rest = list(tts_handler.process(LLMSentence(sentence, "en", turn)))
    assert head.text == "Walking from the train station" and rest.text.startswith("to the old town")
    assert head.samples.size < rest.samples.size
    joined = np.concatenate([head.samples, rest.samples]).astype(np.float32) / 32768
    text, _ = stt_handler.transcribe(joined)
    assert "train station" in text.lower() and "old town" in text.lower()
    (later,) = tts_handler.process(LLMSentence(sentence, "en", turn))  # not the turn's first: whole
    assert later.text == sentence


def test_the_split_can_be_turned_off():
    from tests.conftest import make_handler
    from TTS.piper_handler import PiperTTSHandler

    handler = make_handler(PiperTTSHandler, voice="joe", split_first_sentence=False, threads=1)
    sentence = "Walking from the train station to the old town takes about ten minutes on foot."
    (whole,) = handler.process(LLMSentence(sentence, "en", Turn()))
    assert whole.text == sentence
    assert handler.voice.session.get_session_options().intra_op_num_threads == 1


def test_a_long_sentence_is_spoken_in_bounded_pieces(tts_handler, stt_handler):
    """Piper never gets more than `max_words` words at once (its memory keeps
    the longest piece's size); the pieces together still say the sentence."""
    turn = Turn()
    list(tts_handler.process(LLMSentence("Sure.", "en", turn)))  # the turn's first sentence is out
    sentence = (
        "The Count of Monte Cristo by Alexandre Dumas tells the story of a young sailor who is wrongly "
        "imprisoned, escapes from an island fortress and takes his revenge on the men who betrayed him."
    )
    pieces = list(tts_handler.process(LLMSentence(sentence, "en", turn)))
    assert len(pieces) >= 2 and all(len(piece.text.split()) <= tts_handler.max_words for piece in pieces)
    assert " ".join(piece.text for piece in pieces) == sentence
    text, _ = stt_handler.transcribe(np.concatenate([p.samples for p in pieces]).astype(np.float32) / 32768)
    assert "sailor" in text.lower() and "revenge" in text.lower()
