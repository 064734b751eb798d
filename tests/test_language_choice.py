"""How a turn's language is chosen: narrowed, whole utterance, sticky but following a real switch (no model)."""

import math

import pytest

from STT.language_choice import ConversationLanguage, LanguagePolicy, narrowed, parse_languages


def test_narrowing_renormalises_over_the_expected_languages():
    shares = narrowed({"pl": 0.7, "cs": 0.2, "en": 0.05, "sk": 0.05}, ("en", "nl", "cs"))
    assert set(shares) == {"en", "nl", "cs"}
    assert max(shares, key=shares.get) == "cs"
    assert math.isclose(sum(shares.values()), 1.0)
    assert shares["nl"] > 0  # a language Whisper gave nothing still has a (tiny) chance


def test_without_a_conversation_the_best_language_wins():
    policy = LanguagePolicy()
    assert policy.decide(policy.scores({"de": 0.6, "nl": 0.4})) == "de"
    assert policy.decide(policy.scores({"de": 0.6, "nl": 0.4}, allowed=("en", "nl"))) == "nl"


def settled(language: str, policy: LanguagePolicy, turns: int = 3) -> ConversationLanguage:
    """A conversation that has spoken `language` clearly for a few turns."""
    conversation = ConversationLanguage()
    for _ in range(turns):
        policy.decide(policy.scores({language: 0.9, "en": 0.05, "de": 0.05}), conversation, 3.0)
    assert conversation.language == language
    return conversation


def test_one_unclear_or_short_turn_does_not_move_the_conversation_but_a_clear_one_does():
    policy = LanguagePolicy(switch_rate=0.03, evidence_weight=1.0)
    conversation = settled("nl", policy)
    assert policy.decide(policy.scores({"de": 0.6, "nl": 0.3, "en": 0.1}), conversation, 3.0) == "nl"
    # Very sure, but half a second of speech ("Ja."): not enough to switch on.
    conversation = settled("nl", policy)
    assert policy.decide(policy.scores({"en": 0.999, "nl": 0.001}), conversation, 0.4) == "nl"
    # The same certainty over three seconds: a real switch, followed at once.
    assert policy.decide(policy.scores({"en": 0.9999, "nl": 0.0001}), conversation, 3.0) == "en"


def test_a_speaker_who_switches_is_followed_within_two_turns():
    policy = LanguagePolicy(switch_rate=0.03, evidence_weight=1.0)
    conversation = settled("en", policy)
    leaning_dutch = {"nl": 0.9, "en": 0.08, "de": 0.02}
    first = policy.decide(policy.scores(leaning_dutch), conversation, 3.0)
    second = policy.decide(policy.scores(leaning_dutch), conversation, 3.0)
    assert second == "nl" and conversation.history[-2:] in (["en", "nl"], ["nl", "nl"]), first


def test_the_same_utterance_decided_again_counts_once():
    """A pause's transcript decides, then the end of the same turn decides
    again: that is one turn leaning to German, not two in a row."""
    policy = LanguagePolicy(switch_rate=0.03, evidence_weight=1.0)
    conversation = settled("nl", policy)
    belief = dict(conversation.belief)
    leaning_german = {"de": 0.8, "nl": 0.2}
    for _ in range(3):
        conversation.begin(utterance=1000)
        policy.decide(policy.scores(leaning_german), conversation, 3.0)
    once = ConversationLanguage(belief=dict(belief))
    once.begin(utterance=1000)
    policy.decide(policy.scores(leaning_german), once, 3.0)
    assert conversation.belief == once.belief
    assert len(conversation.history) == 4  # three settled turns and this one


def test_an_unsure_vote_is_settled_by_decoding_the_leading_languages():
    """Whisper's language token says Polish by a little; decoded as Polish the
    words are unlikely, as Czech fluent: Czech."""
    policy = LanguagePolicy(rescore_below=0.8, rescore_count=2)
    likelihood = {"pl": -1.4, "cs": -0.3, "sk": -0.9}
    asked = []

    def decode(code):
        asked.append(code)
        return likelihood[code]

    scores = policy.scores({"pl": 0.5, "cs": 0.4, "sk": 0.1}, decode)
    assert policy.decide(scores) == "cs"
    assert sorted(asked) == ["cs", "pl"]  # only the leading two
    asked.clear()
    policy.scores({"pl": 0.95, "cs": 0.05}, decode)
    assert asked == []  # a sure vote decodes nothing more


def test_a_word_or_two_is_not_settled_by_decoding():
    """A one-word turn ("six") decodes about as fluently in any language
    (one Japanese token is likelier than one English): an unsure vote on so
    little speech stays Whisper's vote; from `rescore_from_s` the decode joins."""
    policy = LanguagePolicy()
    asked = []

    def decode(code):
        asked.append(code)
        return {"en": -0.4, "ja": -0.05}[code]

    vote = {"en": 0.76, "ja": 0.14, "pt": 0.10}
    assert policy.decide(policy.scores(vote, decode, speech_s=0.8)) == "en"
    assert asked == []
    assert policy.decide(policy.scores(vote, decode, speech_s=policy.rescore_from_s)) == "ja"
    assert sorted(asked) == ["en", "ja"]


@pytest.mark.parametrize(
    "spec,codes", [("en,nl, cs", ("en", "nl", "cs")), ("", None), (" , ", None), ("nl,nl", ("nl",)), (None, None)]
)
def test_languages_flag_parsing(spec, codes):
    assert parse_languages(spec) == codes


def test_with_the_expected_languages_a_close_relative_counts_for_the_expected_one():
    """Whisper hears Czech as Polish: with en, nl, cs expected that is evidence
    for Czech (measured: a Czech line at 89% Polish left the conversation
    undecided, and the next line's unsure English vote took it)."""
    policy = LanguagePolicy(allowed=("en", "nl", "cs"))
    heard_as_polish = {"pl": 0.894, "cs": 0.028, "sk": 0.021, "en": 0.002}
    conversation = ConversationLanguage()
    assert policy.decide(policy.scores(heard_as_polish), conversation, 5.4) == "cs"
    assert conversation.belief["cs"] > 0.7
    unsure_english = {"en": 0.292, "he": 0.151, "ar": 0.134, "cs": 0.017}
    assert policy.decide(policy.scores(unsure_english), conversation, 2.8) == "cs"
    # German is Dutch's relative, not English's: with Dutch not expected it counts for nothing.
    assert policy.decide(policy.scores({"de": 0.9, "en": 0.05, "nl": 0.05}, allowed=("en", "nl"))) == "nl"
    assert policy.decide(policy.scores({"de": 0.9, "en": 0.06, "cs": 0.04}, allowed=("en", "cs"))) == "en"
