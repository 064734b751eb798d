"""The talk page (GET / of the realtime server) in a real browser.

Debian's headless Chromium, driven by Playwright for Python, opens the page
served by a real `--mode realtime` server.  Chromium's fake capture device
plays a recorded question into `getUserMedia` (through the browser's own echo
cancellation, noise suppression and gain control), so everything between the
microphone and the speakers is the page's real code: the capture worklet, the
WebSocket, the playback worklet.

Needs Debian's `chromium` (.ci/run installs it) and `playwright` (requirements.txt).
Without them the tests are skipped on a developer machine but fail in CI, so CI
can never pass by skipping them.  Each test writes a screenshot to its tmp
folder; `S2S_BROWSER_SCREENSHOTS=DIR` copies them to DIR as well (docs/browser.png
is the barge-in test's).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from audio.pcm import load_audio
from benchmarks.server_process import ServerProcess
from tests.conftest import SHARED_AUDIO, heard_word

pytestmark = pytest.mark.timing

CHROMIUM = Path(os.environ.get("S2S_CHROMIUM", "/usr/lib/chromium/chromium"))
KEY = "browser-test-key-" + "k" * 16
FAKE_RATE = 48000
# Measured with the default stack: replies of 30-36 s to any question (time to talk over them).
LONG_ANSWERS = "Answer every question with a long, detailed explanation of at least eight sentences."


def require_browser() -> None:
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -r requirements.txt)")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run them")
        pytest.skip(message)


@pytest.fixture(scope="module")
def playwright():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """No API key, on loopback: the page just connects."""
    require_browser()
    running = ServerProcess("realtime", tmp_path_factory.mktemp("browser-open"), "--max_sessions", "3", api_key=None)
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    require_browser()
    running = ServerProcess("realtime", tmp_path_factory.mktemp("browser-keyed"), api_key=KEY)
    yield running
    assert running.stop() == 0


def fake_microphone(path: Path, *parts: str | float) -> Path:
    """A WAV for Chromium's fake capture device: shared audio files and seconds of silence, in order.

    16-bit PCM (Chromium replaces 24-bit and FLAC with zeros), and long trailing
    silence, because the device loops the file.
    """
    pieces = []
    for part in parts:
        if isinstance(part, str):
            audio = load_audio(SHARED_AUDIO / part).astype(np.float32) / 32768.0
            pieces.append(soxr.resample(audio, 16000, FAKE_RATE))
        else:
            pieces.append(np.zeros(int(part * FAKE_RATE), np.float32))
    sf.write(path, np.concatenate(pieces), FAKE_RATE, subtype="PCM_16")
    return path


def launch(playwright, microphone: Path | None, grant_microphone: bool = True):
    args = ["--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
    if grant_microphone:
        args.append("--use-fake-ui-for-media-stream")
    if microphone is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone}")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 900, "height": 760})
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    return page, problems


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    copy_to = os.environ.get("S2S_BROWSER_SCREENSHOTS")
    if copy_to:
        shutil.copy(path, Path(copy_to) / name)
    return path


def stats(page) -> dict:
    return page.evaluate("JSON.parse(JSON.stringify(s2s.stats))")


def state(page) -> str:
    return page.get_attribute("#state", "data-state") or ""


def wait_for_state(page, wanted: str, timeout_s: float = 60) -> None:
    page.wait_for_function(
        "wanted => document.getElementById('state').dataset.state === wanted", arg=wanted, timeout=timeout_s * 1000
    )


def transcribe(stt_handler, pcm24k: bytes) -> str:
    audio = np.frombuffer(pcm24k, "<i2").astype(np.float32) / 32768.0
    text, _ = stt_handler.transcribe(soxr.resample(audio, 24000, 16000).astype(np.float32))
    return text.lower()


def test_a_spoken_question_is_answered_and_played_in_the_page(playwright, open_server, stt_handler, tmp_path):
    microphone = fake_microphone(tmp_path / "question.wav", 1.0, "questions/q01.wav", 40.0)
    browser = launch(playwright, microphone)
    try:
        page, problems = open_page(browser, f"http://127.0.0.1:{open_server.port}/")
        page.evaluate("s2s.recordOutput(true)")
        page.click("#toggle")
        wait_for_state(page, "connected", 30)
        user = page.locator(".turn.user .text").first
        page.wait_for_function("() => /capital/i.test(document.querySelector('.turn.user .text')?.textContent || '')")
        assert "france" in user.inner_text().lower()
        page.wait_for_selector(".turn.assistant[data-playback='played']")
        reply = page.locator(".turn.assistant .text").first.inner_text()
        assert "paris" in reply.lower(), reply
        figure = page.inner_text("#latency")
        assert re.fullmatch(r"\d+ ms|\d+\.\d\d s", figure), figure
        assert page.inner_text("#turn-count") == "1"
        assert "after your end of speech" in page.locator(".turn.assistant .meta").first.inner_text()
        numbers = stats(page)
        assert numbers["micPeak"] > 0.05 and numbers["sentChunks"] > 50, numbers  # the question went out
        assert 0 < numbers["latenciesMs"][0] < 30_000
        # What reached the output node: more than half a second of real signal, not zeros...
        assert numbers["playedSignalFrames"] > 0.5 * 24000, numbers
        rms = (numbers["playedSumSquares"] / numbers["playedSignalFrames"]) ** 0.5
        assert rms > 0.01, numbers
        assert numbers["receivedSamples"] > 0.5 * 24000
        # ...and it says the answer.
        played = base64.b64decode(page.evaluate("s2s.recordedOutput()"))
        assert heard_word(transcribe(stt_handler, played), "paris")
        assert numbers["errors"] == [] and problems == []
        screenshot(page, tmp_path, "answered.png")
        # Stop releases the microphone and ends the conversation.
        page.click("#toggle")
        wait_for_state(page, "stopped", 10)
        assert page.inner_text("#toggle") == "Start"
    finally:
        browser.close()


def test_the_language_you_speak_is_set_in_the_page_and_each_turn_shows_its_language(playwright, open_server, tmp_path):
    """Settings' language field (kept in the browser) fixes Dutch for the
    session; a recorded Dutch line is shown as heard in Dutch, and the reply as
    spoken in Dutch, by a voice of Dutch (no Dutch Piper voice here: Kokoro or espeak-ng)."""
    microphone = fake_microphone(tmp_path / "dutch.wav", 1.0, "human/fillets_nl/cave__jes-m-tvor.wav", 40.0)
    browser = launch(playwright, microphone)
    try:
        page, problems = open_page(browser, f"http://127.0.0.1:{open_server.port}/")
        page.evaluate("localStorage.setItem('s2s.language', 'nl')")
        page.reload()
        assert page.input_value("#language") == "nl"
        page.click("#toggle")
        wait_for_state(page, "connected", 30)
        page.wait_for_selector(".turn.user[data-language='nl']")
        assert page.inner_text(".turn.user .who") == "you · nl"
        page.wait_for_selector(".turn.assistant[data-language='nl']", timeout=120_000)
        who = page.locator(".turn.assistant .who").first
        assert who.inner_text() == "assistant · nl"
        assert who.get_attribute("title") in ("spoken by kokoro-jf_alpha:nl", "spoken by espeak-ng:nl")
        shown = stats(page)["languages"]
        assert [(entry["role"], entry["language"]) for entry in shown][:2] == [("user", "nl"), ("assistant", "nl")]
        assert problems == [] and stats(page)["errors"] == []
        screenshot(page, tmp_path, "dutch.png")
    finally:
        browser.close()


def test_a_long_utterance_is_captioned_in_the_page_while_it_is_spoken(playwright, open_server, tmp_path):
    """Live captions: an 8 s recorded announcement; its settled words show in
    the user's bubble (greyed) while it is spoken, then the whole transcript
    replaces them."""
    microphone = fake_microphone(tmp_path / "long.wav", 1.0, "human/asterisk_en/queue-periodic-announce.wav", 40.0)
    browser = launch(playwright, microphone)
    try:
        page, problems = open_page(browser, f"http://127.0.0.1:{open_server.port}/")
        page.click("#toggle")
        wait_for_state(page, "connected", 30)
        page.wait_for_selector(".turn.user.partial", timeout=30_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.turn.user')].some("
            "t => !t.classList.contains('partial') && /representative/i.test(t.textContent))",
            timeout=60_000,
        )
        captions = stats(page)["captions"]
        assert captions and any(caption["speaking"] for caption in captions), captions
        assert page.locator(".turn.user.partial").count() == 0
        assert stats(page)["errors"] == [] and problems == []
        page.click("#toggle")
        wait_for_state(page, "stopped", 10)
    finally:
        browser.close()


def test_talking_over_the_reply_stops_it_and_marks_what_was_not_heard(playwright, open_server, tmp_path):
    # A question answered at length (30-36 s), 20 s for the answer to start playing even on a busy
    # machine (one core shared by three test workers took more than 12 s), then a second question
    # over it.
    microphone = fake_microphone(tmp_path / "barge-in.wav", 1.0, "qa/qa15.wav", 20.0, "questions/q01.wav", 40.0)
    browser = launch(playwright, microphone)
    try:
        page, problems = open_page(browser, f"http://127.0.0.1:{open_server.port}/")
        page.click("#settings summary")
        page.fill("#instructions", LONG_ANSWERS)
        page.click("#toggle")
        page.wait_for_function("() => s2s.stats.bargeIns.length > 0")
        before = stats(page)
        time.sleep(1.0)  # the second question is still being spoken: no new reply can start yet
        after = stats(page)
        barge_in = before["bargeIns"][0]
        assert barge_in["why"] == "speech"
        assert 300 < barge_in["playedMs"] <= barge_in["receivedMs"], barge_in
        assert after["playedSignalFrames"] - before["playedSignalFrames"] < 0.1 * 24000, (before, after)

        interrupted = page.locator(".turn.assistant").first
        assert interrupted.get_attribute("data-playback") == "interrupted"
        assert "interrupted at" in interrupted.locator(".badge").inner_text()
        heard = interrupted.locator(".text").inner_text()
        if barge_in["playedMs"] < barge_in["receivedMs"]:  # (a slow server may have sent no more than was played)
            unheard = interrupted.locator(".unheard")
            assert unheard.count() == 1 and unheard.inner_text().strip(), heard
        # The server was told how much was heard, to the millisecond the page played.
        page.wait_for_function(
            "ms => document.querySelector('.turn.assistant').dataset.truncatedMs === String(ms)",
            arg=barge_in["playedMs"],
        )
        # The question asked over the reply is answered.
        page.wait_for_function("() => s2s.stats.latenciesMs.length >= 2")
        page.wait_for_timeout(600)  # into the answer, so the screenshot shows its level
        screenshot(page, tmp_path, "browser.png")
        # The question asked over the reply is heard and answered.  What the answer says is the
        # STT's and the LLM's accuracy, measured elsewhere: under the suite's load the incremental
        # transcript of "What is the capital of France?" spoken over a reply was once "What is the
        # capital and friends?", answered as a sitcom.
        answered = (
            "() => (document.querySelectorAll('.turn.assistant')[1]?.querySelector('.text')?.textContent || '').trim()"
        )
        try:
            page.wait_for_function(answered, timeout=150_000)
        except Exception as error:  # playwright's TimeoutError: say what the page showed
            turns = page.eval_on_selector_all(".turn", "turns => turns.map(t => t.className + ': ' + t.textContent)")
            raise AssertionError(f"the question asked over the reply got no answer: {turns}") from error
        asked = page.locator(".turn.user").nth(1).inner_text().lower()
        assert "capital" in asked, asked
        assert problems == []
    finally:
        browser.close()


def mint(port: int, bearer: str) -> urllib.request.Request:
    return urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/realtime/client_secrets", data=b"{}", method="POST",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )  # fmt: skip


# Records the protocols of every WebSocket the page opens.
SPY_ON_WEBSOCKETS = """
window.__sockets = [];
const Native = window.WebSocket;
window.WebSocket = function (url, protocols) {
  window.__sockets.push({ url, protocols: [].concat(protocols || []) });
  return new Native(url, protocols);
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
"""


def test_a_keyed_server_is_reached_through_a_client_token_never_the_key(playwright, keyed_server, tmp_path):
    microphone = fake_microphone(tmp_path / "silence.wav", 5.0)
    browser = launch(playwright, microphone)
    url = f"http://127.0.0.1:{keyed_server.port}/"
    try:
        context = browser.new_context()
        context.add_init_script(SPY_ON_WEBSOCKETS)
        page = context.new_page()
        page.goto(url)
        assert KEY not in page.content()
        page.click("#toggle")
        page.wait_for_selector("#auth:not([hidden])", timeout=30_000)
        assert state(page) == "needs-key"
        page.fill("#auth-key", "not-the-key")
        page.click("#auth button")
        page.wait_for_function("() => /refused/.test(document.getElementById('auth-reason').textContent)")
        page.fill("#auth-key", KEY)
        page.click("#auth button")
        wait_for_state(page, "connected", 30)
        assert page.is_hidden("#auth")
        sockets = page.evaluate("window.__sockets")
        used = [protocol for socket in sockets for protocol in socket["protocols"]]
        tokens = [p for p in used if p.startswith("openai-insecure-api-key.")]
        assert tokens and all(p.startswith("openai-insecure-api-key.ek_") for p in tokens), used
        assert not any(KEY in protocol for protocol in used)
        assert page.evaluate("s2s.stats.protocol") == "realtime"
        # Nothing the page keeps holds the key: not the DOM, the field, nor the browser's storage.
        kept = page.evaluate(
            "JSON.stringify([document.documentElement.outerHTML, document.getElementById('auth-key').value,"
            " Object.entries(sessionStorage), Object.entries(localStorage)])"
        )
        assert KEY not in kept and "ek_" in kept  # the token is kept (sessionStorage), the key is not
        screenshot(page, tmp_path, "keyed.png")
        context.close()

        # A link with a token minted by whoever holds the key: no key asked, and the token leaves the address bar.
        token = json.loads(urllib.request.urlopen(mint(keyed_server.port, KEY), timeout=10).read())["value"]
        page, problems = open_page(browser, url + "#token=" + token)
        assert page.evaluate("location.hash") == ""
        page.click("#toggle")
        wait_for_state(page, "connected", 30)
        assert page.is_hidden("#auth") and problems == []
        # A client token opens conversations but cannot mint its successor.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(mint(keyed_server.port, token), timeout=10)
        assert refused.value.code == 401
    finally:
        browser.close()


# The page's capture worklet alone, in an offline context at a given rate, fed a pure tone.
CAPTURE_A_TONE = """async ([rate, frequency]) => {
  const code = document.getElementById("worklets").textContent;
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  const context = new OfflineAudioContext(1, rate * 2, rate);
  await context.audioWorklet.addModule(url);
  const capture = new AudioWorkletNode(context, "s2s-capture", { numberOfOutputs: 0 });
  const pieces = [];
  capture.port.onmessage = (event) => pieces.push(...new Int16Array(event.data.pcm));
  const tone = new OscillatorNode(context, { frequency });
  tone.connect(new GainNode(context, { gain: 0.5 })).connect(capture);
  tone.start();
  await context.startRendering();
  await new Promise((resolve) => setTimeout(resolve, 300));  // the last messages from the audio thread
  return pieces;
}"""


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_the_capture_worklet_resamples_to_24khz_without_gaps_or_aliasing(playwright, open_server, rate):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    try:
        page, _ = open_page(browser, f"http://127.0.0.1:{open_server.port}/")
        heard = np.array(page.evaluate(CAPTURE_A_TONE, [rate, 1000]), np.float64) / 32768
        assert abs(heard.size - 2 * 24000) < 24000 * 0.05  # 24 kHz out, whatever the rate in
        # A continuous 1 kHz sine at the same level: no clicks at chunk or render-quantum joins.
        steady = heard[2400:]
        t = np.arange(steady.size) / 24000
        basis = np.stack([np.sin(2 * np.pi * 1000 * t), np.cos(2 * np.pi * 1000 * t), np.ones_like(t)], axis=1)
        fit, *_ = np.linalg.lstsq(basis, steady, rcond=None)
        assert abs(np.hypot(fit[0], fit[1]) - 0.5) < 0.01
        assert np.abs(steady - basis @ fit).max() < 0.005
        if rate > 24000:  # a tone above the new Nyquist (12 kHz) is filtered out, not folded down to 9 kHz
            folded = np.array(page.evaluate(CAPTURE_A_TONE, [rate, 15000]), np.float64) / 32768
            assert np.sqrt(np.mean(folded[2400:] ** 2)) < 0.005
    finally:
        browser.close()


def test_a_refused_microphone_is_explained(playwright, open_server, tmp_path):
    browser = launch(playwright, None, grant_microphone=False)  # headless Chromium then denies the prompt
    try:
        page, _ = open_page(browser, f"http://127.0.0.1:{open_server.port}/")
        page.click("#toggle")
        page.wait_for_function("() => document.getElementById('notice').textContent.length > 0")
        assert "Microphone access was refused" in page.inner_text("#notice")
        assert state(page) == "error" and page.inner_text("#toggle") == "Start"
    finally:
        browser.close()


def test_a_full_server_and_a_restarted_server_are_explained_and_retried(playwright, tmp_path):
    require_browser()
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    server = ServerProcess("realtime", tmp_path / "first", "--max_sessions", "1", api_key=None)
    microphone = fake_microphone(tmp_path / "silence.wav", 5.0)
    browser = launch(playwright, microphone)
    restarted = None
    try:
        url = f"http://127.0.0.1:{server.port}/"
        first, _ = open_page(browser, url)
        first.click("#toggle")
        wait_for_state(first, "connected", 30)
        # One conversation is all this server holds: a second page is told so, and keeps trying.
        second, _ = open_page(browser, url)
        second.click("#toggle")
        wait_for_state(second, "busy", 30)
        assert "as many conversations as it allows" in second.inner_text("#notice")
        screenshot(second, tmp_path, "busy.png")
        second.close()
        # The server goes away: the page says so and retries with growing waits...
        assert server.stop() == 0
        wait_for_state(first, "reconnecting", 15)
        assert "cannot be reached" in first.inner_text("#notice")
        # ...and is back in the conversation once a server answers on the same address again.
        restarted = ServerProcess("realtime", tmp_path / "second", "--realtime_port", str(server.port), api_key=None)
        wait_for_state(first, "connected", 60)
        assert "Reconnected" in first.inner_text("#notice")
        assert stats(first)["reconnects"] >= 1
    finally:
        browser.close()
        if server.alive():
            server.stop()
        if restarted is not None:
            assert restarted.stop() == 0
