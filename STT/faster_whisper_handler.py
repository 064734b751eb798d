"""Speech to text with faster-whisper (CTranslate2), the default STT.

The default model is the multilingual Whisper base that ships, split in two,
inside pip packages; `models.packaged` joins and verifies it once.  Any
other name goes to faster-whisper unchanged (a local folder, or a hub id for
users with internet).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from baseHandler import BaseHandler
from config.registry import missing_package
from conversation.session import Session
from conversation.turn import Turn
from models.packaged import resolve_whisper_model
from STT.incremental_transcript import IncrementalTranscriber, TailDecoding, UtteranceTranscript, Word
from STT.language_choice import ConversationLanguage, LanguagePolicy, parse_languages
from STT.results import log_heard, segment_audio, transcript_messages, transcription_due
from utils.messages import (
    EndOfResponse,
    OverheardSpeech,
    PartialTranscript,
    SpeechProgress,
    SpeechSegment,
    Transcript,
)
from utils.threads import engine_threads

logger = logging.getLogger(__name__)

WHISPER_RATE = 16000
FULL_WINDOW_S = 30.0
# Shortest window per packaged model, where it was measured to keep accuracy
# (164 English human clips): Whisper base 8.6% -> 7.6% WER at 10 s, 3.7x
# faster.  tiny.en lost accuracy (9.1% -> 12.3%), so it and any model not
# measured here keep faster-whisper's 30 s unless --stt_window_s says otherwise.
MEASURED_WINDOWS_S = {"whisper-base": 10.0}
# Options the short-window decoder passes to CTranslate2; any other generation
# option (temperature fallback, prompts, ...) needs faster-whisper's own loop.
SHORT_WINDOW_OPTIONS = {"beam_size", "task", "condition_on_previous_text", "patience", "length_penalty",
                        "repetition_penalty", "no_repeat_ngram_size"}  # fmt: skip


# Whisper's own thresholds: a window is silence when the no-speech token is
# likely and the text unlikely; text this unlikely is worth a second decoding.
NO_SPEECH_PROBABILITY = 0.6
LOW_AVERAGE_LOG_PROBABILITY = -1.0
UNSURE_LANGUAGE_PROBABILITY = 0.5
FRAMES_PER_SECOND = 100


class WindowResult(NamedTuple):
    text: str
    language: str
    average_log_probability: float
    no_speech_probability: float
    words: tuple[Word, ...] = ()  # with their times, when asked for

    @property
    def silence(self) -> bool:
        return (
            self.no_speech_probability > NO_SPEECH_PROBABILITY
            and self.average_log_probability < LOW_AVERAGE_LOG_PROBABILITY
        )

    @property
    def doubtful(self) -> bool:
        """Worth decoding again on the full window, which also retries at
        higher temperatures: a loop, text the model itself finds unlikely, or
        likely silence (on a short window Whisper still says a confident "you"
        over silence; on the full one it does not)."""
        return (
            looks_like_a_loop(self.text)
            or self.average_log_probability < LOW_AVERAGE_LOG_PROBABILITY
            or self.no_speech_probability > NO_SPEECH_PROBABILITY
        )


def spoken_words(pieces: list[str]) -> list[list[int]]:
    """Whisper's word pieces grouped into spoken words (indices): a piece of
    punctuation alone joins the word before it."""
    groups: list[list[int]] = []
    for index, piece in enumerate(pieces):
        text = piece.strip()
        if groups and not any(character.isalnum() for character in text):
            groups[-1].append(index)
        elif text:
            groups.append([index])
    return groups


def token_budget(audio: np.ndarray) -> int:
    """The most tokens a decode of `audio` may write: ~3 words a second of
    speech is ~5 tokens; 12 a second leaves room for digits, names and
    timestamps while capping a runaway loop (Whisper's own cap is 448)."""
    return 16 + int(12 * len(audio) / WHISPER_RATE)


def looks_like_a_loop(text: str) -> bool:
    """Whisper's own test for a decoder stuck repeating itself: text that
    compresses too well (gzip ratio above 2.4)."""
    data = text.encode()
    return len(data) > 24 and len(data) / len(zlib.compress(data)) > 2.4


class ShortWindowDecoder:
    """Greedy (or beam) decoding of one short turn on an encoder window that
    fits it, instead of faster-whisper's fixed 30 s one."""

    def __init__(self, model: Any, window_s: float, task: str = "transcribe", **options: Any) -> None:
        self.model = model
        self.window_s = window_s
        self.task = task
        self.options = {key: value for key, value in options.items() if key != "condition_on_previous_text"}
        self._decoding: dict[str, tuple[Any, list[int], list[int]]] = {}

    def decoding(self, language: str) -> tuple[Any, list[int], list[int]]:
        """Tokenizer, prompt and suppressed tokens for a language, built once."""
        if language not in self._decoding:
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens

            tokenizer = Tokenizer(
                self.model.hf_tokenizer, self.model.model.is_multilingual, task=self.task, language=language
            )
            prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            self._decoding[language] = (tokenizer, prompt, get_suppressed_tokens(tokenizer, [-1]))
        return self._decoding[language]

    def fits(self, audio: np.ndarray) -> bool:
        return len(audio) / WHISPER_RATE + 1.0 <= FULL_WINDOW_S

    def features(self, audio: np.ndarray, window_s: float | None = None) -> Any:
        """Log-mel of the audio zero-padded to the window (one second of it at
        least, so the last word is not cut), as a CTranslate2 batch of one."""
        import ctranslate2

        shortest = self.window_s if window_s is None else window_s
        seconds = min(FULL_WINDOW_S, max(shortest, len(audio) / WHISPER_RATE + 1.0))
        samples = int(seconds * WHISPER_RATE)
        padded = np.zeros(samples, dtype=np.float32)
        padded[: len(audio)] = audio[:samples]
        mel = self.model.feature_extractor(padded, padding=0)[:, : int(seconds * 100)]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))

    def language_probabilities(self, audio: np.ndarray, features: Any = None) -> dict[str, float]:
        """Whisper's probability of each language for the whole utterance (the
        window holds all of it); when the short window is unsure (below even
        odds), the full window's, which is more often right on short English clips."""
        features = self.features(audio) if features is None else features
        probabilities = self.model.model.detect_language(features)[0]
        if probabilities[0][1] < UNSURE_LANGUAGE_PROBABILITY:
            probabilities = self.model.model.detect_language(self.features(audio, FULL_WINDOW_S))[0]
        return {token.strip("<|>"): probability for token, probability in probabilities}

    def decode(
        self, audio: np.ndarray, language: str | None, known: str = "", with_words: bool = False
    ) -> WindowResult:
        """Decode `audio`.  `known` is the text of its start, already
        transcribed: Whisper is given it as the start of its answer, so it
        hears the new words in their full context but only generates those
        (the known tokens cost one parallel pass, not one pass each).  The
        result holds the new words only; `with_words` adds their times in the
        audio (one extra, cheap, alignment pass)."""
        features = self.features(audio)
        if language is None:
            probabilities = self.language_probabilities(audio, features) if self.model.model.is_multilingual else {}
            language = max(probabilities, key=probabilities.get) if probabilities else "en"
        tokenizer, prompt, suppressed = self.decoding(language)
        prefix = tokenizer.encode(" " + known.strip()) if known.strip() else []
        if with_words:
            features = self.model.model.encode(features, to_cpu=False)  # shared by decoding and alignment
        max_length = min(448, len(prompt) + len(prefix) + token_budget(audio))
        result = self.model.model.generate(
            features,
            [[*prompt, *prefix]],
            max_length=max_length,
            suppress_blank=True,
            suppress_tokens=suppressed,
            return_scores=True,
            return_no_speech_prob=True,
            **self.options,
        )[0]
        generated = result.sequences_ids[0]
        if prefix and generated[: len(prefix)] == prefix:
            generated = generated[len(prefix) :]  # CTranslate2 returns the given start too
        tokens = [token for token in generated if token < tokenizer.eot]
        # CTranslate2 scores are length-normalised: back to a sum, then
        # averaged the way Whisper does (over the tokens plus end of text).
        total = result.scores[0] * max(1, len(generated)) ** self.options.get("length_penalty", 1.0)
        words: tuple[Word, ...] = ()
        if with_words and tokens:
            words = self.word_times(tokenizer, [*prefix, *tokens], features, len(audio))
            if prefix:
                known_words = tokenizer.split_to_word_tokens([*prefix, tokenizer.eot])[0][:-1]
                words = words[len(spoken_words(known_words)) :]
        return WindowResult(
            text=tokenizer.decode(tokens).strip(),
            language=language,
            average_log_probability=total / (len(generated) + 1),
            no_speech_probability=result.no_speech_prob,
            words=words,
        )

    def word_times(self, tokenizer: Any, tokens: list[int], encoded: Any, samples: int) -> tuple[Word, ...]:
        """Each word's span in seconds, from the decoder's cross-attention
        (faster-whisper's alignment)."""
        frames = min(samples * FRAMES_PER_SECOND // WHISPER_RATE, encoded.shape[1] * 2)
        (aligned,) = self.model.find_alignment(tokenizer, [tokens], encoded, frames)
        words = []
        for group in spoken_words([item["word"] for item in aligned]):
            first = aligned[group[0]]  # punctuation after a word keeps the word's end, not the pause's
            text = "".join(aligned[index]["word"] for index in group).strip()
            words.append(Word(text, float(first["start"]), float(first["end"])))
        return tuple(words)


@dataclass
class ConversationSTT:
    """What the STT keeps of one conversation between messages."""

    # A pause's transcript (speech key, text, language, start, end), reused by
    # the final segment when nothing was said after the pause.
    speculation: tuple[tuple[int, int], str, str | None, float, float] | None = None
    followed_start: int | None = None  # speech start of the utterance followed while spoken
    followed: UtteranceTranscript | None = None
    language: ConversationLanguage = field(default_factory=ConversationLanguage)  # the conversation's, sticky


# faster-whisper's own temperature ladder (WhisperModel.transcribe's default).
TEMPERATURE_LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def ladder_above_zero(options: dict[str, Any]) -> tuple[float, ...] | float:
    """The temperature ladder (the user's `temperature`, else faster-whisper's)
    without its greedy step, for a retry whose greedy decode already looped:
    climbing from 0 would repeat that decode (a 30 s window) first.  A single
    temperature the user set is kept as it is."""
    ladder = options.get("temperature", TEMPERATURE_LADDER)
    if not isinstance(ladder, (list, tuple)):
        return ladder
    above = tuple(step for step in ladder if step > 0)
    return above or tuple(ladder)


class FasterWhisperSTTHandler(BaseHandler):
    accepts = (SpeechSegment, SpeechProgress, OverheardSpeech)
    # Transcribes provisional segments ahead of the end of turn (--speculative_stt_ms),
    # follows speech while it is spoken (--incremental_stt_ms), and tells the VAD
    # what a sound over the reply says (a backchannel does not stop it).
    accepts_provisional = True
    follows_speech = True
    hears_overlaps = True

    work_priority = staticmethod(transcription_due)  # every decode holds the CPU baton

    def setup(
        self,
        model_name: str = "whisper-base",
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        language: str = "en",
        languages: str = "",
        window_s: float | None = None,
        incremental: bool = True,
        context_s: float = 4.0,
        retry_ladder: bool = False,
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise missing_package(FasterWhisperSTTHandler) from None
        path = resolve_whisper_model(model_name)
        self.cpu_threads = engine_threads(cpu_threads)
        self.model = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=self.cpu_threads)
        self.detect_language = language in ("auto", "", None)
        self.language = None if self.detect_language else language
        self.last_language = self.language
        self.multilingual = self.model.model.is_multilingual
        if not self.multilingual and self.detect_language:
            logger.info("%s is English-only: language detection off", model_name)
            self.detect_language, self.language, self.last_language = False, "en", "en"
        self.policy = LanguagePolicy(allowed=parse_languages(languages))
        self.gen_kwargs = {"beam_size": 1, "condition_on_previous_text": False, **(gen_kwargs or {})}
        self.retry_ladder = retry_ladder
        if window_s is None:
            window_s = MEASURED_WINDOWS_S.get(model_name, FULL_WINDOW_S)
        self.short_window: ShortWindowDecoder | None = None
        unsupported = set(self.gen_kwargs) - SHORT_WINDOW_OPTIONS
        if window_s < FULL_WINDOW_S and unsupported:
            logger.warning("short STT window off: it does not support %s", ", ".join(sorted(unsupported)))
        elif window_s < FULL_WINDOW_S:
            self.short_window = ShortWindowDecoder(self.model, window_s, **self.gen_kwargs)
        # Transcription while the user speaks needs the short window's decoder
        # (prompted tails, word times); without it each turn is decoded whole.
        self.incremental: IncrementalTranscriber | None = None
        if incremental and self.short_window is not None:
            self.incremental = IncrementalTranscriber(self.decode_tail, WHISPER_RATE, None, context_s)
        self._default_state = ConversationSTT()  # segments that name no session (tests, benchmarks)
        # Decodes made while choosing a turn's language, reused for its transcript.
        self._rescored_audio: np.ndarray | None = None
        self._rescored: dict[str, WindowResult] = {}

    def warmup(self) -> None:
        """One pass on a second of low noise: loads kernels, fills caches."""
        noise = np.random.default_rng(0).normal(0, 0.01, WHISPER_RATE).astype(np.float32)
        self.transcribe(noise)

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> tuple[str, str | None]:
        """The utterance's text and language: decoded in `language`, else in
        --language, else in the language decided on the whole utterance
        (narrowed to --languages; no conversation to stick to)."""
        language = language or self.language
        if language is None and self.multilingual:
            language = self.choose_language(audio, None, self.policy.allowed)
        if self.short_window is not None and self.short_window.fits(audio):
            reused = self._rescored.get(language) if self._rescored_audio is audio else None
            result = reused or self.short_window.decode(audio, language)
            if result.silence:
                return "", result.language
            if not result.doubtful:
                return result.text, result.language
            logger.debug("short window doubtful (%r): decoding on the full window", result.text[:60])
            return self.retry_on_the_full_window(audio, language)
        return self.full_window(audio, language, **self.gen_kwargs)

    def full_window(self, audio: np.ndarray, language: str | None, **options: Any) -> tuple[str, str | None]:
        """faster-whisper's own decoding, on 30 s windows."""
        segments, info = self.model.transcribe(audio, language=language, vad_filter=False, **options)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        return text, language or info.language

    def retry_on_the_full_window(self, audio: np.ndarray, language: str | None) -> tuple[str, str | None]:
        """A doubtful short-window decode, again on the full window: one
        greedy decode, and faster-whisper's temperature ladder only if that
        one loops too.  The ladder also climbs on text the model finds
        unlikely, which is most lines of a language Whisper base knows
        poorly: up to six 30 s decodes, 19 s for one Czech line, for WER
        within sampling noise (benchmarks/RESULTS_stt_retry.md).  `retry_ladder` climbs it on
        every retry, as before.  Each decode writes no more tokens than the
        speech can hold (`token_budget`): a loop runs to Whisper's 448
        otherwise, a second or more per decode."""
        if self.retry_ladder:
            return self.full_window(audio, language, **self.gen_kwargs)
        options = {**self.gen_kwargs, "max_new_tokens": token_budget(audio)}
        text, detected = self.full_window(audio, language, **options, temperature=0.0)
        if looks_like_a_loop(text):
            logger.debug("full window loops too (%r): faster-whisper's temperature ladder", text[:60])
            return self.full_window(audio, language, **{**options, "temperature": ladder_above_zero(options)})
        return text, detected

    def choose_language(
        self,
        audio: np.ndarray,
        conversation: ConversationLanguage | None,
        allowed: tuple[str, ...] | None,
        utterance: int | None = None,
    ) -> str:
        """The language of a whole utterance (`STT.language_choice`): Whisper's
        vote narrowed to `allowed`, a decode of the leading languages where the
        vote is unsure, and the conversation's own language, which one unclear
        turn does not move."""
        if conversation is not None:
            conversation.begin(utterance)
        decoder = self.short_window
        if decoder is None or not decoder.fits(audio):
            _, info = self.model.transcribe(audio[: int(FULL_WINDOW_S * WHISPER_RATE)], vad_filter=False, beam_size=1)
            probabilities = dict(info.all_language_probs or [(info.language, 1.0)])
            likelihood = None
        else:
            probabilities = decoder.language_probabilities(audio)
            self._rescored_audio, self._rescored = audio, {}  # the decodes, for the transcript to reuse

            def likelihood(code: str) -> float:
                self._rescored[code] = decoder.decode(audio, code)
                return self._rescored[code].average_log_probability

        speech_s = len(audio) / WHISPER_RATE
        also = conversation.language if conversation else None
        scores = self.policy.scores(probabilities, likelihood, allowed, also, speech_s)
        chosen = self.policy.decide(scores, conversation, speech_s)
        if logger.isEnabledFor(logging.DEBUG):
            leading = sorted(probabilities, key=probabilities.get, reverse=True)[:3]
            logger.debug(
                "language of %.1f s: Whisper %s, scores %s, conversation %s -> %s",
                speech_s,
                {code: round(probabilities[code], 3) for code in leading},
                {code: round(score, 2) for code, score in sorted(scores.items(), key=lambda kv: -kv[1])[:3]},
                {code: round(p, 3) for code, p in (conversation.belief if conversation else {}).items() if p > 0.001},
                chosen,
            )
        return chosen

    def session_language(self, session: Session | None) -> tuple[str | None, tuple[str, ...] | None]:
        """(the fixed language or None to detect, the languages detection may
        choose from) for a conversation: its own settings, else the server's."""
        if not self.multilingual:
            return "en", None
        settings = session.settings if session is not None else None
        if settings is None or (settings.language is None and settings.languages is None):
            return self.language, self.policy.allowed
        if settings.language not in (None, "auto"):
            return settings.language, None
        # The client asked for detection ("auto", or the languages to choose from).
        return None, settings.languages or self.policy.allowed

    def overhear(self, audio: np.ndarray) -> tuple[str, bool]:
        """A short sound over the reply: its text, and whether Whisper's own
        tests say it is speech at all.  One decode on the short window, never
        the full window's second try: the answer is wanted now, and a doubt is
        itself the answer (a cough or a knock)."""
        if self.short_window is None or not self.short_window.fits(audio):
            text, _ = self.transcribe(audio)
            return text, True
        result = self.short_window.decode(audio, self.language or self.last_language)
        return result.text, not (result.silence or looks_like_a_loop(result.text))

    def decode_tail(self, tail: np.ndarray, known: str, language: str | None, with_words: bool) -> TailDecoding:
        """The incremental transcriber's decoder: one tail on the short window."""
        assert self.short_window is not None
        if not self.short_window.fits(tail):
            return TailDecoding("", language, doubtful=True)  # no agreement for 29 s: decode the turn whole
        result = self.short_window.decode(tail, language, known, with_words)
        # Whisper's own tests.  A tail is mostly padding, so the no-speech
        # probability alone runs high (~0.8) on clear speech: it only counts
        # together with unlikely text, as in Whisper.
        doubtful = looks_like_a_loop(result.text) or result.average_log_probability < LOW_AVERAGE_LOG_PROBABILITY
        return TailDecoding(result.text, result.language, result.words, result.silence, doubtful)

    def transcribe_turn(self, message: SpeechSegment, audio: np.ndarray) -> tuple[str, str | None]:
        """The turn's language, decided on the whole utterance (or fixed), and
        its text: the stable words plus a decode of the tail when it was
        followed while spoken in that language, else one decode of the whole turn."""
        session = message.session or (message.turn.session if message.turn is not None else None)
        fixed, allowed = self.session_language(session)
        state = self._state(message)
        language = fixed or self.choose_language(audio, state.language, allowed, message.speech_key[0])
        followed = self._followed(message, create=False)
        if self.incremental is None or followed is None:
            return self.transcribe(audio, language)
        if not followed.done:
            # No words before the tail yet: the tail is the whole turn, and a
            # plain decode of it is what the turn would get unfollowed (on the
            # 164 English clips, mostly short, a tail decode here cost 7.6% ->
            # 7.8% WER and 106 -> 133 ms at p50).
            text, language = self.transcribe(audio, language)
            followed.language = language
            self.incremental.heard_whole(followed, audio, text)
            return text, language
        if followed.language != language:
            logger.debug("followed in %s, decided %s: decoding the whole turn", followed.language, language)
            return self._decoded_whole(followed, audio, language)
        if self.incremental.hears_from_start(followed, audio):
            return self._decoded_whole(followed, audio, language)  # short: the tail's decode would hear it all
        result = self.incremental.finish(followed, audio)
        if result.doubtful:
            logger.debug("tail decode doubtful: decoding the whole turn")
            return self._decoded_whole(followed, audio, language)
        return result.text, language

    def _decoded_whole(self, followed: UtteranceTranscript, audio: np.ndarray, language: str) -> tuple[str, str | None]:
        """One decode of the whole turn, which the followed transcript restarts from (at this pause)."""
        text, language = self.transcribe(audio, language)
        self.incremental.restart_at_pause(followed, audio, text)
        followed.language = language
        return text, language

    def process(
        self, message: SpeechSegment | SpeechProgress
    ) -> Iterator[Transcript | EndOfResponse | PartialTranscript]:
        if isinstance(message, SpeechProgress):
            yield from self._follow(message)
            return
        if isinstance(message, OverheardSpeech):
            message.heard.answer(*self.overhear(segment_audio(message, WHISPER_RATE)))
            return
        audio = segment_audio(message, WHISPER_RATE)
        turn = message.turn
        state = self._state(message)
        if message.provisional:
            # The speaker paused: transcribe now, in case the pause ends the turn.
            began = time.perf_counter()
            text, language = self.transcribe_turn(message, audio)
            if turn is None:
                # Keep it for the final segment, if it ends at the same sample.
                state.speculation = (message.speech_key, text, language, began, time.perf_counter())
                return
            # A speculative turn: answer it now; the VAD confirms or cancels it.
            turn.mark("stt_start", began)
            yield from self._hand_on(turn, text, language)
            return
        if "transcript_ready" in turn.marks or turn.error:
            if "transcript_ready" in turn.marks:
                log_heard(turn)  # confirmed now: said once, under its number
            return  # a speculative turn, already answered (or failed) at the pause
        speculation, state.speculation = state.speculation, None
        if speculation is not None and speculation[0] == message.speech_key:
            # Nothing was said after the pause: reuse it; the turn's STT time is
            # the speculative transcription's, started before the end of turn.
            _, text, language, began, ended = speculation
            turn.mark("stt_start", began)
            turn.mark("stt_end", ended)
            logger.debug("turn %d: speculative transcript reused", turn.turn_id)
        else:
            turn.mark("stt_start")
            text, language = self.transcribe_turn(message, audio)
        yield from self._hand_on(turn, text, language)

    def _follow(self, message: SpeechProgress) -> Iterator[PartialTranscript]:
        """The user is still speaking: transcribe what is new, and pass the
        words that became stable on to the LLM."""
        if self.incremental is None or (message.session is not None and message.session.closed):
            return  # nothing to follow with, or nobody left to answer
        if self._newer_speech_waiting(message.session):
            return  # newer audio of this conversation is already waiting: decode that instead
        followed = self._followed(message, create=True)
        assert followed is not None
        result = self.incremental.progress(followed, segment_audio(message, WHISPER_RATE))
        if result.newly_stable:
            if message.session is not None:  # live captions for the client (realtime mode)
                message.session.observer.transcript_progress(message.session, followed.stable_text)
            yield PartialTranscript(followed.stable_text, followed.language, message.speech_key, message.session)

    def _newer_speech_waiting(self, session: Session | None) -> bool:
        """Whether this conversation's next speech (more progress, a pause or
        the end of the turn) is queued already; other conversations' messages
        do not count, so a busy server still follows each speaker."""
        return self.queued(
            lambda queued: isinstance(queued, SpeechProgress | SpeechSegment) and queued.session is session
        )

    def _hand_on(self, turn: Turn, text: str, language: str | None) -> Iterator[Transcript | EndOfResponse]:
        if language:
            self.last_language = language
        yield from transcript_messages(turn, text, language or self.last_language)

    def _state(self, message: SpeechSegment | SpeechProgress) -> ConversationSTT:
        """What this STT keeps of the message's conversation (its own
        session's state, so two clients' pauses and speech never mix)."""
        turn = getattr(message, "turn", None)
        session = message.session or (turn.session if turn is not None else None)
        return session.state("stt", ConversationSTT) if session is not None else self._default_state

    def _followed(self, message: SpeechSegment | SpeechProgress, create: bool) -> UtteranceTranscript | None:
        """The transcript followed while this message's utterance was spoken
        (None if it was not).  One utterance per conversation is followed: a
        new speech start replaces the last one; the same start (a pause, or
        speech resumed and joined to the turn just handed on) continues it,
        so a long turn is never decoded from its start again."""
        state = self._state(message)
        start = message.speech_key[0]
        if state.followed is not None and state.followed_start == start:
            return state.followed
        if not create or self.incremental is None:
            return None
        # Followed in the conversation's language (detected on the first words
        # when it has none yet); the end of the turn decides on all of it.
        fixed, _ = self.session_language(message.session)
        state.followed_start = start
        state.followed = self.incremental.new_utterance(fixed or state.language.language)
        return state.followed

    def on_reset(self) -> None:
        self._default_state = ConversationSTT()
