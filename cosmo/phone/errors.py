"""Errors of the agent softphone."""

from __future__ import annotations

__all__ = ["CommandError", "PhoneError"]


class PhoneError(Exception):
    """Base of the softphone's errors: a request it cannot carry out, or a pjsua2 failure."""


class CommandError(PhoneError):
    """A console line that is not a command; the text says what is accepted."""
