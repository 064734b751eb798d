"""A sound over the assistant's reply: a backchannel, a noise, or a real interruption?

Listeners talk while they listen: "uh-huh", "yeah", "right", "I see" say
*go on*, and a cough, a laugh, a breath or a knock on the door say nothing
at all.  Stopping the reply for any of them (the seed's barge-in: 200 ms of
speech-like sound) cuts the assistant off mid-sentence for nothing.  So a
sound over the reply first only pauses it; the sound is transcribed while it
goes on (the STT answers an `OverheardSpeech` request at once, into the
`Overheard` it carries), and its words decide:

- words that are not a backchannel ("wait", "stop", "no, I meant...", a new
  question): a real interruption, the reply stops as soon as such a word is
  settled (below), or once the sound outlasts the timeout;
- only backchannel words, or no words at all (a noise, or what Whisper
  itself finds unlikely to be speech), and the sound is over: the reply
  resumes where it paused, and the sound is no turn of its own;
- one word that takes no floor ("Brie." for a "right", "you" for two
  knocks), where the mic carries no echo of the reply (socket, realtime):
  the same; short real interruptions are floor words ("stop", "wait", "no",
  "sorry"), and longer ones go on into more words.

A transcription asked while the sound goes on hears it cut off: its last
word may be a fragment Whisper completes as it can ("I" of "I see", "M." or
"Emma." of "mm-hmm"; 8 of the interruption set's 42 backchannels and noises
stopped the reply on such a fragment).  So such a word is settled only when
another word follows it, when the next transcription says it again, or when
the transcription covers the whole sound once it is over.

The pause never lasts longer than `--false_interruption_timeout_ms`: when it
runs out, a sound still going on is taken as the user taking the floor, and
anything else lets the reply go on; a sound that is over but whose words are
still being transcribed (a busy machine) is judged once they come, for up to
three timeouts, so a question is not thrown away unheard.  The state machine here is free of
models and clocks (`Overlap.step` is given the time), so it is tested alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from conversation.turn import Turn
from utils.messages import Overheard

# Listener responses that ask the speaker to go on, as Whisper writes them
# (lower case, punctuation and hyphens removed), and the laughs and
# hesitations it writes for non-speech.  A sound whose words are all of
# these is a backchannel.  English first (the packaged voice's language),
# with the commonest short ones of a few other languages.
BACKCHANNEL_PHRASES = frozenset(
    phrase.strip()
    for phrase in """uh huh|uhhuh|uh hum|mm hmm|mmhmm|mm hm|mhm|mhmm|hmm|hm|mm|mmm|mm mm|um|uh|ah|oh|ooh|aha|ah ha|huh|
    yeah|yes|yep|yup|ya|yah|yea|okay|ok|o k|kay|right|alright|all right|sure|i see|oh i see|got it|gotcha|
    i know|cool|nice|wow|great|good|fine|true|exactly|indeed|totally|absolutely|really|interesting|
    makes sense|that makes sense|sounds good|of course|thank you|thanks|ha|haha|hahaha|ha ha|ha ha ha|heh|hehe|
    ja|jo|oui|si|sí|da|ano|nou|precies|klopt|d'accord|genau|vale|claro|tak""".split("|")
)
_LONGEST_PHRASE = max(len(phrase.split()) for phrase in BACKCHANNEL_PHRASES)
# The first words of the longer phrases ("i" of "i see", "thank" of "thank you").
_PHRASE_BEGINNINGS = frozenset(
    " ".join(phrase.split()[:size]) for phrase in BACKCHANNEL_PHRASES for size in range(1, len(phrase.split()))
)
# A hum, however Whisper spells it: "m", "mmm", "m h m" (of "mm-hmm"), "hmmm", and a hum with
# a letter of its cut-off tail ("MMI." of "mm-hmm" heard 400 ms in).
_HUM = re.compile(r"[mh]*m[mh]*|(?:mm|hm)[a-z]")
# Words that take the floor even alone ("No.", "Wait!") or after a hum ("Mm, no.", "Hmm, wait",
# "Hm, what?"); English first, then Dutch and Czech.
_FLOOR_WORDS = frozenset(
    """no nope nah stop wait hold hang sorry pause pardon excuse but actually hey listen enough quiet
    what why how who where when which again repeat slower louder
    nee wacht maar wat waarom hoe wie waar wanneer hé momentje genoeg stil
    ne počkej počkejte stůj stačí ale promiň promiňte co proč jak kdo kde kdy moment ticho""".split()
)
# What Whisper writes for sounds that are not words: (coughs), [laughter], *sniff*, ♪.
_ANNOTATION = re.compile(r"\([^)]*\)|\[[^\]]*\]|\*[^*]*\*|♪+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+")


class Heard(Enum):
    NOTHING = "no words"  # a noise: a cough, a knock, a breath, or silence
    BACKCHANNEL = "backchannel"
    ECHO = "its own voice"  # words, but in audio the echo canceller let through (local mode)
    LONE_WORD = "a lone word that takes no floor"  # "Brie." of "right": a listener's response misheard
    WORDS = "words"  # anything else: the user has something to say


# A window whose mic audio correlates this much with what was played is the
# assistant's own voice leaking through the echo canceller (audio/echo_leak.py),
# and a sound most of whose windows are is no user's.
ECHO_LEAK = 0.25
ECHO_SHARE = 0.5
MIN_MEASURED = 3
MAX_VOICED_AFTER_ECHO = 5  # windows (32 ms): the VAD's hangover once the echo stopped


def is_echo(echo_leak: float | None) -> bool:
    """Whether a window the mic measured so is the reply's own voice."""
    return echo_leak is not None and echo_leak >= ECHO_LEAK


def words_of(text: str) -> list[str]:
    """The spoken words of a transcript, lower case, without Whisper's
    annotations of non-speech or its punctuation; hyphens split words
    ("uh-huh" -> "uh", "huh")."""
    text = _ANNOTATION.sub(" ", text.lower()).replace("-", " ")
    return _WORD.findall(text)


def classify(text: str, likely_speech: bool = True) -> Heard:
    """What a transcript of a sound over the reply amounts to.  Text that
    Whisper itself doubts (`likely_speech` False: no speech likely and the
    text unlikely) is no words: its hallucinations over a cough ("you",
    "Thank you.") say nothing."""
    words = words_of(text)
    if not words or not likely_speech:
        return Heard.NOTHING
    return Heard.BACKCHANNEL if backchannel_words(words) else Heard.WORDS


def lone_word(text: str) -> bool:
    """Whether `text` is one word that does not take the floor ("Brie.",
    "Hi.", "you"; not "Stop." or "Sorry?").  Over a reply, a listener who
    means to speak says one of the floor words or more than one word; a lone
    other word is what Whisper base made of a short response or a noise
    (the interruption set through socket mode: "Brie." for "right" three
    times, "you" for two knocks; every short real interruption was a floor
    word)."""
    words = words_of(text)
    return len(words) == 1 and words[0] not in _FLOOR_WORDS


def backchannel_words(words: list[str], unfinished: bool = False) -> bool:
    """Whether `words` are backchannel phrases one after another; with
    `unfinished`, the last may also be a phrase's beginning whose other
    words are still to come ("oh, i" of "oh, i see").

    A hum followed by one word that does not take the floor is a backchannel
    too: Whisper base hears the "hmm" of a synthesized "mm-hmm" as a word
    ("M M Thun.", "M.M. Van", "mm film": two of the interruption set's 30
    backchannels stopped the reply so), and a listener who means to speak
    says more than one word after a hum, or a word of `_FLOOR_WORDS`."""
    hums = next((index for index, word in enumerate(words) if not _HUM.fullmatch(word)), len(words))
    if 0 < hums == len(words) - 1 and words[-1] not in _FLOOR_WORDS:
        return True
    position = 0
    while position < len(words):
        for size in range(min(_LONGEST_PHRASE, len(words) - position), 0, -1):
            phrase = " ".join(words[position : position + size])
            at_end = position + size == len(words)
            if (
                phrase in BACKCHANNEL_PHRASES
                or _HUM.fullmatch(phrase.replace(" ", ""))
                or (unfinished and at_end and phrase in _PHRASE_BEGINNINGS)
            ):
                position += size
                break
        else:
            return False
    return True


def settled_words(words: list[str], before: list[str]) -> list[str]:
    """The words of a transcription of a sound still going on that the
    sound cannot change any more: all but the last (which the cut may have
    made a fragment), or as many as the transcription `before` it (of less
    of the sound) said the same."""
    agreed = 0
    while agreed < min(len(words), len(before)) and words[agreed] == before[agreed]:
        agreed += 1
    return words[: max(agreed, len(words) - 1)]


class Step(Enum):
    WAIT = "wait"
    PROBE = "probe"  # transcribe the sound so far
    INTERRUPT = "interrupt"
    RESUME = "resume"


@dataclass
class OverlapRules:
    """The knobs of the judgement (ms of audio, except the timeout)."""

    timeout_ms: int = 1500  # --false_interruption_timeout_ms: the longest the reply stays paused
    guard_ms: int = 200  # --interrupt_min_speech_ms: no stop before this much speech
    probe_every_ms: int = 240  # transcribe the sound again after this much more of it
    first_probe_ms: int = 160  # the first transcription, this far into the sound
    confirm_after_ms: int = 96  # words not yet settled: transcribe again after this much more
    ended_after_ms: int = 160  # this much silence after it and the sound is over
    words_wait_factor: float = 3.0  # a sound over by the timeout: its words are awaited this many timeouts


@dataclass
class Overlap:
    """One sound over the reply of `turn`, from its first window to its verdict.

    The VAD feeds `step` each window with how much of the sound was voiced,
    how long it has been quiet since, and the time; it answers what to do
    next.  `heard` is the transcription asked last (None before the first),
    covering the first `probed_ms` of voiced sound.  The sound's audio (from
    its pre-roll on), its voiced span in the stream, and its utterance if the
    VAD ended it before the verdict (`held`) are kept here too."""

    turn: Turn
    onset_ms: int  # stream position of the sound's start, for the API's audio_start_ms
    started_at: float  # when the reply paused
    rules: OverlapRules = field(default_factory=OverlapRules)
    heard: Overheard | None = None
    probed_ms: float = 0.0
    heard_before: list[str] = field(default_factory=list)  # the words of the transcription before `heard`
    verdict: Step | None = None
    reason: str = ""
    audio: list[np.ndarray] = field(default_factory=list)
    first_voiced: int = 0  # stream positions (samples)
    last_voiced: int = 0
    held: object | None = None  # the VAD's Utterance of the sound, ended before the verdict
    measured_windows: int = 0  # voiced windows of the sound the mic measured the reply's echo in
    echo_windows: int = 0  # of those, the ones the echo canceller let the reply through in
    # Voiced windows after the measures stopped: the reply is paused and its echo over (the
    # played audio fell silent), so what still sounds is no echo of it.
    voiced_after_echo: int = 0
    strongest_echo: float = 0.0  # the highest measure among them, for the log: how near a leak came

    def hear(self, window: np.ndarray, last_voiced: int | None, echo_leak: float | None = None) -> None:
        """One more window of the sound; `last_voiced`: the VAD's last voiced
        position while it still follows the sound (None once it let it go);
        `echo_leak`: how much of the window is the reply's own echo, where
        the mic could tell (audio/echo_leak.py)."""
        self.audio.append(window)
        voiced = last_voiced is not None and last_voiced > self.last_voiced
        if last_voiced is not None:
            self.last_voiced = max(self.last_voiced, last_voiced)
        if not voiced:
            return
        if echo_leak is not None:
            self.measured_windows += 1
            self.echo_windows += is_echo(echo_leak)
            self.strongest_echo = max(self.strongest_echo, echo_leak)
        elif self.measured_windows:
            self.voiced_after_echo += 1

    @property
    def echo_share(self) -> float:
        """The share of the sound's measured voiced windows that were the
        reply's own echo (0 with fewer than `MIN_MEASURED` of them: too
        little to tell; windows before the echo delay is known have no
        measure)."""
        if self.measured_windows < MIN_MEASURED:
            return 0.0
        return self.echo_windows / self.measured_windows

    @property
    def own_echo(self) -> bool:
        """Whether the sound is the reply's own voice leaking through the
        mic's echo canceller: most of it measured as echo, and over once the
        paused reply's echo was.  A user talking over a leak (as loud as
        they are, 55-77% of their windows measure as echo in a simulated
        room) goes on after it, and is heard."""
        return self.echo_share >= ECHO_SHARE and self.voiced_after_echo <= MAX_VOICED_AFTER_ECHO

    def audio_to_transcribe(self, position: int, tail: int) -> np.ndarray:
        """The sound so far, up to `tail` samples after its last voiced one
        (`position`: the stream position of the end of `audio`)."""
        audio = np.concatenate(self.audio)
        extra = position - self.last_voiced - tail
        return audio[: len(audio) - extra] if extra > 0 else audio

    def step(self, voiced_ms: float, silent_ms: float, now: float) -> Step:
        """What to do after this window.  `silent_ms`: silence since the
        sound's last voiced window (0 while it is voiced)."""
        if self.verdict is not None:
            return self.verdict
        rules = self.rules
        heard = self._heard()
        ended = silent_ms >= rules.ended_after_ms
        covered = self.heard is not None and self.probed_ms >= voiced_ms
        transcribing = self.heard is not None and not self.heard.done.is_set()
        whole = ended and covered  # the transcription heard all of the sound
        if heard is Heard.WORDS and (whole or (voiced_ms >= rules.guard_ms and self._words_settled())):
            return self._decide(Step.INTERRUPT, f"words: {self.heard.text!r}")
        if whole and heard is Heard.ECHO:
            return self._decide(Step.RESUME, f"{heard.value}: {self.heard.text!r} ({self.echo_summary()})")
        if whole and heard is not None:
            return self._decide(Step.RESUME, f"{heard.value}: {self.heard.text!r}")
        waited_ms = (now - self.started_at) * 1000
        if waited_ms >= rules.timeout_ms:
            if not ended:  # the reply has been paused this long: its echo is over, whatever began the sound
                return self._decide(Step.INTERRUPT, "still sounding at the timeout")
            # The reply plays on from its deadline (the pause never outlasts the
            # timeout), but a sound whose words are on their way is not thrown
            # away unheard: on a busy machine the transcription came late, and a
            # question with a pause in it was resumed over and lost.
            if waited_ms < rules.words_wait_factor * rules.timeout_ms and (transcribing or not covered):
                return Step.WAIT if transcribing else Step.PROBE
            return self._decide(Step.RESUME, "no words by the timeout")
        if transcribing:
            return Step.WAIT  # one transcription at a time
        if ended and not covered:
            return Step.PROBE
        if self.heard is None:
            due = rules.first_probe_ms
        else:  # words not settled yet are heard again soon: they may be a fragment, or the interruption
            soon = heard in (Heard.WORDS, Heard.LONE_WORD)  # a lone word may be an interruption's first
            due = self.probed_ms + (rules.confirm_after_ms if soon else rules.probe_every_ms)
        return Step.PROBE if voiced_ms >= due else Step.WAIT

    def probing(self, heard: Overheard, voiced_ms: float) -> None:
        """A transcription of the first `voiced_ms` of the sound was asked for."""
        before = self.heard
        if before is not None and before.done.is_set() and before.likely_speech:
            self.heard_before = words_of(before.text)
        self.heard, self.probed_ms = heard, voiced_ms

    def _words_settled(self) -> bool:
        """Whether the words heard so far, less any fragment the cut made,
        already say something no backchannel says (the sound goes on)."""
        settled = settled_words(words_of(self.heard.text), self.heard_before)
        return bool(settled) and not backchannel_words(settled, unfinished=True)

    def _heard(self) -> Heard | None:
        heard = self.heard
        if heard is None or not heard.done.is_set():
            return None
        verdict = classify(heard.text, heard.likely_speech)
        if verdict is Heard.WORDS and self.own_echo:
            return Heard.ECHO  # words Whisper made of the reply's own echo: no user said them
        if verdict is Heard.WORDS and not self.measured_windows and lone_word(heard.text):
            # Where the mic carries no echo of the reply.  Through a local echo canceller a
            # real "Stop." came out "Scott." or "Start.", and "No." "Milk": there a lone word stops.
            return Heard.LONE_WORD
        return verdict

    def echo_summary(self) -> str:
        return (
            f"{self.echo_windows} of {self.measured_windows} measured windows its echo "
            f"(strongest {self.strongest_echo:.2f}, {ECHO_LEAK} counts), {self.voiced_after_echo} voiced after"
        )

    def _decide(self, verdict: Step, reason: str) -> Step:
        self.verdict, self.reason = verdict, reason
        return verdict
