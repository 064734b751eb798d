"""The tools s2s offers by default: the date and time (here or in a named city) and arithmetic.

A small model asked "What time is it in Paris?" without a clock invents a
time, and "What is 17 times 23?" is a coin toss for a 1.5B model doing
arithmetic in its head.  These two tools answer both right.  They are plain
typed, docstringed functions, exactly like a user's `--tools` file, and run
in the same worker.
"""

from __future__ import annotations

import ast
import datetime
import json
import math
import operator
import re
import zoneinfo
from functools import cache

# Cities and countries whose time zone is not named after them in the tz
# database (which names one city per zone: Asia/Tokyo, Europe/Paris, ...).
ZONE_ALIASES = {
    "san francisco": "America/Los_Angeles", "seattle": "America/Los_Angeles", "las vegas": "America/Los_Angeles",
    "portland": "America/Los_Angeles", "san diego": "America/Los_Angeles", "california": "America/Los_Angeles",
    "boston": "America/New_York", "washington": "America/New_York", "miami": "America/New_York",
    "atlanta": "America/New_York", "philadelphia": "America/New_York", "washington dc": "America/New_York",
    "houston": "America/Chicago", "dallas": "America/Chicago", "austin": "America/Chicago",
    "minneapolis": "America/Chicago", "new orleans": "America/Chicago", "salt lake city": "America/Denver",
    "montreal": "America/Toronto", "ottawa": "America/Toronto", "calgary": "America/Edmonton",
    "rio de janeiro": "America/Sao_Paulo", "rio": "America/Sao_Paulo", "brasilia": "America/Sao_Paulo",
    "beijing": "Asia/Shanghai", "shenzhen": "Asia/Shanghai", "china": "Asia/Shanghai", "hong kong": "Asia/Hong_Kong",
    "mumbai": "Asia/Kolkata", "delhi": "Asia/Kolkata", "new delhi": "Asia/Kolkata", "bangalore": "Asia/Kolkata",
    "india": "Asia/Kolkata", "japan": "Asia/Tokyo", "osaka": "Asia/Tokyo", "kyoto": "Asia/Tokyo",
    "korea": "Asia/Seoul", "south korea": "Asia/Seoul", "hanoi": "Asia/Bangkok", "ho chi minh city": "Asia/Ho_Chi_Minh",
    "abu dhabi": "Asia/Dubai", "tel aviv": "Asia/Jerusalem", "israel": "Asia/Jerusalem", "turkey": "Europe/Istanbul",
    "ankara": "Europe/Istanbul", "england": "Europe/London", "uk": "Europe/London", "united kingdom": "Europe/London",
    "edinburgh": "Europe/London", "manchester": "Europe/London", "france": "Europe/Paris", "germany": "Europe/Berlin",
    "munich": "Europe/Berlin", "frankfurt": "Europe/Berlin", "hamburg": "Europe/Berlin", "italy": "Europe/Rome",
    "milan": "Europe/Rome", "venice": "Europe/Rome", "florence": "Europe/Rome", "spain": "Europe/Madrid",
    "barcelona": "Europe/Madrid", "seville": "Europe/Madrid", "netherlands": "Europe/Amsterdam",
    "the netherlands": "Europe/Amsterdam", "rotterdam": "Europe/Amsterdam", "the hague": "Europe/Amsterdam",
    "czech republic": "Europe/Prague", "czechia": "Europe/Prague", "brno": "Europe/Prague", "geneva": "Europe/Zurich",
    "switzerland": "Europe/Zurich", "russia": "Europe/Moscow", "saint petersburg": "Europe/Moscow",
    "st petersburg": "Europe/Moscow", "egypt": "Africa/Cairo", "kenya": "Africa/Nairobi", "nigeria": "Africa/Lagos",
    "cape town": "Africa/Johannesburg", "south africa": "Africa/Johannesburg", "canberra": "Australia/Sydney",
    "new zealand": "Pacific/Auckland", "wellington": "Pacific/Auckland", "hawaii": "Pacific/Honolulu",
    "utc": "UTC", "gmt": "UTC",
}  # fmt: skip


@cache
def _zones_by_place() -> dict[str, str]:
    """Every tz database zone by its place name ("new york" -> America/New_York)
    and full name ("america/new_york"), lower-case."""
    zones: dict[str, str] = {}
    for key in zoneinfo.available_timezones():
        if key.startswith(("Etc/", "SystemV/")) or "/" not in key:
            continue
        zones.setdefault(key.rsplit("/", 1)[-1].replace("_", " ").lower(), key)
        zones[key.lower()] = key
    return zones


def zone_of(place: str) -> str | None:
    """The tz database zone of a city, country or zone name; None when unknown."""
    name = place.split(",")[0]  # "Paris, France" -> "Paris"
    name = re.sub(r"[^\w\s/'-]", "", name).strip().lower()
    name = re.sub(r"^(the city of|city of)\s+", "", name)
    return ZONE_ALIASES.get(name) or _zones_by_place().get(name) or _zones_by_place().get(name.replace(" ", "_"))


def spoken_clock(moment: datetime.datetime) -> str:
    """12-hour time as people say it: '2:05 PM'."""
    return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def get_time(city: str = "") -> str:
    """Get the current date and local time, here or in a named city.

    Args:
        city: The city, country or time zone to tell the time in; empty for the time here.
    """
    if city.strip() and city.strip().lower() not in ("here", "local", "my location"):
        zone = zone_of(city)
        if zone is None:
            return json.dumps({"error": f"unknown city {city!r}: no time zone found for it"})
        moment = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
        place = city.strip()
    else:
        moment = datetime.datetime.now().astimezone()
        zone, place = moment.tzname() or "local", "here"
    return json.dumps(
        {
            "place": place,
            "time": spoken_clock(moment),
            "date": f"{moment:%A}, {moment:%B} {moment.day}, {moment.year}",
            "time_zone": zone,
        }
    )


_OPERATORS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}  # fmt: skip
_FUNCTIONS = {"sqrt": math.sqrt, "abs": abs, "round": round}
_WORDS = [
    (r"\bmultiplied by\b|\btimes\b|×|\bx\b", "*"), (r"\bdivided by\b|÷|\bover\b", "/"), (r"\bplus\b", "+"),
    (r"\bminus\b", "-"), (r"\bto the power of\b|\^", "**"), (r"\bsquared\b", "**2"), (r"\bcubed\b", "**3"),
    (r"\bmodulo\b|\bmod\b", "%"), (r"\bsquare root of\b", "sqrt"), (r"(?<=\d),(?=\d{3}\b)", ""),
]  # fmt: skip
MAX_EXPONENT = 1000
MAX_DIGITS = 100


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is too large")
        result = _OPERATORS[type(node.op)](left, right)
        if isinstance(result, int) and len(str(abs(result))) > MAX_DIGITS:
            raise ValueError("the result is too large")
        return result
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        return _FUNCTIONS[node.func.id](*(_evaluate(argument) for argument in node.args))
    raise ValueError("only numbers, + - * / // % ** ( ) and sqrt, abs, round are allowed")


def calculate(expression: str) -> str:
    """Calculate an arithmetic expression exactly, e.g. '17 * 23' or '(4 + 5) / 3'.

    Args:
        expression: The arithmetic to do, with + - * / ** % and parentheses.
    """
    text = expression.strip().lower().rstrip("=?")
    for pattern, replacement in _WORDS:
        text = re.sub(pattern, replacement, text)
    try:
        result = _evaluate(ast.parse(text, mode="eval"))
    except ZeroDivisionError:
        return json.dumps({"expression": expression, "error": "division by zero"})
    except (SyntaxError, ValueError, TypeError, OverflowError) as error:
        return json.dumps({"expression": expression, "error": f"cannot calculate this: {error}"})
    if isinstance(result, float):
        result = int(result) if result.is_integer() and abs(result) < 1e15 else float(f"{result:.10g}")
    return json.dumps({"expression": expression, "result": result})


BUILTIN_TOOLS = (get_time, calculate)
