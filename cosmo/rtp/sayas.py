"""Say-as for English: numbers, digits, money and durations as prompt names.

Each function turns a value into the list of prompt names to play, one word
per prompt, using the fragments in ``media/prompts/en/`` (each named after
its word: ``"twenty"``, ``"hundred"``, ``"dollars"``).  Nothing here touches
audio; a playlist of the names is played like any other.

Conventions (American English, as the ``en-us`` voice speaks it):

* numbers have no "and" inside them: 123 is "one hundred twenty three";
* money joins dollars and cents with "and" and uses the singular for one:
  "one dollar and one cent";
* durations are rounded the way a queue announces a wait: under a minute is
  "less than a minute", then whole minutes rounded half up (60-89 s is one
  minute, 90-149 s two), and from an hour on, hours and the minutes rounded
  to the nearest five.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

MAX_NUMBER = 999_999_999
_DIGIT_NAMES = {**{str(d): name for d, name in enumerate(ONES)}, "*": "star", "#": "pound"}
_CENT = Decimal("0.01")


def say_number(n: int) -> list[str]:
    """A whole number from 0 to 999,999,999, e.g. 1234 -> one thousand two hundred thirty four.

    Raises ``TypeError`` for a non-integer and ``ValueError`` out of range.
    """
    _check_int(n, "number")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"number {n} is out of range (0 to {MAX_NUMBER:,})")
    if n == 0:
        return ["zero"]
    words: list[str] = []
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1_000)
    for group, scale in ((millions, "million"), (thousands, "thousand"), (units, "")):
        if group:
            words += _below_thousand(group)
            if scale:
                words.append(scale)
    return words


def _below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(TENS[tens])
        if ones:
            words.append(ONES[ones])
    elif rest >= 10:
        words.append(TEENS[rest - 10])
    elif rest:
        words.append(ONES[rest])
    return words


def say_digits(digits: str) -> list[str]:
    """Digit by digit, as keyed on a phone: ``"12*#"`` -> one two star pound.

    Raises ``ValueError`` for any character other than 0-9, ``*`` and ``#``.
    """
    words = []
    for position, char in enumerate(digits):
        name = _DIGIT_NAMES.get(char)
        if name is None:
            raise ValueError(f"cannot say {char!r} (position {position}) as a digit")
        words.append(name)
    return words


def say_currency(amount: Decimal | int) -> list[str]:
    """An amount of dollars: a ``Decimal`` of dollars, or an ``int`` of cents.

    ``Decimal("12.50")`` and ``1250`` both say twelve dollars and fifty
    cents.  Fractions of a cent are rounded half up.  No cents says only the
    dollars ("twelve dollars", "zero dollars"); under a dollar only the cents
    ("fifty cents").  Raises ``TypeError`` for a float (money is never a
    float) and ``ValueError`` for a negative amount or one of a billion
    dollars or more.
    """
    if isinstance(amount, Decimal):
        try:
            cents = int((amount / _CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        except (InvalidOperation, OverflowError, ValueError):
            raise ValueError(f"cannot say {amount!r} as money") from None
    else:
        _check_int(amount, "amount in cents")
        cents = amount
    if cents < 0:
        raise ValueError(f"cannot say a negative amount ({cents} cents)")
    dollars, cents = divmod(cents, 100)
    if dollars > MAX_NUMBER:
        raise ValueError(f"amount of {dollars} dollars is out of range (up to {MAX_NUMBER:,})")
    dollar_words = say_number(dollars) + ["dollar" if dollars == 1 else "dollars"]
    cent_words = say_number(cents) + ["cent" if cents == 1 else "cents"]
    if not cents:
        return dollar_words
    if not dollars:
        return cent_words
    return dollar_words + ["and"] + cent_words


def say_duration(seconds: float, about: bool = True) -> list[str]:
    """A waiting time, rounded for a caller's ear (see the module docstring).

    Under 60 s -> less than a minute; otherwise e.g. 185 s -> about three
    minutes, 5400 s -> about one hour and thirty minutes.  ``about=False``
    leaves out the leading "about".  Raises ``ValueError`` for a negative or
    non-finite time.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
    if not 0 <= seconds < math.inf:  # also refuses NaN
        raise ValueError(f"cannot say a duration of {seconds} seconds")
    if seconds < 60:
        return ["less-than-a-minute"]
    minutes = math.floor(seconds / 60 + 0.5)  # half up: 90 s is two minutes
    words = ["about"] if about else []
    if minutes < 60:
        return words + say_number(minutes) + ["minute" if minutes == 1 else "minutes"]
    hours, rest = divmod(5 * ((minutes + 2) // 5), 60)  # minutes to the nearest five, half up
    words += say_number(hours) + ["hour" if hours == 1 else "hours"]
    if rest:
        words += ["and"] + say_number(rest) + ["minutes"]
    return words


def say_position(n: int) -> list[str]:
    """A place in a queue: 3 -> you are caller number three in line.

    Raises ``ValueError`` for a position below 1.
    """
    _check_int(n, "position")
    if n < 1:
        raise ValueError(f"queue position must be at least 1, not {n}")
    return ["you-are-caller-number", *say_number(n), "in-line"]


def _check_int(value: object, what: str) -> None:
    # bool is an int to Python, never to a caller.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
