"""Text to speech with ChatTTS, streamed or one piece per sentence.

ChatTTS (package `chattts`, module `ChatTTS`) speaks English and Chinese at
24 kHz.  Its voice is a speaker embedding; a random one is drawn at setup from
`speaker_seed`, so a given seed is always the same voice (or give an embedding
string in `speaker`).  With `stream` on, ChatTTS hands back audio every few
hundred generated tokens and the stage yields each piece at once; the pieces
are resampled with one soxr stream per sentence, so the joins are seamless.

Its weights (2Noise/ChatTTS) come from the Hugging Face hub on first use
(`source="huggingface"`, then the local cache) or from a local folder
(`source="custom"`, `model_path`).  The text refinement pass, which adds
pauses and laughs but costs a second model run, is off unless `refine_text`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from audio.stream_resample import StreamResampler, resample_to_int16
from config.registry import missing_package
from TTS.speech_handler import SpeechHandler

logger = logging.getLogger(__name__)

CHATTTS_SAMPLE_RATE = 24000


def chattts_mono(wav: Any) -> np.ndarray:
    """ChatTTS gives (batch, samples) arrays when streaming and 1-D ones
    otherwise; this stage sends one sentence at a time, so take the first row."""
    array = np.asarray(wav, dtype=np.float32)
    if array.ndim > 1:
        array = array.reshape(array.shape[0], -1)[0]
    return np.nan_to_num(array)


def to_output_rate(wav: Any, output_sample_rate: int = 16000) -> np.ndarray:
    """A whole ChatTTS utterance (float, 24 kHz) -> int16 mono at the output rate."""
    return resample_to_int16(chattts_mono(wav), CHATTTS_SAMPLE_RATE, output_sample_rate)


class ChatTTSHandler(SpeechHandler):
    def setup(
        self,
        source: str = "huggingface",
        model_path: str = "",
        device: str = "cpu",
        compile: bool = False,
        stream: bool = True,
        refine_text: bool = False,
        speaker: str = "",
        speaker_seed: int = 0,
        output_sample_rate: int = 16000,
        gen_kwargs: dict | None = None,
    ) -> None:
        try:
            import ChatTTS
            import torch
        except ImportError as error:
            raise missing_package(ChatTTSHandler, error) from None
        self.chat = ChatTTS.Chat(logger)
        loaded = self.chat.load(
            source=source, custom_path=model_path or None, device=torch.device(device), compile=compile
        )
        if not loaded:
            where = model_path or "the Hugging Face cache (2Noise/ChatTTS; downloaded once when online)"
            raise RuntimeError(f"ChatTTS weights could not be loaded from {where}")
        if not speaker:
            torch.manual_seed(speaker_seed)  # the random speaker is the seed's voice, every run
            speaker = self.chat.sample_random_speaker()
        # temperature, top_P, top_K, ... -> ChatTTS's sampling parameters.
        sampling = {k: v for k, v in (gen_kwargs or {}).items() if v is not None}
        self.params_infer_code = ChatTTS.Chat.InferCodeParams(spk_emb=speaker, show_tqdm=False, **sampling)
        self.params_refine_text = ChatTTS.Chat.RefineTextParams(show_tqdm=False)
        self.stream = stream
        self.refine_text = refine_text
        self.output_sample_rate = output_sample_rate

    def _infer(self, text: str, stream: bool) -> Any:
        return self.chat.infer(
            text,
            stream=stream,
            skip_refine_text=not self.refine_text,
            split_text=False,  # the LLM stage already sends one sentence at a time
            params_refine_text=self.params_refine_text,
            params_infer_code=self.params_infer_code,
        )

    def warmup(self) -> None:
        """One whole (unstreamed) synthesis, its audio not even resampled."""
        self._infer("Hello.", stream=False)

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """int16 pieces at the output rate: several when streaming, else one."""
        if not self.stream:
            wavs = self._infer(text, stream=False)
            if len(wavs):
                yield to_output_rate(wavs[0], self.output_sample_rate)
            return
        resampler = StreamResampler(CHATTTS_SAMPLE_RATE, self.output_sample_rate)
        pieces = self._infer(text, stream=True)
        try:
            for wav in pieces:
                yield resampler.push(chattts_mono(wav))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # a turn dropped mid-sentence stops ChatTTS's generation
        yield resampler.flush()
