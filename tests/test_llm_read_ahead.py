"""llama.cpp reads the prompt ahead from the stable part of the transcript, with the real packaged model."""

import queue

from conversation.session import Session
from conversation.turn import Turn
from utils.messages import EndOfResponse, LLMSentence, PartialTranscript, Transcript

QUESTION = "Can you recommend a good book for a long train ride across the mountains in winter?"


def answer(llm_handler, text: str, session: Session | None = None) -> tuple[str, list[int]]:
    """The reply's sentences, and how many tokens each llama.cpp evaluation call took."""
    evaluated: list[int] = []
    real_eval = llm_handler.model.eval
    llm_handler.model.eval = lambda tokens: evaluated.append(len(tokens)) or real_eval(tokens)
    try:
        out = list(llm_handler.process(Transcript(text, "en", Turn(session=session))))
    finally:
        llm_handler.model.eval = real_eval
    assert isinstance(out[-1], EndOfResponse)
    return " ".join(m.text for m in out if isinstance(m, LLMSentence)), evaluated


def test_reading_ahead_leaves_only_the_last_words_and_changes_nothing_in_the_answer(llm_handler):
    llm_handler.chat.reset()
    plain, plain_evaluated = answer(llm_handler, QUESTION)
    llm_handler.chat.reset()
    llm_handler.model.reset()  # forget the question's tokens
    words = QUESTION.split()
    read = [llm_handler.read_ahead(PartialTranscript(" ".join(words[:n]), "en")) for n in (4, 8, len(words) - 3)]
    assert read[0] > 0 and all(count > 0 for count in read[1:])  # each partial adds only its new words
    ahead, ahead_evaluated = answer(llm_handler, QUESTION)
    assert ahead == plain  # greedy decoding: the same reply
    assert ahead_evaluated[0] < plain_evaluated[0] / 2  # the prompt at the end of the turn: the last words only
    llm_handler.chat.reset()


def test_no_reading_ahead_while_an_answer_is_pending(llm_handler):
    llm_handler.chat.reset()
    llm_handler.chat.add_user("What is the capital of France?")
    assert llm_handler.read_ahead(PartialTranscript("And how many", "en")) == 0
    llm_handler.chat.reset()


def test_reading_ahead_for_one_conversation_leaks_nothing_into_another(llm_handler):
    """The KV cache holds one conversation's prompt at a time: what one
    session read ahead never becomes part of another's answer, and the
    conversation that read ahead still gets its reply as if it had not."""
    alone, mine, other = Session(), Session(), Session()
    llm_handler.model.reset()
    plain, _ = answer(llm_handler, QUESTION, alone)
    other_plain, _ = answer(llm_handler, "What is the capital of France?", Session())
    words = QUESTION.split()
    assert llm_handler.read_ahead(PartialTranscript(" ".join(words[:8]), "en", session=mine)) > 0
    # Another conversation's question is answered in between: its answer is
    # its own, and the reading ahead of `mine` is not reused for it.
    between, _ = answer(llm_handler, "What is the capital of France?", other)
    assert between == other_plain
    assert llm_handler.read_ahead(PartialTranscript(" ".join(words[:-3]), "en", session=mine)) > 0
    ahead, _ = answer(llm_handler, QUESTION, mine)
    assert ahead == plain
    users = [[m["content"] for m in s.chat.messages() if m["role"] == "user"] for s in (mine, other)]
    assert users == [[QUESTION], ["What is the capital of France?"]]  # chats stay apart


def test_a_waiting_answer_goes_before_reading_ahead(llm_handler):
    """The stage reads ahead only when no answer is queued (any conversation's)."""
    waiting = queue.Queue()
    real_queue, llm_handler.queue_in = llm_handler.queue_in, waiting
    evaluated: list[int] = []
    real_eval = llm_handler.model.eval
    llm_handler.model.eval = lambda tokens: evaluated.append(len(tokens)) or real_eval(tokens)
    try:
        waiting.put(Transcript("Hello there.", "en", Turn(session=Session())))
        assert list(llm_handler.process(PartialTranscript("Tell me about the", "en", session=Session()))) == []
        assert evaluated == []
        waiting.get()
        assert list(llm_handler.process(PartialTranscript("Tell me about the", "en", session=Session()))) == []
        assert sum(evaluated) > 0
    finally:
        llm_handler.model.eval = real_eval
        llm_handler.queue_in = real_queue


def test_no_reading_ahead_for_a_conversation_that_asked_for_no_answers(llm_handler):
    """Its turns only join the chat: reading ahead would push the conversation
    that does want answers out of the cache for nothing."""
    listener = Session()
    listener.settings.turn_detection.create_response = False
    evaluated: list[int] = []
    real_eval = llm_handler.model.eval
    llm_handler.model.eval = lambda tokens: evaluated.append(len(tokens)) or real_eval(tokens)
    try:
        list(llm_handler.process(PartialTranscript("Tell me about the mountains in winter", "en", (0, 1), listener)))
        assert evaluated == []
        list(llm_handler.process(PartialTranscript("Tell me about the mountains in winter", "en", (0, 1), Session())))
        assert sum(evaluated) > 0  # the same words of a conversation that wants answers are read ahead
    finally:
        llm_handler.model.eval = real_eval


def test_a_conversations_cache_is_kept_while_another_is_served(llm_handler):
    """Each conversation's KV cache is parked while another is answered and
    put back for its next turn (LLM/parked_caches.py): the second question
    evaluates its own new words, not the history again; without parking it
    evaluates the whole history after the system prompt."""

    def second_turn_evaluates(max_parked: int) -> int:
        llm_handler.caches.max_parked = max_parked
        llm_handler.model.reset()
        alice, bob = Session(), Session()
        answer(llm_handler, QUESTION, alice)
        answer(llm_handler, "What is the capital of France?", bob)
        reply, evaluated = answer(llm_handler, "And a shorter one?", alice)
        assert reply
        return evaluated[0]

    try:
        parked, unparked = second_turn_evaluates(8), second_turn_evaluates(0)
    finally:
        llm_handler.caches.max_parked = 8
    assert parked < 25 and 3 * parked < unparked  # measured: 15 against 59 tokens


def test_the_cache_of_a_conversation_that_ended_is_not_kept(llm_handler):
    """A closed (or forgotten) conversation's parked KV cache is dropped at the
    next switch instead of waiting for the least-recently-served rule."""
    llm_handler.model.reset()
    alice, bob, carol = Session(), Session(), Session()
    answer(llm_handler, QUESTION, alice)
    answer(llm_handler, "What is the capital of France?", bob)
    assert alice.id in llm_handler.caches.parked
    alice.close()
    answer(llm_handler, "And of Spain?", carol)  # bob's cache is parked; alice's goes
    assert alice.id not in llm_handler.caches.parked and bob.id in llm_handler.caches.parked
    bob_id = bob.id
    del bob  # a client gone without a close
    import gc

    gc.collect()
    answer(llm_handler, "And of Italy?", Session())
    assert bob_id not in llm_handler.caches.parked and carol.id in llm_handler.caches.parked
