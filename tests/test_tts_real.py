"""The real Piper TTS with the packaged voice, through its handler."""

import numpy as np

from utils.messages import LLMSentence, TTSAudio, Turn


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
