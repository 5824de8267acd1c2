"""Errors raised by :mod:`cosmo.email`."""

from __future__ import annotations

__all__ = [
    "CaseConflict",
    "EmailError",
    "IntakeRefused",
    "RulesError",
    "UnknownCase",
    "UnknownEmail",
]


class EmailError(Exception):
    """Base of every error raised by :mod:`cosmo.email`.

    ``status`` is what HTTP would answer for it (the API passes it on).
    """

    status = 400


class UnknownEmail(EmailError):
    """No stored e-mail has that id."""

    status = 404


class UnknownCase(EmailError):
    """No case has that id."""

    status = 404


class CaseConflict(EmailError):
    """The case or its work item is not in a state that allows this (not the agent's, closed...)."""

    status = 409


class RulesError(EmailError):
    """The classification rules file was refused; ``problems`` are ``file:line: message`` texts."""

    status = 422

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


class IntakeRefused(EmailError):
    """A message the SMTP intake refuses; ``code`` and ``enhanced`` are its SMTP reply (RFC 5321 §4.2, RFC 3463)."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.enhanced = enhanced
        self.text = text

    @property
    def reply(self) -> str:
        """The SMTP reply line, ``550 5.1.1 text``."""
        return f"{self.code} {self.enhanced} {self.text}"
