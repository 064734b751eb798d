"""The sentence aggregator alone: text pieces in, sentences out."""

from LLM.sentences import SentenceAggregator


def feed(pieces: list[str], first_clause_words: int = 0) -> tuple[list[list[str]], list[str]]:
    aggregator = SentenceAggregator(first_clause_words=first_clause_words)
    released = [list(aggregator.push(piece)) for piece in pieces]
    return released, list(aggregator.flush())


def test_a_sentence_is_released_when_the_next_one_starts():
    released, rest = feed(["The capital", " of France is Paris", ".", " It is", " big."])
    assert released == [[], [], [], ["The capital of France is Paris."], []]
    assert rest == ["It is big."]


def test_abbreviations_and_decimals_do_not_split():
    released, rest = feed(["Dr. Smith lives 3.5 km away. ", "He is nice."])
    assert [s for batch in released for s in batch] + rest == ["Dr. Smith lives 3.5 km away.", "He is nice."]


def test_question_and_exclamation_marks_end_sentences():
    released, rest = feed(["Really? ", "Yes! ", "Fine"])
    assert [s for batch in released for s in batch] == ["Really?", "Yes!"]
    assert rest == ["Fine"]


def test_markdown_is_not_read_aloud():
    _, rest = feed(["**Paris** is the _capital_."])
    assert rest == ["Paris is the capital."]


def test_list_markers_are_dropped():
    released, rest = feed(["1. Sleep early. ", "2. Drink water."])
    assert [s for batch in released for s in batch] + rest == ["Sleep early.", "Drink water."]


def test_empty_and_whitespace_give_nothing():
    released, rest = feed(["", "   ", "\n"])
    assert released == [[], [], []] and rest == []


def test_token_by_token_gives_the_same_sentences_as_one_piece():
    text = "Octopuses have three hearts. They also have blue blood! Isn't that amazing?"
    by_char, rest_char = feed(list(text))
    whole, rest_whole = feed([text])
    assert [s for b in by_char for s in b] + rest_char == [s for b in whole for s in b] + rest_whole
    assert len([s for b in by_char for s in b] + rest_char) == 3


def test_the_first_clause_goes_out_once_the_next_word_has_started():
    released, rest = feed(["For a long", " train ride", ",", " a", " good book. ", "It is long, and fun. ", "Yes"], 4)
    assert released == [[], [], [], ["For a long train ride,"], [], ["a good book."], ["It is long, and fun."]]
    assert rest == ["Yes"]


def test_a_first_clause_shorter_than_the_minimum_waits_for_the_sentence():
    released, _ = feed(["Octopuses are tiny,", " flying creatures.", " They"], 4)
    assert released == [[], [], ["Octopuses are tiny, flying creatures."]]


def test_numbers_and_times_are_not_clause_marks():
    _, rest = feed(["It costs 3,000 dollars at 10:30 today"], 2)
    assert rest == ["It costs 3,000 dollars at 10:30 today"]


def test_without_first_clause_words_commas_never_split():
    released, rest = feed(["For a long train ride, a good book"])
    assert released == [[]] and rest == ["For a long train ride, a good book"]


def feed_words(text: str, **options: int) -> list[str]:
    """Token-like pieces (each word with its leading space), as an LLM streams them."""
    aggregator = SentenceAggregator(**options)
    pieces = [piece for word in text.split(" ") for piece in (" " + word,)]
    pieces[0] = pieces[0].lstrip()
    out = [sentence for piece in pieces for sentence in aggregator.push(piece)]
    return out + list(aggregator.flush())


def test_a_long_first_sentence_without_a_comma_goes_out_at_a_phrase_boundary():
    out = feed_words(
        "Walking from the train station to the old town takes about ten minutes. It is nice.", first_phrase_words=5
    )
    assert out == ["Walking from the train station", "to the old town takes about ten minutes.", "It is nice."]


def test_the_phrase_split_waits_for_enough_words_and_the_word_after_the_opener():
    aggregator = SentenceAggregator(first_phrase_words=5)
    assert list(aggregator.push("I recommend The Lord of the Rings")) == []  # "of" after 4 words: too early
    assert list(aggregator.push(" by")) == []  # "by" might be the start of "bypass"
    assert list(aggregator.push(" Tolkien")) == ["I recommend The Lord of the Rings"]


def test_phrases_are_never_cut_inside_a_number_or_after_an_article():
    out = feed_words("It would take approximately 10 to 15 minutes by bus from here.", first_phrase_words=5)
    assert out == ["It would take approximately 10 to 15 minutes", "by bus from here."]
    out = feed_words("Please put some salt on the table.", first_phrase_words=2)
    assert out == ["Please put some salt", "on the table."]
    out = feed_words("Please put the on the table.", first_phrase_words=2)  # never "... the |"
    assert out == ["Please put the on the table."]


def test_a_clause_mark_still_comes_first_and_short_sentences_stay_whole():
    assert feed_words("As an AI language model, I can not browse.", first_clause_words=4, first_phrase_words=5) == [
        "As an AI language model,",
        "I can not browse.",
    ]
    assert feed_words("The capital of France is Paris.", first_phrase_words=5) == ["The capital of France is Paris."]


def test_only_the_first_phrase_is_cut():
    out = feed_words(
        "Yes. Walking from the train station to the old town takes about ten minutes.", first_phrase_words=5
    )
    assert out == ["Yes.", "Walking from the train station to the old town takes about ten minutes."]


def test_a_sentence_for_the_tts_is_cut_once_with_enough_words_on_each_side():
    from LLM.sentences import split_first_piece

    assert split_first_piece(
        "Walking from the train station to the old town would take approximately ten minutes."
    ) == (
        "Walking from the train station",
        "to the old town would take approximately ten minutes.",
    )
    assert split_first_piece("It costs 3,000 dollars at 10:30 today, or more tomorrow in the morning.") == (
        "It costs 3,000 dollars",
        "at 10:30 today, or more tomorrow in the morning.",
    )
    assert split_first_piece("About 10 to 15 minutes or more if it rains.") == (
        "About 10 to 15 minutes",
        "or more if it rains.",
    )
    assert split_first_piece("The capital of France is Paris.") == ("", "The capital of France is Paris.")


def test_a_long_piece_is_cut_at_its_last_boundary_within_the_limit():
    from LLM.sentences import split_long_piece

    text = (
        "A great book for a long train ride is The Count of Monte Cristo by Alexandre Dumas, which tells the "
        "story of a young sailor who is wrongly imprisoned and who escapes to take his revenge on the men who "
        "betrayed him, and it is long enough to last the whole trip."
    )
    pieces = split_long_piece(text, 20)
    assert " ".join(pieces) == text
    assert all(4 <= len(piece.split()) <= 20 for piece in pieces)
    assert pieces[0].endswith("Dumas,") and pieces[1].startswith("which tells")
    assert split_long_piece("Short and sweet.", 20) == ["Short and sweet."]
    assert split_long_piece(text, 0) == [text]  # no limit


def test_a_long_piece_without_boundaries_is_cut_between_words():
    from LLM.sentences import split_long_piece

    text = "  ".join(f"w{i}" for i in range(45))  # no clause marks, no phrase openers, double spaces
    pieces = split_long_piece(text, 20)
    assert [len(piece.split()) for piece in pieces] == [20, 20, 5]
    assert " ".join(" ".join(piece.split()) for piece in pieces) == " ".join(text.split())


def cut(text: str, language: str) -> list[str]:
    aggregator = SentenceAggregator(language=language)
    return list(aggregator.push(text)) + list(aggregator.flush())


def test_dutch_and_czech_abbreviations_do_not_end_a_sentence():
    """Before per-language rules, 'bijv.', 'nr.' and 'např.' each cut the sentence in two."""
    assert cut("Dat is bijv. een goed idee. Maar ja.", "nl") == ["Dat is bijv. een goed idee.", "Maar ja."]
    assert cut("Hij woont op nr. 5 in Utrecht. Ver weg.", "nl") == ["Hij woont op nr. 5 in Utrecht.", "Ver weg."]
    assert cut("To je např. Praha, tj. hlavní město. Ano.", "cs-auto") == [
        "To je např. Praha, tj. hlavní město.",
        "Ano.",
    ]
    assert cut("Dr. Smith is here. Yes.", "nl") == ["Dr. Smith is here.", "Yes."]  # English ones hold everywhere


def test_a_first_phrase_is_cut_before_the_languages_own_phrase_words():
    from LLM.sentences import split_first_piece

    head, rest = split_first_piece("Praha je hlavní město České republiky protože tam sídlí vláda", language="cs")
    assert (head, rest) == ("Praha je hlavní město České republiky", "protože tam sídlí vláda")
    head, _ = split_first_piece("Amsterdam is de hoofdstad van Nederland met veel grachten en musea", language="nl")
    assert head == "Amsterdam is de hoofdstad van Nederland"  # not "the capital | of"
    assert split_first_piece("Praha je hlavní město České republiky protože tam sídlí vláda", language="xx")[0] == ""
    aggregator = SentenceAggregator(first_phrase_words=5, language="cs")
    assert list(aggregator.push("Praha je hlavní město České republiky a má ")) == [
        "Praha je hlavní město České republiky"
    ]


def test_a_one_character_answer_is_a_sentence_and_markup_alone_is_not():
    """The default model answers "What is 2 plus 2?", with tools offered, with the one token "4"."""
    assert feed(["4"]) == ([[]], ["4"])
    assert feed(["I", "."]) == ([[], []], ["I."])
    assert feed(["-"]) == ([[]], []) and feed(["*"]) == ([[]], [])


def test_a_short_first_sentence_waits_for_the_words_after_it():
    """ "Certainly!" alone was said and then followed by silence while the LLM
    wrote the next sentence (seconds on a busy 2-core machine): it now goes out
    with the first clause or phrase behind it, as soon as that is long enough."""
    aggregator = SentenceAggregator(first_clause_words=4, first_phrase_words=5, first_piece_words=4)
    assert list(aggregator.push("Certainly!")) == []
    assert list(aggregator.push(" Here")) == []  # without the floor: "Certainly!" here
    assert list(aggregator.push(" are some tips")) == []
    assert list(aggregator.push(" for")) == []  # "for" might be the start of "forty"
    assert list(aggregator.push(" better")) == ["Certainly!", "Here are some tips"]
    assert list(aggregator.push(" sleep. Go")) == ["for better sleep."]  # later sentences as before
    assert list(aggregator.flush()) == ["Go"]


def test_after_a_short_opener_the_floor_is_the_bar_for_a_phrase_cut():
    """Seen live: "Certainly! A great book for a long train ride is "The Great
    Gatsby" by ..." went out at "by", twenty tokens in, because "Certainly! A
    great book" is one word short of the first phrase's five; after an opener
    the floor (four words, the opener's included) is the bar."""
    aggregator = SentenceAggregator(first_clause_words=4, first_phrase_words=5, first_piece_words=4)
    pieces = ["Certainly!", " A", " great", " book", " for", " a", " long"]
    assert [list(aggregator.push(piece)) for piece in pieces][-2:] == [["Certainly!", "A great book"], []]
    without_opener = SentenceAggregator(first_clause_words=4, first_phrase_words=5, first_piece_words=4)
    assert [s for p in [" A great book for a long", " ride"] for s in without_opener.push(p)] == []  # five, as before


def test_a_short_first_sentence_joins_a_whole_next_sentence_when_there_is_no_cut():
    out = feed_words("Sure. I can help. Ask me anything you like.", first_piece_words=4)
    assert out == ["Sure.", "I can help.", "Ask me anything you like."]
    aggregator = SentenceAggregator(first_piece_words=4)
    assert [list(aggregator.push(p)) for p in ["Sure.", " I can", " help.", " Ask"]] == [
        [],
        [],
        [],
        ["Sure.", "I can help."],
    ]


def test_a_reply_shorter_than_the_floor_goes_out_whole_at_its_end():
    aggregator = SentenceAggregator(first_clause_words=4, first_phrase_words=5, first_piece_words=4)
    assert list(aggregator.push("Paris.")) == []
    assert list(aggregator.flush()) == ["Paris."]


def test_a_first_sentence_long_enough_goes_out_as_before():
    aggregator = SentenceAggregator(first_piece_words=4)
    assert list(aggregator.push("The capital is Paris. It")) == ["The capital is Paris."]


def test_unspaced_scripts_count_a_word_per_character():
    """Chinese has no spaces: its sentences are not one endless word held back to the end."""
    from LLM.sentences import word_count

    assert word_count("当然！我可以帮你。") == 9 and word_count("Sure, I can.") == 3
