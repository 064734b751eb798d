"""Turn a language model's written reply into what a voice should say.

LLMs write for a screen: `**bold**`, `# headers`, bullet and numbered lists,
code, links, emoji, "3.5 km", "$5", "25°C".  A TTS reads all of that
literally ("asterisk asterisk"), skips it, or guesses; and a voice other than
Piper's espeak front end may not read digits at all.  `speakable()` rewrites
one sentence into plain words before it reaches any TTS:

- markdown is removed (emphasis, headers, list markers, quotes, tables,
  links keep their text, code blocks are dropped, inline code keeps its word);
- a URL becomes its domain ("example dot com"), an e-mail address is spelled
  out, emoji are dropped;
- in English, numbers, decimals, ordinals, times, currency, percentages,
  temperatures, common units and abbreviations are written as words
  ("3.5 km" -> "three point five kilometers", "Dr. Smith" -> "Doctor Smith");
- in other languages, whole numbers are written as words where `num2words`
  knows the language, and everything else is left to the voice.

Everything here is a pure function of its input: no model, no state, so the
same sentence always sounds the same.  `strip_markdown()` is also what the
sentence splitter uses to decide that a piece such as "**" holds no words.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from num2words import num2words

from LLM.spoken_languages import LANGUAGES, base_language, rewrite

# --- markdown ------------------------------------------------------------------------

_FENCED_CODE = re.compile(r"```.*?```|~~~.*?~~~", re.S)
_STRAY_FENCE = re.compile(r"(?:```|~~~)[\w+-]*")
_INLINE_CODE = re.compile(r"`([^`\n]*)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]*)\)")
_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+", re.M)
_QUOTE = re.compile(r"^\s*>+\s?", re.M)
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.M)
_BULLET = re.compile(r"^\s*[-*+•◦▪‣]\s+", re.M)
_NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s+", re.M)
_TABLE_DIVIDER = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$", re.M)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDERSCORE = re.compile(r"(?<!\w)_(?=\S)([^_\n]+?)(?<=\S)_(?!\w)")
_STRIKE = re.compile(r"~~(.+?)~~")
_LEFTOVER_MARKS = re.compile(r"[*`]+|#+(?!\d)|~+(?!\d)|(?<!\w)_+|_+(?!\w)")
_LINE_END_PUNCTUATION = tuple(".,;:!?")


def strip_markdown(text: str) -> str:
    """Markdown -> the plain words a reader would hear.  Lines of a list or a
    table are joined into sentences so the voice pauses between items."""
    text = _FENCED_CODE.sub(" ", text)
    text = _STRAY_FENCE.sub(" ", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _TABLE_DIVIDER.sub("", text)
    text = _HEADER.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _NUMBERED.sub("", text)
    text = _BOLD.sub(r"\2", text)
    text = _ITALIC_STAR.sub(r"\1", text)
    text = _ITALIC_UNDERSCORE.sub(r"\1", text)
    text = _STRIKE.sub(r"\1", text)
    lines = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        line = ", ".join(cell for cell in cells if cell)
        line = _LEFTOVER_MARKS.sub("", line).strip()
        if line:
            lines.append(line)
    # A list item or header ends where its line ends: give it a full stop so
    # the items are not run together into one breathless phrase.
    joined = [line if line.endswith(_LINE_END_PUNCTUATION) else line + "." for line in lines[:-1]]
    return " ".join([*joined, *lines[-1:]])


# --- links, e-mail, emoji ------------------------------------------------------------------

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"']+", re.I)
_EMAIL = re.compile(r"\b([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)\b")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols and pictographs extended
    "\U0001f1e6-\U0001f1ff"  # regional indicators (flags)
    "\u2600-\u27bf"  # miscellaneous symbols, dingbats
    "\u2b00-\u2bff"  # arrows and stars used as emoji
    "\ufe0e\ufe0f\u200d\u20e3"  # variation selectors, zero-width joiner, keycap
    "]+"
)


def _domain(url: str) -> str:
    host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
    return host.removeprefix("www.")


def _say_domain(domain: str, dot: str | None) -> str:
    return domain.replace(".", f" {dot} ") if dot else domain


def _links(text: str, dot: str | None, at: str | None) -> str:
    """URLs as their domain, e-mail addresses spelled out, with the
    language's words for "dot" and "at" (None: left as written)."""

    def url(match: re.Match[str]) -> str:
        raw = match.group(0)
        stripped = raw.rstrip(".,;:!?")
        return _say_domain(_domain(stripped), dot) + raw[len(stripped) :]

    def email(match: re.Match[str]) -> str:
        if not (dot and at):
            return match.group(0)
        return f"{match.group(1).replace('.', f' {dot} ')} {at} {_say_domain(match.group(2), dot)}"

    return _EMAIL.sub(email, _URL.sub(url, text))


# --- numbers -------------------------------------------------------------------------

# A number standing alone: "7", "1,000", "3.5"; not "CO2", "3.5.1" or "v2".
_NUMBER = r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w]|[.,]\d)"
_NUMBER_RE = re.compile(_NUMBER)
_SIGNED_NUMBER = r"((?<!\w)-)?" + _NUMBER


def _words(language: str, integer: str, fraction: str | None = None, to: str = "cardinal") -> str:
    """num2words, or the digits unchanged where it does not know the language.
    A fraction is read digit by digit ("3.14" -> "three point one four"),
    which is English; other languages are only given whole numbers."""
    try:
        words = num2words(int(integer.replace(",", "")), lang=language, to=to)
        if fraction:
            words += " point " + " ".join(num2words(int(digit), lang=language) for digit in fraction)
        return words
    except (NotImplementedError, OverflowError, ValueError, KeyError):
        return integer + (f".{fraction}" if fraction else "")


def _is_one(integer: str, fraction: str | None) -> bool:
    return integer == "1" and not (fraction or "").strip("0")


# --- English: currency, percent, units, abbreviations ----------------------------------

_CURRENCIES = {"$": ("dollar", "cent"), "€": ("euro", "cent"), "£": ("pound", "penny"), "¥": ("yen", None)}
_SCALES = r"(?:\s?(thousand|million|billion|trillion))?"
_CURRENCY = re.compile(r"([$€£¥])\s?" + _NUMBER + _SCALES)
_PERCENT = re.compile(_SIGNED_NUMBER + r"\s?%")
_TEMPERATURE = re.compile(_SIGNED_NUMBER + r"\s?[°º]\s?([CF])?\b")
_UNITS = {
    "km": "kilometer", "m": "meter", "cm": "centimeter", "mm": "millimeter", "nm": "nanometer",
    "mi": "mile", "ft": "foot", "yd": "yard", "kg": "kilogram", "g": "gram", "mg": "milligram",
    "lb": "pound", "lbs": "pound", "oz": "ounce", "l": "liter", "L": "liter", "ml": "milliliter",
    "mL": "milliliter", "km/h": "kilometer per hour", "kph": "kilometer per hour", "mph": "mile per hour",
    "m/s": "meter per second", "h": "hour", "hr": "hour", "hrs": "hour", "min": "minute", "s": "second",
    "sec": "second", "ms": "millisecond", "W": "watt", "kW": "kilowatt", "kWh": "kilowatt hour",
    "V": "volt", "Hz": "hertz", "kHz": "kilohertz", "MHz": "megahertz", "GHz": "gigahertz",
    "KB": "kilobyte", "MB": "megabyte", "GB": "gigabyte", "TB": "terabyte",
}  # fmt: skip
_IRREGULAR_PLURALS = {"foot": "feet", "hertz": "hertz", "kilohertz": "kilohertz", "megahertz": "megahertz",
                      "gigahertz": "gigahertz", "penny": "pence", "yen": "yen"}  # fmt: skip
_UNIT = re.compile(
    _SIGNED_NUMBER
    + r"\s?("
    + "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
    + r")(?![\w/])"
)
_ORDINAL = re.compile(r"(?<![\w.,])(\d+)(?:st|nd|rd|th)\b")
_TIME = re.compile(r"(?<![\w:])([01]?\d|2[0-3]):([0-5]\d)(?![\w:])(?=(\s[ap] m\b))?")
_RANGE = re.compile(r"(?<=\d)(?:-|\s?–\s?)(?=\d)")
_AM_PM = re.compile(r"(?<=\d)\s?([ap])(\.m\.|m(?!\w))", re.I)
_MINUS = re.compile(r"(?<![\w)])[-−](?=\d)")
_FRACTIONS = {(1, 2): "one half", (1, 3): "one third", (2, 3): "two thirds", (1, 4): "one quarter",
              (3, 4): "three quarters"}  # fmt: skip
_FRACTION = re.compile(r"(?<![\w/.])(\d{1,2})/(\d{1,2})(?![\w/])")
_YEAR = re.compile(r"(?<![\w.,$€£¥-])(1[1-9]\d\d|20\d\d)(?![\w%°]|[.,]\d)")
_ABBREVIATIONS = [
    (re.compile(r"\bDr\.(?=\s+[A-Z])"), "Doctor"),
    (re.compile(r"\bMr\.(?=\s)"), "Mister"),
    (re.compile(r"\bMrs\.(?=\s)"), "Missus"),
    (re.compile(r"\bMs\.(?=\s)"), "Miz"),
    (re.compile(r"\bProf\.(?=\s)"), "Professor"),
    (re.compile(r"\bSt\.(?=\s+[A-Z])"), "Saint"),
    (re.compile(r"\bJr\."), "Junior"),
    (re.compile(r"\bSr\."), "Senior"),
    (re.compile(r"\be\.g\.,?", re.I), "for example,"),
    (re.compile(r"\bi\.e\.,?", re.I), "that is,"),
    (re.compile(r"\betc\.(?=\s+[a-z])"), "et cetera"),
    (re.compile(r"\betc\."), "et cetera."),
    (re.compile(r"\bvs\.?(?=\s)"), "versus"),
    (re.compile(r"\bapprox\.(?=\s)"), "approximately"),
    (re.compile(r"\bNo\.\s?(?=\d)"), "number "),
    (re.compile(r"#(?=\d)"), "number "),
    (re.compile(r"\bU\.S\.A?\.?(?=\s|$)"), "U S"),
    (re.compile(r"\bU\.K\.(?=\s|$)"), "U K"),
    (re.compile(r"(?<=\s)&(?=\s)"), "and"),
    (re.compile(r"(?<=\d)\s?\+\s?(?=\d)"), " plus "),
    (re.compile(r"(?<=\d)\s?=\s?(?=[\d-])"), " equals "),
    (re.compile(r"(?<=\d)\s?[×x]\s?(?=\d)"), " times "),
    (re.compile(r"~(?=\d)"), "about "),
    (re.compile(r"(?<!\S)<=?\s?(?=[\d$€£¥-])"), "less than "),
    (re.compile(r"(?<!\S)>=?\s?(?=[\d$€£¥-])"), "more than "),
]


def _plural(noun: str, count_is_one: bool) -> str:
    if count_is_one:
        return noun
    head, _, tail = noun.partition(" ")
    head = _IRREGULAR_PLURALS.get(head, head + ("es" if head.endswith(("ch", "sh", "s")) else "s"))
    return f"{head} {tail}".strip()


def _english(text: str) -> str:
    for pattern, replacement in _ABBREVIATIONS:
        text = pattern.sub(replacement, text)

    def currency(match: re.Match[str]) -> str:
        symbol, integer, fraction, scale = match.groups()
        unit, cents = _CURRENCIES[symbol]
        if scale:  # "$5 million" -> "five million dollars"
            amount = _words("en", integer, fraction)
            return f"{amount} {scale} {_plural(unit, False)}"
        spoken = f"{_words('en', integer)} {_plural(unit, integer == '1')}"
        if fraction and cents and int(fraction.ljust(2, "0")[:2]):
            hundredths = fraction.ljust(2, "0")[:2]
            spoken += f" and {_words('en', str(int(hundredths)))} {_plural(cents, int(hundredths) == 1)}"
        elif fraction and not cents:
            spoken = f"{_words('en', integer, fraction)} {_plural(unit, False)}"
        return spoken

    def percent(match: re.Match[str]) -> str:
        sign, integer, fraction = match.groups()
        return ("minus " if sign else "") + _words("en", integer, fraction) + " percent"

    def temperature(match: re.Match[str]) -> str:
        sign, integer, fraction, scale = match.groups()
        degrees = _plural("degree", _is_one(integer, fraction) and not sign)
        name = {"C": " Celsius", "F": " Fahrenheit"}.get(scale or "", "")
        return ("minus " if sign else "") + f"{_words('en', integer, fraction)} {degrees}{name}"

    def unit(match: re.Match[str]) -> str:
        sign, integer, fraction, symbol = match.groups()
        name = _plural(_UNITS[symbol], _is_one(integer, fraction) and not sign)
        return ("minus " if sign else "") + f"{_words('en', integer, fraction)} {name}"

    def time_of_day(match: re.Match[str]) -> str:
        hours, minutes, half = match.groups()
        spoken = _words("en", str(int(hours)))
        if minutes == "00":
            spoken += "" if half else " o'clock"
        elif minutes.startswith("0"):
            spoken += " oh " + _words("en", minutes[1])
        else:
            spoken += " " + _words("en", minutes)
        return spoken

    def am_pm(match: re.Match[str]) -> str:
        # "a.m." at the very end also ends the sentence: keep that full stop.
        ends_text = match.group(2) == ".m." and not match.string[match.end() :].strip()
        return f" {match.group(1).lower()} m" + ("." if ends_text else "")

    def fraction(match: re.Match[str]) -> str:
        top, bottom = int(match.group(1)), int(match.group(2))
        if bottom == 0:
            return match.group(0)
        return _FRACTIONS.get((top, bottom)) or f"{_words('en', match.group(1))} over {_words('en', match.group(2))}"

    text = _RANGE.sub(" to ", text)
    text = _CURRENCY.sub(currency, text)
    text = _PERCENT.sub(percent, text)
    text = _TEMPERATURE.sub(temperature, text)
    text = _UNIT.sub(unit, text)
    text = _AM_PM.sub(am_pm, text)
    text = _TIME.sub(time_of_day, text)
    text = _ORDINAL.sub(lambda m: _words("en", m.group(1), to="ordinal"), text)
    text = _FRACTION.sub(fraction, text)
    text = _MINUS.sub("minus ", text)
    text = _YEAR.sub(lambda m: _words("en", m.group(1), to="year"), text)
    return text


# --- the whole rewrite -----------------------------------------------------------------


def speakable(text: str, language: str | None = "en") -> str:
    """One sentence of an LLM reply -> the words a voice should say.

    `language` is the Whisper code of the reply's language (None: English).
    Returns "" when no word is left (a sentence that was only code, emoji or
    punctuation), which callers treat as nothing to say.
    """
    language = base_language(language)
    english = language == "en"
    local = LANGUAGES.get(language)
    text = strip_markdown(text)
    text = _links(text, *(("dot", "at") if english else (local.dot, local.at) if local else (None, None)))
    text = _EMOJI.sub(" ", text)
    if english:
        text = _english(text)
        text = _NUMBER_RE.sub(lambda m: _words("en", m.group(1), m.group(2)), text)
    elif local is not None:
        text = rewrite(text, local)
    else:
        text = _NUMBER_RE.sub(lambda m: m.group(0) if m.group(2) else _words(language, m.group(1)), text)
    text = re.sub(r"[#~]", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return " ".join(text.split()) if re.search(r"\w", text) else ""  # punctuation alone says nothing
