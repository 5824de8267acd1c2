"""Settings of the IVR: where flows live, how often they are reloaded, and business hours.

:class:`IvrSettings` is the ``ivr:`` section of the main configuration (which
imports this module, never the other way round).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cosmo.ivr.hours import country_holidays, parse_days, parse_range

__all__ = ["DEFAULT_CALENDAR", "BusinessHours", "IvrSettings"]

DEFAULT_CALENDAR = "business"
"""The calendar a flow's ``hours`` step and ``open()`` use when none is named."""

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_LANGUAGE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"


def _always() -> dict[str, list[str]]:
    return {"daily": ["00:00-24:00"]}


class BusinessHours(BaseModel):
    """One business-hours calendar.

    ``hours`` maps days (``mon`` .. ``sun``, a span ``mon-fri``, or ``daily``) to
    opening ranges ``HH:MM-HH:MM`` in ``timezone``; a day not named is closed.
    ``holidays`` are closed all day, and so are the public holidays of
    ``country`` (ISO 3166 code, ``subdivision`` optional) when it is set.
    The default is open every day and every hour.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    hours: dict[str, list[str]] = Field(default_factory=_always)
    holidays: list[date] = Field(default_factory=list)
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}$")
    subdivision: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("hours")
    @classmethod
    def _ranges(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, ranges in value.items():
            parse_days(key)
            for text in ranges:
                parse_range(text)
        return value

    @model_validator(mode="after")
    def _country(self) -> Self:
        if self.subdivision is not None and self.country is None:
            raise ValueError("subdivision needs country")
        if self.country is not None:
            country_holidays(self.country.upper(), self.subdivision)
        return self


def _demo_calendars() -> dict[str, BusinessHours]:
    return {DEFAULT_CALENDAR: BusinessHours()}


class IvrSettings(BaseModel):
    """The IVR: flows directory and reload, HTTP look-ups, business-hours calendars."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # One YAML file per flow; a number's ``flow: main`` is <flows_dir>/main.yaml.
    flows_dir: Path = Path("ivr_flows")
    # How often the directory is checked for changed files (sizes and mtimes).
    reload_interval_s: float = Field(default=1.0, gt=0, le=3600)
    # Time limit of a flow's HTTP look-up unless the step sets its own.
    http_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # Steps one run may take before it is stopped as a runaway loop.
    max_steps: int = Field(default=500, ge=10, le=100_000)
    # Language of flows that do not name one.
    default_language: str = Field(default="en", pattern=_LANGUAGE)
    calendars: dict[Annotated[str, Field(pattern=_NAME)], BusinessHours] = Field(default_factory=_demo_calendars)
