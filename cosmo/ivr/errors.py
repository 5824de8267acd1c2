"""Errors of the IVR room: one base, :class:`IvrError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cosmo.ivr.problems import Problem

__all__ = ["ExpressionError", "FlowLoadError", "FlowNotFound", "IvrError", "StepError"]


class IvrError(Exception):
    """Base of every error the IVR room raises."""


class FlowLoadError(IvrError):
    """A flow file that cannot be used; ``problems`` says why (all of them)."""

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        super().__init__(f"{path}: {len(problems)} problem(s)")
        self.path = path
        self.problems = tuple(problems)


class FlowNotFound(IvrError):
    """No flow of that name is loaded."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no IVR flow {name!r}")
        self.name = name


class ExpressionError(IvrError):
    """An expression that does not compile (``offset``: 0-based position in its text)
    or fails when evaluated (``offset`` None)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class StepError(IvrError):
    """A step that could not do its work (a look-up failed, a queue refused the call)."""
