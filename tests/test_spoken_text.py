"""What the voice is given: LLM text rewritten into words (LLM/spoken_text.py).

The pure function alone here; tests/test_llm_real.py checks real model output
through the LLM handler, where the rewrite is applied to every sentence.
"""

import re

import pytest

from LLM.sentences import SentenceAggregator
from LLM.spoken_text import speakable, strip_markdown

# Nothing a reader sees but a listener should not hear.
SYMBOLS = re.compile(r"[*#`_|~<>\[\]{}$€£¥%°•]|https?://|www\.|\d")


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("**Paris** is the _capital_ of France.", "Paris is the capital of France."),
        ("# Tips\n- Sleep early\n- Drink **water**", "Tips. Sleep early. Drink water"),
        ("1. Walk daily.\n2) Run twice a week", "Walk daily. Run twice a week"),
        ("> A quote\n\n---\n~~old~~ new", "A quote. old new"),
        ("Call `print()` to see it.", "Call print() to see it."),
        ("Here:\n```python\nprint('hi')\n```\nDone.", "Here: Done."),
        ("Read [the guide](https://example.com/guide) first.", "Read the guide first."),
        ("![a cat](cat.png) Cute.", "a cat Cute."),
        ("| Planet | Moons |\n|---|---|\n| Mars | 2 |", "Planet, Moons. Mars, 2"),
        ("snake_case_name stays", "snake_case_name stays"),
    ],
)
def test_markdown_becomes_plain_text(written: str, spoken: str):
    assert strip_markdown(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Dr. Smith lives 3.5 km away.", "Doctor Smith lives three point five kilometers away."),
        ("It costs $5.50 or $1,000.", "It costs five dollars and fifty cents or one thousand dollars."),
        ("About €10, £1 and $2 million.", "About ten euros, one pound and two million dollars."),
        ("Water boils at 100°C, or 212 °F.", "Water boils at one hundred degrees Celsius, or two hundred and twelve "
         "degrees Fahrenheit."),
        ("It is -5°C and 1 degree warmer.", "It is minus five degrees Celsius and one degree warmer."),
        ("About 71% is water.", "About seventy-one percent is water."),
        ("A spider has 8 legs.", "A spider has eight legs."),
        ("There are 1,000,000 people.", "There are one million people."),
        ("He landed in 1969, on July 20th.", "He landed in nineteen sixty-nine, on July twentieth."),
        ("Meet at 10:30 am or 9 p.m. or 7:05.", "Meet at ten thirty a m or nine p m or seven oh five."),
        ("It runs 5-10 km at 60 km/h and weighs 1 kg.",
         "It runs five to ten kilometers at sixty kilometers per hour and weighs one kilogram."),
        ("Add 1/2 cup, e.g. flour, etc.", "Add one half cup, for example, flour, et cetera."),
        ("Mr. Brown met Mrs. Green in St. Louis, No. 5.",
         "Mister Brown met Missus Green in Saint Louis, number five."),
        ("2 + 2 = 4", "two plus two equals four"),
        ("Spend < $20 or > 5%.", "Spend less than twenty dollars or more than five percent."),
        ("It opens at 9:00 a.m.", "It opens at nine a m."),
        ("A 6 ft man is 2 feet taller.", "A six feet man is two feet taller."),
    ],
)  # fmt: skip
def test_english_numbers_units_and_abbreviations_are_read_as_words(written: str, spoken: str):
    assert speakable(written) == spoken


def test_words_with_digits_and_version_numbers_are_left_to_the_voice():
    assert speakable("CO2 and H2O, version 3.5.1.") == "CO2 and H2O, version 3.5.1."


def test_a_url_is_said_as_its_domain_and_an_email_is_spelled_out():
    assert speakable("See https://www.example.com/path?x=1.") == "See example dot com."
    assert speakable("Mail john.doe@example.org now") == "Mail john dot doe at example dot org now"


def test_emoji_are_dropped_and_emoji_alone_leave_nothing():
    assert speakable("Great question! 😀🎉 Here you go 👍") == "Great question! Here you go"
    assert speakable("👍🏽🎉") == ""
    assert speakable("```\ncode only\n```") == ""


def test_other_languages_get_whole_numbers_in_their_own_words_and_nothing_english():
    assert speakable("Es gibt **24** Stunden.", "de") == "Es gibt vierundzwanzig Stunden."
    assert speakable("Il y a 7 jours, 3,5 km.", "fr-auto") == "Il y a sept jours, 3,5 km."
    assert speakable("Dr. Who 5 km", "xx") == "Dr. Who 5 km"  # num2words does not know it: digits stay


def test_markdown_heavy_answer_leaves_no_symbol():
    written = (
        "## Top 3 tips 🌟\n\n1. **Sleep** 8 hours (see https://sleep.org).\n2. Keep it at 18°C.\n"
        "- Spend < $20 on `apps`\n* 50% less _caffeine_"
    )
    spoken = speakable(written)
    assert not SYMBOLS.search(spoken), spoken
    assert "eight hours" in spoken and "eighteen degrees Celsius" in spoken and "fifty percent" in spoken


def test_the_sentence_splitter_keeps_decimals_and_abbreviations_whole_when_streamed():
    """Tokens arrive one by one: the '.' of '3.5' and of 'Dr.' must not end a
    sentence before the rewrite sees it whole."""
    text = "Dr. Smith walked 3.5 km at 10:30 am. It cost $5.50, about 1,000 yen. Done."
    aggregator = SentenceAggregator()
    sentences = [s for token in re.findall(r"\S+\s*", text) for s in aggregator.push(token)]
    sentences += list(aggregator.flush())
    assert sentences == ["Dr. Smith walked 3.5 km at 10:30 am.", "It cost $5.50, about 1,000 yen.", "Done."]
    assert [speakable(s) for s in sentences] == [
        "Doctor Smith walked three point five kilometers at ten thirty a m.",
        "It cost five dollars and fifty cents, about one thousand yen.",
        "Done.",
    ]


def test_speakable_is_stable_on_its_own_output():
    once = speakable("**Dr. Smith** ran 3.5 km in 1969 for $5 🎉")
    assert speakable(once) == once


def test_the_shared_answer_loop_speaks_words_and_the_chat_keeps_the_written_reply():
    """Every LLM backend answers through LLM/answer_loop.py: the TTS gets the
    spoken form, the turn records it, the chat remembers what the model wrote,
    and a sentence with nothing to say (emoji only) is not sent at all."""
    import threading

    from conversation.chat import Chat
    from conversation.turn import Turn
    from LLM.answer_loop import answer_transcript
    from utils.messages import EndOfResponse, LLMSentence, Transcript

    chat = Chat(size=2)
    pieces = ["**Water** boils", " at 100°C.", " 🎉🎉.", " It costs $5", " a bottle."]
    turn = Turn()
    out = list(answer_transcript(Transcript("Tell me", "en", turn), chat, lambda _: iter(pieces), threading.Event()))
    sentences = [m.text for m in out if isinstance(m, LLMSentence)]
    assert sentences == ["Water boils at one hundred degrees Celsius.", "It costs five dollars a bottle."]
    assert isinstance(out[-1], EndOfResponse) and turn.reply == " ".join(sentences)
    assert chat.messages()[-1] == {"role": "assistant", "content": "Water boils at 100°C. 🎉🎉. It costs $5 a bottle."}


@pytest.mark.parametrize(
    "written,language,spoken",
    [
        ("Het is 3,5 km en kost €5,50.", "nl", "Het is drie komma vijf kilometer en kost vijf euro vijftig."),
        ("Om 10:30 uur, bijv. morgen.", "nl", "Om tien uur dertig, bijvoorbeeld morgen."),
        (
            "Er wonen 1.000.000 mensen, ca. 25% meer.",
            "nl",
            "Er wonen een miljoen mensen, circa vijfentwintig procent meer.",
        ),
        (
            "Het is 21 °C op de 3e dag, 5-10 min.",
            "nl",
            "Het is eenentwintig graden Celsius op de derde dag, vijf tot tien minuten.",
        ),
        (
            "Mail jan@example.nl of zie www.example.nl.",
            "nl",
            "Mail jan apenstaartje example punt nl of zie example punt nl.",
        ),
        ("Je to 3,5 km a stojí 150 Kč.", "cs", "Je to tři celé pět kilometru a stojí sto padesát korun."),
        ("Teplota je -2 °C, např. v 10:30.", "cs", "Teplota je mínus dva stupně Celsia, například v deset třicet."),
        ("Stojí to 2 € nebo 1 €, tj. 2 koruny.", "cs-auto", "Stojí to dvě eura nebo jedno euro, to jest dvě koruny."),
        ("Praha má 1 300 000 obyvatel, 21 %.", "cs", "Praha má milion třista tisíc obyvatel, dvacet jedna procent."),
    ],
)
def test_dutch_and_czech_numbers_units_and_abbreviations_are_read_in_their_language(written, language, spoken):
    """Before, only whole numbers became words: '3,5 km', '€5,50', '150 Kč'
    stayed symbols, '10:30' became 'tien:dertig', 'bijv.' and 'tj.' stayed
    abbreviations, and Czech 'two' did not agree with its noun ('dva koruny')."""
    assert speakable(written, language) == spoken
