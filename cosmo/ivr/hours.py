"""Business hours: when a calendar is open, and which days are holidays.

Theory of operation
-------------------
A calendar (:class:`~cosmo.ivr.settings.BusinessHours` in the settings) has a
time zone, weekly opening ranges and holidays.  :class:`BusinessCalendar` asks
at a given instant (an aware ``datetime``, so tests and the simulator choose
"now"): the instant is converted to the calendar's zone with :mod:`zoneinfo`
(daylight saving included), then

* a holiday (a listed date, or one of the ``holidays`` package's calendar for
  ``country``/``subdivision``) is closed all day;
* otherwise the day's ranges decide.  A range ``22:00-06:00`` runs past
  midnight: it opens at 22:00 on its day and closes at 06:00 on the next.

Ranges are written ``HH:MM-HH:MM`` (``24:00`` ends a day); days as ``mon`` ..
``sun``, a span ``mon-fri``, or ``daily``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from cosmo.ivr.settings import BusinessHours

__all__ = [
    "DAYS",
    "BusinessCalendar",
    "Clock",
    "TimeRange",
    "calendars_of",
    "country_holidays",
    "parse_days",
    "parse_range",
    "system_clock",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names, Monday first as :meth:`datetime.weekday` counts."""

_RANGE = re.compile(r"^\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*$")
_MINUTES_PER_DAY = 24 * 60


Clock = Callable[[], datetime]
"""What gives "now" (aware, any zone)."""


def system_clock() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class TimeRange(tuple[int, int]):
    """Minutes from midnight: ``(start, end)``; ``end < start`` runs past midnight."""

    __slots__ = ()

    @property
    def start(self) -> int:
        return self[0]

    @property
    def end(self) -> int:
        return self[1]

    @property
    def overnight(self) -> bool:
        return self[1] < self[0]


def parse_range(text: str) -> TimeRange:
    """``"09:00-17:30"`` as minutes from midnight.  Raises ValueError."""
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(f"a time range is HH:MM-HH:MM, got {text!r}")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= _MINUTES_PER_DAY or end > _MINUTES_PER_DAY:
        raise ValueError(f"no such time in {text!r}")
    if start == end:
        raise ValueError(f"empty time range {text!r}")
    return TimeRange((start, end))


def parse_days(text: str) -> tuple[int, ...]:
    """``"mon"``, ``"mon-fri"``, ``"fri-mon"`` or ``"daily"`` as weekday numbers.  Raises ValueError."""
    key = text.strip().lower()
    if key == "daily":
        return tuple(range(7))
    first, sep, last = key.partition("-")
    if first not in DAYS or (sep and last not in DAYS):
        raise ValueError(f"days are {', '.join(DAYS)}, a span like mon-fri, or daily; got {text!r}")
    start = DAYS.index(first)
    stop = DAYS.index(last) if sep else start
    return tuple((start + i) % 7 for i in range((stop - start) % 7 + 1))


class _HolidayCalendar(Protocol):
    def __contains__(self, day: object) -> bool: ...


class BusinessCalendar:
    """One named calendar of the settings, asked at chosen instants."""

    def __init__(self, name: str, hours: BusinessHours) -> None:
        self.name = name
        self.zone = ZoneInfo(hours.timezone)
        self.weekly: tuple[tuple[TimeRange, ...], ...] = _weekly(hours.hours)
        self.dates = frozenset(hours.holidays)
        self._country = hours.country
        self._subdivision = hours.subdivision
        self._holidays: _HolidayCalendar | None = None

    def local(self, now: datetime) -> datetime:
        """``now`` in the calendar's zone (a naive ``now`` is taken as UTC)."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now.astimezone(self.zone)

    def is_holiday(self, now: datetime) -> bool:
        """Whether the local day of ``now`` is a holiday."""
        return self._holiday(self.local(now).date())

    def _holiday(self, day: date) -> bool:
        if day in self.dates:
            return True
        if self._country is None:
            return False
        if self._holidays is None:
            self._holidays = country_holidays(self._country, self._subdivision)
        return day in self._holidays

    def is_open(self, now: datetime) -> bool:
        """Whether the calendar is open at ``now``."""
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        today = local.date()
        if not self._holiday(today):
            for span in self.weekly[local.weekday()]:
                if span.overnight and minute >= span.start:
                    return True
                if not span.overnight and span.start <= minute < span.end:
                    return True
        yesterday = today - timedelta(days=1)
        if not self._holiday(yesterday):
            for span in self.weekly[yesterday.weekday()]:
                if span.overnight and minute < span.end:
                    return True
        return False


def _weekly(hours: Mapping[str, Sequence[str]]) -> tuple[tuple[TimeRange, ...], ...]:
    days: list[list[TimeRange]] = [[] for _ in DAYS]
    for key, ranges in hours.items():
        for day in parse_days(key):
            days[day].extend(parse_range(text) for text in ranges)
    return tuple(tuple(day) for day in days)


def country_holidays(country: str, subdivision: str | None) -> _HolidayCalendar:
    """The ``holidays`` package's calendar of a country (years added as asked).

    Raises ValueError for an unknown country or subdivision.
    """
    import holidays  # a large package: imported only by calendars that use it

    try:
        return holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError:
        raise ValueError(f"the holidays package has no calendar for country {country!r}") from None
    except (KeyError, ValueError) as exc:
        raise ValueError(f"holidays for {country!r}: {exc}") from None


def calendars_of(settings: Iterable[tuple[str, BusinessHours]]) -> dict[str, BusinessCalendar]:
    """A :class:`BusinessCalendar` per named settings entry."""
    return {name: BusinessCalendar(name, hours) for name, hours in settings}

