"""Numbers, units, currency and abbreviations read aloud in Dutch and Czech.

`LLM.spoken_text` rewrites English itself; for the other languages it has a
voice for, this module holds what a reader of that language would say:
"3,5 km" is "drie komma vijf kilometer" in Dutch and "tři celé pět kilometru"
in Czech, "bijv." is "bijvoorbeeld", "např." "například", "10:30" "tien uur
dertig" / "deset třicet", and "€5" "vijf euro" / "pět eur".

Both languages write decimals with a comma and group thousands with a full
stop (Dutch) or a space (Czech); an LLM writing in them uses either style, so
both are read.  Czech nouns after a number take one of three forms (1 koruna,
2 koruny, 5 korun; a decimal takes the genitive singular, 3,5 koruny), and
the numerals one and two agree with the noun's gender (jedna koruna, dvě
koruny); `CzechNoun` carries the forms and the gender.

Anything a table does not list is left as it was, for the voice's own
front end (espeak-ng reads digits in every language it knows).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from num2words import num2words

# A number as Dutch and Czech write it: "1.000.000" or "1 000" (grouped
# thousands), "3,5" or "3.5" (a decimal), "7".  Not part of a word ("CO2").
_GROUPED = r"\d{1,3}(?:[.\u00a0\u202f ]\d{3})+(?![\d,.]\d)"
_LOCAL_NUMBER = r"(?<![\w.,])(" + _GROUPED + r"|\d+)(?:[,.](\d+))?(?![\w]|[.,]\d)"
_LOCAL_NUMBER_RE = re.compile(_LOCAL_NUMBER)
_SIGNED = r"((?<!\w)[-−])?" + _LOCAL_NUMBER


def base_language(language: str | None) -> str:
    """'nl', 'nl-auto', 'nl-NL', 'nl_NL' -> 'nl'; None or '' -> 'en'."""
    return (language or "en").removesuffix("-auto").split("-")[0].split("_")[0].lower() or "en"


def _integer(digits: str) -> int:
    return int(re.sub(r"\D", "", digits))


@dataclass(frozen=True)
class Noun:
    """A unit or currency as said after a number: forms for one, two to four,
    and five or more (Dutch uses the first two only), and the gender that
    Czech numerals agree with ('m', 'f', 'n')."""

    one: str
    few: str
    many: str
    gender: str = "m"
    decimal: str | None = None  # Czech: the genitive singular after a decimal


@dataclass(frozen=True)
class LanguageWords:
    """What one language says for the symbols and numbers an LLM writes."""

    code: str  # num2words' language code
    point: Noun  # the decimal mark, said (Czech: agrees with the number before it)
    minus: str
    to: str  # a range, "5-10"
    dot: str  # in a domain name
    at: str  # in an e-mail address
    o_clock: str
    percent: Noun
    degree: Noun
    celsius: str
    fahrenheit: str
    units: dict[str, Noun]
    currencies: dict[str, Noun]  # by symbol or code
    abbreviations: list[tuple[re.Pattern[str], str]]
    form: Callable[[int, bool], int]  # (integer, has a decimal) -> 0 one, 1 few, 2 many
    agree: Callable[[str, Noun], str] = field(default=lambda words, noun: words)
    ordinal: re.Pattern[str] | None = None  # a written ordinal ("3e", "21ste")

    def number(self, integer: str, fraction: str | None = None) -> str:
        """A number in words: a decimal says its digits after the mark one by one."""
        value = _integer(integer)
        words = num2words(value, lang=self.code)
        if fraction:
            point = (self.point.one, self.point.few, self.point.many)[self.form(value, False)]
            digits = " ".join(num2words(int(digit), lang=self.code) for digit in fraction)
            words = f"{self.agree(words, self.point)} {point} {digits}"
        return words

    def counted(self, integer: str, fraction: str | None, noun: Noun, negative: bool = False) -> str:
        """'5 km' -> 'pět kilometrů': the number and the noun's right form."""
        value = _integer(integer)
        words = self.agree(self.number(integer, fraction), noun) if not fraction else self.number(integer, fraction)
        if fraction and noun.decimal:
            name = noun.decimal
        else:
            name = (noun.one, noun.few, noun.many)[self.form(value, bool(fraction))]
        return f"{self.minus + ' ' if negative else ''}{words} {name}"


def _dutch_form(value: int, decimal: bool) -> int:
    return 0 if value == 1 and not decimal else 2


def _czech_form(value: int, decimal: bool) -> int:
    if decimal:
        return 1
    return 0 if value == 1 else 1 if 2 <= value <= 4 else 2


_CZECH_ONE = {"m": "jeden", "f": "jedna", "n": "jedno"}


def _czech_agree(words: str, noun: Noun) -> str:
    """Czech 'one' and 'two' agree with the noun: jeden kilometr, jedna
    koruna, jedno euro; dva kilometry, dvě koruny (num2words says 'jedna', 'dva')."""
    if " " in words:
        return words  # "dvacet jedna korun": a compound numeral does not change
    head, tail = "", words
    if tail in _CZECH_ONE.values():
        tail = _CZECH_ONE[noun.gender]
    elif tail in ("dva", "dvě"):
        tail = "dva" if noun.gender == "m" else "dvě"
    return f"{head} {tail}" if head else tail


def _abbreviations(pairs: list[tuple[str, str]]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(pattern), words) for pattern, words in pairs]


def _dutch() -> LanguageWords:
    same = lambda word, one=None: Noun(one or word, word, word)  # noqa: E731  Dutch: one form after numbers
    units = {
        "km": same("kilometer"), "m": same("meter"), "cm": same("centimeter"), "mm": same("millimeter"),
        "kg": same("kilo"), "g": same("gram"), "mg": same("milligram"), "l": same("liter"), "L": same("liter"),
        "ml": same("milliliter"), "km/u": same("kilometer per uur"), "km/h": same("kilometer per uur"),
        "m/s": same("meter per seconde"), "h": same("uur"), "min": Noun("minuut", "minuten", "minuten"),
        "s": Noun("seconde", "seconden", "seconden"), "sec": Noun("seconde", "seconden", "seconden"),
        "W": same("watt"), "kW": same("kilowatt"), "kWh": same("kilowattuur"), "GB": same("gigabyte"),
        "MB": same("megabyte"),
    }  # fmt: skip
    currencies = {"€": same("euro"), "EUR": same("euro"), "$": same("dollar"), "£": same("pond"), "¥": same("yen")}
    return LanguageWords(
        code="nl", point=same("komma"), minus="min", to="tot", dot="punt", at="apenstaartje", o_clock="uur",
        percent=same("procent"), degree=Noun("graad", "graden", "graden"), celsius="Celsius",
        fahrenheit="Fahrenheit", units=units, currencies=currencies, form=_dutch_form,
        ordinal=re.compile(r"(?<![\w.,])(\d+)(?:e|ste|de)\b"),
        abbreviations=_abbreviations([
            (r"\b[Bb]ijv\.|\b[Bb]v\.", "bijvoorbeeld"), (r"\b[Dd]\.w\.z\.", "dat wil zeggen"),
            (r"\b[Oo]\.a\.", "onder andere"), (r"\benz\.", "enzovoort"), (r"\b[Mm]\.a\.w\.", "met andere woorden"),
            (r"\b[Dd]hr\.", "de heer"), (r"\b[Mm]evr\.", "mevrouw"), (r"\bca\.(?=\s)", "circa"),
            (r"\b[Nn]r\.\s?(?=\d)", "nummer "), (r"\bincl\.", "inclusief"), (r"\bexcl\.", "exclusief"),
            (r"\bt/m\b", "tot en met"), (r"\b[Aa]\.u\.b\.", "alstublieft"), (r"\bong\.(?=\s)", "ongeveer"),
            (r"\bi\.p\.v\.", "in plaats van"), (r"\bt\.o\.v\.", "ten opzichte van"), (r"\bblz\.(?=\s)", "bladzijde"),
            (r"\bDr\.(?=\s+[A-Z])", "dokter"), (r"\bProf\.(?=\s)", "professor"), (r"(?<=\s)&(?=\s)", "en"),
            (r"(?<=\d)\s?\+\s?(?=\d)", " plus "), (r"(?<=\d)\s?=\s?(?=[\d-])", " is "),
            (r"(?<=\d)\s?[×x]\s?(?=\d)", " keer "), (r"~(?=\d)", "ongeveer "),
            (r"(?<!\S)<=?\s?(?=[\d€$-])", "minder dan "), (r"(?<!\S)>=?\s?(?=[\d€$-])", "meer dan "),
        ]),
    )  # fmt: skip


def _czech() -> LanguageWords:
    units = {
        "km": Noun("kilometr", "kilometry", "kilometrů", decimal="kilometru"),
        "m": Noun("metr", "metry", "metrů", decimal="metru"),
        "cm": Noun("centimetr", "centimetry", "centimetrů", decimal="centimetru"),
        "mm": Noun("milimetr", "milimetry", "milimetrů", decimal="milimetru"),
        "kg": Noun("kilogram", "kilogramy", "kilogramů", decimal="kilogramu"),
        "g": Noun("gram", "gramy", "gramů", decimal="gramu"),
        "l": Noun("litr", "litry", "litrů", decimal="litru"),
        "km/h": Noun("kilometr za hodinu", "kilometry za hodinu", "kilometrů za hodinu", decimal="kilometru za hodinu"),
        "h": Noun("hodina", "hodiny", "hodin", "f", decimal="hodiny"),
        "hod": Noun("hodina", "hodiny", "hodin", "f", decimal="hodiny"),
        "min": Noun("minuta", "minuty", "minut", "f", decimal="minuty"),
        "sec": Noun("sekunda", "sekundy", "sekund", "f", decimal="sekundy"),
        "W": Noun("watt", "watty", "wattů", decimal="wattu"),
        "kW": Noun("kilowatt", "kilowatty", "kilowattů", decimal="kilowattu"),
        "GB": Noun("gigabajt", "gigabajty", "gigabajtů", decimal="gigabajtu"),
    }
    koruna = Noun("koruna", "koruny", "korun", "f", decimal="koruny")
    euro = Noun("euro", "eura", "eur", "n", decimal="eura")
    dollar = Noun("dolar", "dolary", "dolarů", decimal="dolaru")
    currencies = {"Kč": koruna, "CZK": koruna, "€": euro, "EUR": euro, "$": dollar, "USD": dollar}
    return LanguageWords(
        code="cs", point=Noun("celá", "celé", "celých", "f"), minus="mínus", to="až", dot="tečka", at="zavináč",
        o_clock="hodin",
        percent=Noun("procento", "procenta", "procent", "n", decimal="procenta"),
        degree=Noun("stupeň", "stupně", "stupňů", decimal="stupně"), celsius="Celsia", fahrenheit="Fahrenheita",
        units=units, currencies=currencies, form=_czech_form, agree=_czech_agree,
        abbreviations=_abbreviations([
            (r"\b[Nn]apř\.", "například"), (r"\b[Tt]j\.", "to jest"), (r"\batd\.", "a tak dále"),
            (r"\bapod\.", "a podobně"), (r"\btzv\.", "takzvaně"), (r"\bmj\.", "mimo jiné"),
            (r"\bresp\.", "respektive"), (r"\bpř\.\s?n\.\s?l\.", "před naším letopočtem"),
            (r"\bn\.\s?l\.", "našeho letopočtu"), (r"\b[čČ]\.\s?(?=\d)", "číslo "), (r"\bsv\.(?=\s)", "svatý"),
            (r"\bstr\.\s?(?=\d)", "strana "), (r"\bcca\.?(?=\s)", "cirka"), (r"\btis\.(?=\s)", "tisíc"),
            (r"\bmil\.(?=\s)", "milionů"), (r"\bmld\.(?=\s)", "miliard"), (r"\bDr\.(?=\s+[A-ZČŘŠŽ])", "doktor"),
            (r"\bProf\.(?=\s)", "profesor"), (r"(?<=\s)&(?=\s)", "a"), (r"(?<=\d)\s?\+\s?(?=\d)", " plus "),
            (r"(?<=\d)\s?=\s?(?=[\d-])", " se rovná "), (r"(?<=\d)\s?[×x]\s?(?=\d)", " krát "),
            (r"~(?=\d)", "asi "), (r"(?<!\S)<=?\s?(?=[\d€$-])", "méně než "),
            (r"(?<!\S)>=?\s?(?=[\d€$-])", "více než "),
        ]),
    )  # fmt: skip


LANGUAGES: dict[str, LanguageWords] = {"nl": _dutch(), "cs": _czech()}

_RANGE = re.compile(r"(?<=\d)(?:-|\s?–\s?)(?=\d)")
_TIME = re.compile(r"(?<![\w:])([01]?\d|2[0-3]):([0-5]\d)(?![\w:])")
_MINUS = re.compile(r"(?<![\w)])[-−](?=\d)")


def _symbols(table: dict[str, Noun]) -> str:
    return "|".join(re.escape(symbol) for symbol in sorted(table, key=len, reverse=True))


def rewrite(text: str, words: LanguageWords) -> str:
    """Numbers, units, currency, times and abbreviations of one sentence in
    `words`' language, as words."""
    for pattern, replacement in words.abbreviations:
        text = pattern.sub(replacement, text)
    text = _RANGE.sub(f" {words.to} ", text)
    currency_before = re.compile(r"(" + _symbols(words.currencies) + r")\s?" + _LOCAL_NUMBER)
    currency_after = re.compile(_SIGNED + r"\s?(" + _symbols(words.currencies) + r")(?!\w)")

    def money(integer: str, cents: str | None, noun: Noun, negative: bool = False) -> str:
        """'€5,50' -> 'vijf euro vijftig': the whole units, then the cents as a number."""
        spoken = words.counted(integer, None, noun, negative)
        hundredths = int((cents or "0").ljust(2, "0")[:2])
        return spoken + (f" {num2words(hundredths, lang=words.code)}" if hundredths else "")

    text = currency_before.sub(lambda m: money(m.group(2), m.group(3), words.currencies[m.group(1)]), text)
    text = currency_after.sub(
        lambda m: money(m.group(2), m.group(3), words.currencies[m.group(4)], bool(m.group(1))), text
    )
    text = re.sub(
        _SIGNED + r"\s?%", lambda m: words.counted(m.group(2), m.group(3), words.percent, bool(m.group(1))), text
    )

    def temperature(match: re.Match[str]) -> str:
        sign, integer, fraction, scale = match.groups()
        name = {"C": " " + words.celsius, "F": " " + words.fahrenheit}.get(scale or "", "")
        return words.counted(integer, fraction, words.degree, bool(sign)) + name

    text = re.sub(_SIGNED + r"\s?[°º]\s?([CF])?\b", temperature, text)
    unit = re.compile(_SIGNED + r"\s?(" + _symbols(words.units) + r")(?![\w/])")
    text = unit.sub(lambda m: words.counted(m.group(2), m.group(3), words.units[m.group(4)], bool(m.group(1))), text)

    def time_of_day(match: re.Match[str]) -> str:
        hours, minutes = int(match.group(1)), int(match.group(2))
        spoken = num2words(hours, lang=words.code) + (f" {words.o_clock}" if words.code == "nl" or not minutes else "")
        return spoken + (f" {num2words(minutes, lang=words.code)}" if minutes else "")

    text = re.sub(_TIME.pattern + rf"(?:\s+{words.o_clock}\b)?", time_of_day, text)
    if words.ordinal is not None:
        text = words.ordinal.sub(lambda m: num2words(int(m.group(1)), lang=words.code, to="ordinal"), text)
    text = _MINUS.sub(words.minus + " ", text)
    # A number before a noun written out ("2 koruny") agrees with it.
    nouns = {
        form: noun
        for noun in (*words.units.values(), *words.currencies.values())
        for form in (noun.one, noun.few, noun.many)
    }
    before_noun = re.compile(
        _LOCAL_NUMBER + r"(?=\s+(" + "|".join(sorted(map(re.escape, nouns), key=len, reverse=True)) + r")\b)"
    )
    text = before_noun.sub(
        lambda m: (
            words.agree(words.number(m.group(1), m.group(2)), nouns[m.group(3)])
            if not m.group(2)
            else words.number(m.group(1), m.group(2))
        ),
        text,
    )
    return _LOCAL_NUMBER_RE.sub(lambda m: words.number(m.group(1), m.group(2)), text)
