"""What the flow validator reports: :class:`Problem`, printed ``file:line:column: severity: message``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cosmo.ivr.source import Position, SourceMap
from cosmo.yamlfile import Loc

__all__ = ["Problem", "Report", "Severity", "suggest"]


class Severity(StrEnum):
    """An error refuses the file; a warning is reported and the file is used."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem of a flow file at a 1-based ``line`` and ``column``."""

    path: str
    line: int
    column: int
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class Report:
    """Problems of one file as they are found, positioned by the file's source map."""

    def __init__(self, path: str, source: SourceMap) -> None:
        self.path = path
        self.source = source
        self.problems: list[Problem] = []

    def add(self, position: Position, message: str, severity: Severity = Severity.ERROR) -> None:
        self.problems.append(Problem(self.path, position.line, position.column, message, severity))

    def at_value(self, loc: Loc, message: str, severity: Severity = Severity.ERROR) -> None:
        self.add(self.source.value(loc), message, severity)

    def at_key(self, loc: Loc, message: str, severity: Severity = Severity.ERROR) -> None:
        self.add(self.source.key(loc), message, severity)

    @property
    def has_errors(self) -> bool:
        return any(p.severity is Severity.ERROR for p in self.problems)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, else nothing."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
