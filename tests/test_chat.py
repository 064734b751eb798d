from conversation.chat import Chat, language_instruction


def test_system_prompt_is_kept_and_history_bounded_in_pairs():
    chat = Chat(size=2, system_prompt="Be brief.")
    for i in range(5):
        chat.add_user(f"q{i}")
        chat.add_assistant(f"a{i}")
    chat.add_user("q5")
    messages = chat.messages()
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert [m["content"] for m in messages[1:]] == ["q3", "a3", "q4", "a4", "q5"]


def test_failed_answer_leaves_no_orphan_user_message():
    chat = Chat(size=2)
    chat.add_user("q0")
    chat.discard_pending()
    chat.add_assistant("ignored")
    assert chat.messages() == []


def test_roles_are_configurable():
    chat = Chat(size=1, system_prompt="x", system_role="developer")
    chat.add_user("hi", role="human")
    assert [m["role"] for m in chat.messages()] == ["developer", "human"]


def test_language_instruction():
    assert language_instruction("fr") == "(I speak French: answer me in French, do not translate.) "
    assert language_instruction("fr-auto") == "(I speak French: answer me in French, do not translate.) "
    assert language_instruction("en") == "" and language_instruction(None) == ""
    assert language_instruction("xx") == ""
