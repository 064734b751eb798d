"""The built-in tools in the local modes, through the file mode as README shows it:
"What time is it?" is answered with this machine's clock, "What is 17 times 23?" exactly.
The questions are spoken by the packaged Piper voice, as the shared test set's are."""

from __future__ import annotations

import datetime

import numpy as np
import soundfile

from LLM.spoken_text import speakable
from tests.test_end_to_end import answer_file


def spoken_times(around: datetime.datetime, minutes: int = 3) -> set[str]:
    """How the reply may say the time, a few minutes either side of `around`:
    '9:21', and the words the spoken rewrite makes of it ('nine twenty-one');
    on the hour also '8 AM' ('eight a m', as "8:00 AM" is spoken: seen at 8:00)."""
    forms = set()
    for offset in range(-minutes, minutes + 1):
        moment = around + datetime.timedelta(minutes=offset)
        clocks = [f"{moment.hour % 12 or 12}:{moment.minute:02d}", f"{moment.hour}:{moment.minute:02d}"]
        if moment.minute == 0:
            clocks.append(f"{moment.hour % 12 or 12} {'AM' if moment.hour < 12 else 'PM'}")
        for clock in clocks:
            forms |= {clock.lower(), speakable(clock, "en").lower()}
    return forms


def test_what_time_is_it_and_arithmetic_are_answered_by_the_built_in_tools(tmp_path, tts_handler):
    pause = np.zeros(16000 * 2, np.int16)
    speech = [np.concatenate(list(tts_handler.synthesize(text))) for text in ("What time is it?",
                                                                            "What is 17 times 23?")]  # fmt: skip
    question = tmp_path / "questions.wav"
    soundfile.write(question, np.concatenate([pause[:8000], speech[0], pause, speech[1], pause]), 16000)
    asked_at = datetime.datetime.now().astimezone()
    result, _, records = answer_file(question, tmp_path, "--builtin_tools", "true")
    assert len(records) == 2, result.stdout
    time_reply, product_reply = (record["reply"].lower().replace("-", " ") for record in records)
    forms = {form.replace("-", " ") for form in spoken_times(asked_at)}
    assert any(form in time_reply for form in forms), (time_reply, sorted(forms))
    assert "391" in product_reply or speakable("391", "en").lower().replace("-", " ") in product_reply, product_reply
    for record in records:
        assert record["end_of_turn_to_tool_call_ms"] is not None  # answered through a call, not from memory
