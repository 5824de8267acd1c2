"""Business hours: weekly ranges in a time zone, overnight ranges, holidays; the settings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from cosmo.ivr.hours import BusinessCalendar, parse_days, parse_range
from cosmo.ivr.settings import BusinessHours, IvrSettings

NEW_YORK = ZoneInfo("America/New_York")


def at(text: str, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


OFFICE = BusinessCalendar("office", BusinessHours(
    timezone="America/New_York",
    hours={"mon-fri": ["09:00-12:00", "13:00-18:00"], "sat": ["10:00-14:00"]},
    holidays=[date(2026, 12, 24)],
))


@pytest.mark.parametrize(("moment", "is_open"), [
    (at("2026-11-23T09:00"), True),      # Monday, opening minute
    (at("2026-11-23T08:59"), False),
    (at("2026-11-23T12:30"), False),     # lunch
    (at("2026-11-23T17:59"), True),
    (at("2026-11-23T18:00"), False),     # the end is not open
    (at("2026-11-28T11:00"), True),      # Saturday
    (at("2026-11-29T11:00"), False),     # Sunday
    (at("2026-12-24T10:00"), False),     # a listed holiday (Thursday)
    (datetime(2026, 11, 23, 14, 30, tzinfo=UTC), True),   # 09:30 in New York (EST, UTC-5)
    (datetime(2026, 11, 23, 13, 30, tzinfo=UTC), False),  # 08:30 in New York
    (datetime(2026, 7, 6, 13, 30, tzinfo=UTC), True),     # 09:30 in New York in summer (EDT, UTC-4)
    (datetime(2026, 11, 23, 14, 30), True),               # naive: taken as UTC
])
def test_weekly_hours_in_the_calendars_zone(moment: datetime, is_open: bool) -> None:
    assert OFFICE.is_open(moment) is is_open


def test_overnight_ranges_run_past_midnight() -> None:
    night = BusinessCalendar("night", BusinessHours(hours={"fri": ["22:00-06:00"]}, holidays=[date(2026, 11, 28)]))
    assert night.is_open(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # Friday night
    assert night.is_open(datetime(2026, 11, 28, 5, 59, tzinfo=UTC))  # Saturday morning, a holiday: Friday's range
    assert not night.is_open(datetime(2026, 11, 28, 6, 0, tzinfo=UTC))
    assert not night.is_open(datetime(2026, 11, 27, 21, 59, tzinfo=UTC))
    assert night.is_holiday(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


def test_country_holidays() -> None:
    us = BusinessCalendar("us", BusinessHours(timezone="America/New_York", hours={"daily": ["00:00-24:00"]},
                                              country="US"))
    assert us.is_holiday(at("2026-11-26T10:00"))  # Thanksgiving
    assert not us.is_open(at("2026-11-26T10:00"))
    assert us.is_open(at("2026-11-27T10:00"))
    assert us.is_holiday(at("2027-01-01T10:00"))  # years are added as asked
    # 2026-11-27 01:00 UTC is still Thanksgiving evening in New York.
    assert us.is_holiday(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))


def test_default_calendar_is_always_open() -> None:
    settings = IvrSettings()
    assert list(settings.calendars) == ["business"]
    always = BusinessCalendar("business", settings.calendars["business"])
    for hour in range(24):
        assert always.is_open(datetime(2026, 11, 29, hour, 30, tzinfo=UTC))


@pytest.mark.parametrize(("text", "span"), [
    ("mon", (0,)), ("mon-wed", (0, 1, 2)), ("fri-mon", (4, 5, 6, 0)), ("Daily", (0, 1, 2, 3, 4, 5, 6)),
])
def test_days(text: str, span: tuple[int, ...]) -> None:
    assert parse_days(text) == span


@pytest.mark.parametrize(("text", "message"), [
    ("9-17", "a time range is HH:MM-HH:MM, got '9-17'"),
    ("09:00-09:00", "empty time range '09:00-09:00'"),
    ("09:60-10:00", "no such time in '09:60-10:00'"),
    ("24:00-01:00", "no such time in '24:00-01:00'"),
])
def test_bad_ranges(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        parse_range(text)
    assert parse_range("00:00-24:00") == (0, 1440)


@pytest.mark.parametrize(("fields", "message"), [
    ({"timezone": "Mars/Olympus"}, "timezone\n  Value error, unknown time zone 'Mars/Olympus'"),
    ({"hours": {"someday": ["09:00-10:00"]}}, ("days are mon, tue, wed, thu, fri, sat, sun, a span like mon-fri, "
                                             "or daily; got 'someday'")),
    ({"country": "XX"}, "the holidays package has no calendar for country 'XX'"),
    ({"subdivision": "CA"}, "subdivision needs country"),
    ({"opening": 1}, "Extra inputs are not permitted"),
])
def test_bad_business_hours(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BusinessHours.model_validate(fields)
    assert message in str(caught.value)


def test_settings() -> None:
    settings = IvrSettings.model_validate({"flows_dir": "flows", "calendars": {"support": {"timezone": "Europe/Paris"}}})
    assert str(settings.flows_dir) == "flows" and settings.reload_interval_s == 1.0
    assert settings.http_timeout_s == 5.0 and settings.default_language == "en" and settings.max_steps == 500
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        IvrSettings.model_validate({"flow_dir": "x"})
    with pytest.raises(ValidationError, match="String should match pattern"):
        IvrSettings.model_validate({"calendars": {"bad name": {}}})
