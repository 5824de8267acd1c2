"""Errors raised by :mod:`cosmo.acd`.

Every error derives from :class:`AcdError` and carries ``status``, the HTTP
status a request that caused it should be answered with (the API maps it as
is): 404 for something unknown, 409 for a move the current state forbids, 422
for a value that can never be right.  A refused call changes nothing.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AcdConfigConflict",
    "AcdConfigError",
    "AcdError",
    "AgentStateError",
    "RoutingError",
    "UnknownAgentError",
    "UnknownItemError",
    "UnknownQueueError",
    "UnknownReasonError",
]


class AcdError(Exception):
    """Base of every error raised by :mod:`cosmo.acd`."""

    status: ClassVar[int] = 400


class AcdConfigError(AcdError):
    """An agent, queue or work item definition is invalid (bad level, unknown target, overflow loop)."""

    status = 422


class AcdConfigConflict(AcdConfigError):
    """A configuration change the current work forbids (removing a queue that holds
    items, or an agent who is logged in)."""

    status = 409


class AgentStateError(AcdError):
    """An agent state change that the transition table does not allow from the current state."""

    status = 409


class UnknownReasonError(AgentStateError):
    """A not-ready reason code that is not in the configured list."""

    status = 422


class RoutingError(AcdError):
    """A work-item operation that does not fit the item's state (accepting an offer made to another agent)."""

    status = 409


class UnknownAgentError(AcdError):
    """No agent with that extension is known to the router."""

    status = 404


class UnknownQueueError(AcdError):
    """No queue with that name is configured."""

    status = 404


class UnknownItemError(AcdError):
    """No work item with that id is in the router."""

    status = 404
