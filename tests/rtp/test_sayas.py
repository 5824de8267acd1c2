"""Tests of :mod:`cosmo.rtp.sayas`: exact word lists, and every word shipped."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cosmo.rtp.sayas import (
    say_currency,
    say_digits,
    say_duration,
    say_number,
    say_position,
)

PROMPTS_EN = Path(__file__).resolve().parents[2] / "media" / "prompts" / "en"


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (10, "ten"),
        (13, "thirteen"),
        (19, "nineteen"),
        (20, "twenty"),
        (21, "twenty one"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (110, "one hundred ten"),
        (123, "one hundred twenty three"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (1010, "one thousand ten"),
        (12_345, "twelve thousand three hundred forty five"),
        (100_000, "one hundred thousand"),
        (200_300, "two hundred thousand three hundred"),
        (1_000_000, "one million"),
        (1_000_005, "one million five"),
        (20_000_017, "twenty million seventeen"),
        (999_999_999, "nine hundred ninety nine million nine hundred ninety nine thousand nine hundred ninety nine"),
    ],
)
def test_say_number(n: int, words: str) -> None:
    assert say_number(n) == words.split()


def test_say_number_refuses() -> None:
    with pytest.raises(ValueError, match=r"^number -1 is out of range \(0 to 999,999,999\)$"):
        say_number(-1)
    with pytest.raises(ValueError, match=r"^number 1000000000 is out of range"):
        say_number(1_000_000_000)
    with pytest.raises(TypeError, match="^number must be an int, not float$"):
        say_number(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^number must be an int, not bool$"):
        say_number(True)


@pytest.mark.parametrize(
    ("digits", "words"),
    [
        ("", []),
        ("0", ["zero"]),
        ("1234", ["one", "two", "three", "four"]),
        ("9876543210", ["nine", "eight", "seven", "six", "five", "four", "three", "two", "one", "zero"]),
        ("*72#", ["star", "seven", "two", "pound"]),
    ],
)
def test_say_digits(digits: str, words: list[str]) -> None:
    assert say_digits(digits) == words


def test_say_digits_refuses_other_characters() -> None:
    with pytest.raises(ValueError, match=r"^cannot say '-' \(position 3\) as a digit$"):
        say_digits("555-1234")
    with pytest.raises(ValueError, match=r"^cannot say 'A' \(position 0\) as a digit$"):
        say_digits("A")


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (Decimal("12.50"), "twelve dollars and fifty cents"),
        (1250, "twelve dollars and fifty cents"),
        (Decimal("1.01"), "one dollar and one cent"),
        (Decimal(1), "one dollar"),
        (100, "one dollar"),
        (Decimal(12), "twelve dollars"),
        (Decimal("0.50"), "fifty cents"),
        (1, "one cent"),
        (0, "zero dollars"),
        (Decimal("0.00"), "zero dollars"),
        (Decimal("2.005"), "two dollars and one cent"),  # half a cent rounds up
        (Decimal("2.0049"), "two dollars"),
        (Decimal("1234567.89"), ("one million two hundred thirty four thousand five hundred sixty seven dollars "
                                 "and eighty nine cents")),
    ],
)  # fmt: skip
def test_say_currency(amount: Decimal | int, words: str) -> None:
    assert say_currency(amount) == words.split()


def test_say_currency_refuses() -> None:
    with pytest.raises(ValueError, match=r"^cannot say a negative amount \(-5 cents\)$"):
        say_currency(-5)
    with pytest.raises(ValueError, match=r"^cannot say a negative amount \(-150 cents\)$"):
        say_currency(Decimal("-1.50"))
    with pytest.raises(ValueError, match=r"^amount of 1000000000 dollars is out of range"):
        say_currency(Decimal(1000000000))
    with pytest.raises(ValueError, match=r"^cannot say Decimal\('NaN'\) as money$"):
        say_currency(Decimal("NaN"))
    with pytest.raises(TypeError, match="^amount in cents must be an int, not float$"):
        say_currency(12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, ["less-than-a-minute"]),
        (59.9, ["less-than-a-minute"]),
        (60, ["about", "one", "minute"]),
        (89, ["about", "one", "minute"]),
        (89.9, ["about", "one", "minute"]),
        (90, ["about", "two", "minutes"]),
        (149, ["about", "two", "minutes"]),
        (185, ["about", "three", "minutes"]),
        (1260, ["about", "twenty", "one", "minutes"]),
        (3569, ["about", "fifty", "nine", "minutes"]),
        (3570, ["about", "one", "hour"]),  # 59.5 minutes round up to the hour
        (3720, ["about", "one", "hour"]),  # 62 minutes: to the nearest five
        (3780, ["about", "one", "hour", "and", "five", "minutes"]),  # 63
        (5400, ["about", "one", "hour", "and", "thirty", "minutes"]),
        (7200, ["about", "two", "hours"]),
    ],
)
def test_say_duration(seconds: float, words: list[str]) -> None:
    assert say_duration(seconds) == words


def test_say_duration_without_about_and_refusals() -> None:
    assert say_duration(185, about=False) == ["three", "minutes"]
    assert say_duration(30, about=False) == ["less-than-a-minute"]
    with pytest.raises(ValueError, match="^cannot say a duration of -1 seconds$"):
        say_duration(-1)
    with pytest.raises(ValueError, match="^cannot say a duration of nan seconds$"):
        say_duration(float("nan"))
    with pytest.raises(TypeError, match="^seconds must be a number, not str$"):
        say_duration("60")  # type: ignore[arg-type]


def test_say_position() -> None:
    assert say_position(1) == ["you-are-caller-number", "one", "in-line"]
    assert say_position(3) == ["you-are-caller-number", "three", "in-line"]
    assert say_position(42) == ["you-are-caller-number", "forty", "two", "in-line"]
    with pytest.raises(ValueError, match="^queue position must be at least 1, not 0$"):
        say_position(0)


def test_every_word_said_is_a_shipped_prompt() -> None:
    said: set[str] = set()
    numbers = [*range(1100), 12_345, 100_000, 1_000_000, 1_234_567, 999_999_999]
    for n in numbers:
        said.update(say_number(n))
    said.update(say_digits("0123456789*#"))
    for cents in (0, 1, 2, 100, 101, 250, 123_456):
        said.update(say_currency(cents))
    for seconds in (0, 60, 120, 3600, 3900, 7500):
        said.update(say_duration(seconds))
    said.update(say_position(7))
    missing = sorted(name for name in said if not (PROMPTS_EN / f"{name}.wav").is_file())
    assert missing == []
