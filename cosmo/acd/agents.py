"""The one authoritative agent state machine.

Theory of operation
-------------------
An agent is in exactly one :class:`~cosmo.acd.model.AgentState`:

* ``logged_out``, ``available`` and ``not_ready`` (with a reason code from a
  configured list) are chosen by the person, through the desktop or the API;
* ``reserved`` (an offer is outstanding), ``busy`` (holding work) and
  ``wrap_up`` (after-work time following the last item) are set by the
  router.

:data:`TRANSITIONS` is the whole rule book: for every allowed
``(from, to)`` pair, who may make it (:class:`Actor`).  Both the desktop's
requests and the router's moves go through :meth:`AgentStateMachine.transition`,
which either refuses with :class:`~cosmo.acd.errors.AgentStateError` and
changes nothing, or changes the state and returns the
:class:`~cosmo.acd.events.AgentStateChanged` record.  A move to the state the
agent is already in (with the same reason) is not an error and returns
``None``: transitions are idempotent.

An agent that asks for ``not_ready`` while it holds work cannot leave that
work: the reason is kept as ``pending_reason`` and the router applies it once
the work is done (after wrap-up) instead of making the agent available;
``reserved``, ``busy`` and ``wrap_up`` keep it, the other states clear it.

:class:`AgentSnapshot` is what to store; :meth:`AgentStateMachine.restore`
builds the machine back from it without producing events.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cosmo.acd.errors import AgentStateError, UnknownReasonError
from cosmo.acd.events import AgentStateChanged
from cosmo.acd.model import AgentState

__all__ = ["TRANSITIONS", "Actor", "AgentSnapshot", "AgentStateMachine"]

log = logging.getLogger(__name__)

_OUT = AgentState.LOGGED_OUT
_AVAILABLE = AgentState.AVAILABLE
_NOT_READY = AgentState.NOT_READY
_RESERVED = AgentState.RESERVED
_BUSY = AgentState.BUSY
_WRAP_UP = AgentState.WRAP_UP


class Actor(enum.StrEnum):
    """Who asks for a transition."""

    AGENT = "agent"
    """The person (desktop, API, supervisor on the agent's behalf)."""
    ROUTER = "router"
    """The router, as a consequence of offers, answers, hang-ups and deadlines."""


_BOTH = frozenset({Actor.AGENT, Actor.ROUTER})
_AGENT = frozenset({Actor.AGENT})
_ROUTER = frozenset({Actor.ROUTER})

TRANSITIONS: Mapping[tuple[AgentState, AgentState], frozenset[Actor]] = {
    (_OUT, _AVAILABLE): _AGENT,
    (_OUT, _NOT_READY): _AGENT,
    (_AVAILABLE, _NOT_READY): _AGENT,
    (_AVAILABLE, _OUT): _AGENT,
    (_AVAILABLE, _RESERVED): _ROUTER,
    (_NOT_READY, _AVAILABLE): _AGENT,
    (_NOT_READY, _NOT_READY): _BOTH,  # a new reason
    (_NOT_READY, _OUT): _AGENT,
    # While it rings the agent may refuse by going not-ready or logging out;
    # the router withdraws the offer first.
    (_RESERVED, _NOT_READY): _BOTH,
    (_RESERVED, _OUT): _AGENT,
    (_RESERVED, _BUSY): _ROUTER,  # accepted, or withdrawn while other items are held
    (_RESERVED, _AVAILABLE): _ROUTER,  # withdrawn (the caller hung up)
    (_BUSY, _RESERVED): _ROUTER,  # another offer within spare capacity (e-mail 2 of 3)
    (_BUSY, _WRAP_UP): _ROUTER,
    (_BUSY, _AVAILABLE): _ROUTER,  # last item done, no wrap-up time
    (_BUSY, _NOT_READY): _ROUTER,  # last item done, not-ready pending
    (_WRAP_UP, _AVAILABLE): _BOTH,  # wrap-up time over, or the agent is ready early
    (_WRAP_UP, _NOT_READY): _BOTH,
    (_WRAP_UP, _OUT): _AGENT,
}
"""Every allowed transition and who may make it."""

_HOLDS_WORK = frozenset({_RESERVED, _BUSY})
_KEEPS_PENDING = frozenset({_RESERVED, _BUSY, _WRAP_UP})


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """An agent's state as stored: enough to restore it after a restart.

    ``since`` is when the state was entered; ``wrap_up_until`` the end of a
    wrap-up (set by the router); ``pending_reason`` a not-ready reason waiting
    for the agent's work to end.
    """

    extension: str
    state: AgentState
    since: float
    reason: str | None = None
    pending_reason: str | None = None
    wrap_up_until: float | None = None

    def to_dict(self) -> dict[str, str | float | None]:
        """The snapshot as JSON-ready data."""
        return {
            "extension": self.extension,
            "state": self.state.value,
            "since": self.since,
            "reason": self.reason,
            "pending_reason": self.pending_reason,
            "wrap_up_until": self.wrap_up_until,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AgentSnapshot:
        """The snapshot from :meth:`to_dict`'s data.  Raises :class:`AgentStateError` when malformed."""
        try:
            extension, state, since = data["extension"], data["state"], data["since"]
            reason, pending, until = data.get("reason"), data.get("pending_reason"), data.get("wrap_up_until")
            if not isinstance(extension, str) or not isinstance(state, str) or not isinstance(since, int | float):
                raise TypeError("extension, state or since")
            if not (reason is None or isinstance(reason, str)) or not (pending is None or isinstance(pending, str)):
                raise TypeError("reason")
            if not (until is None or isinstance(until, int | float)):
                raise TypeError("wrap_up_until")
            return cls(extension, AgentState(state), float(since), reason, pending, until)
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentStateError(f"stored agent state {dict(data)!r} is malformed: {exc}") from None


class AgentStateMachine:
    """One agent's state, reason and pending reason, changed only through :meth:`transition`.

    ``reasons`` is the configured list of not-ready reason codes.
    """

    __slots__ = ("extension", "pending_reason", "reason", "reasons", "since", "state")

    def __init__(self, extension: str, reasons: frozenset[str], since: float = 0.0) -> None:
        self.extension = extension
        self.reasons = reasons
        self.state = AgentState.LOGGED_OUT
        self.reason: str | None = None
        self.pending_reason: str | None = None
        self.since = since

    def __repr__(self) -> str:
        reason = f" ({self.reason})" if self.reason else ""
        return f"<AgentStateMachine {self.extension} {self.state}{reason}>"

    def check_reason(self, reason: str | None) -> str:
        """``reason`` when it is a configured not-ready reason; else :class:`UnknownReasonError`."""
        if reason is None:
            raise UnknownReasonError(f"agent {self.extension}: not_ready needs a reason")
        if reason not in self.reasons:
            known = ", ".join(sorted(self.reasons))
            raise UnknownReasonError(f"agent {self.extension}: unknown not-ready reason {reason!r} (known: {known})")
        return reason

    def check(self, to: AgentState, actor: Actor, reason: str | None = None) -> bool:
        """Whether :meth:`transition` would change the state (False: already there).

        Raises what :meth:`transition` would raise, and changes nothing.
        """
        if to is AgentState.NOT_READY:
            self.check_reason(reason)
        elif reason is not None:
            raise AgentStateError(f"agent {self.extension}: a reason goes with not_ready only, not with {to}")
        if to is self.state and (to is not AgentState.NOT_READY or reason == self.reason):
            return False
        actors = TRANSITIONS.get((self.state, to))
        if actors is None:
            raise AgentStateError(f"agent {self.extension}: {self.state} -> {to} is not allowed")
        if actor not in actors:
            raise AgentStateError(f"agent {self.extension}: {self.state} -> {to} is made by the router, not on request")
        return True

    def transition(
        self,
        to: AgentState,
        now: float,
        *,
        actor: Actor = Actor.ROUTER,
        reason: str | None = None,
        item_id: str | None = None,
    ) -> AgentStateChanged | None:
        """Move to ``to`` at ``now``; the event record, or ``None`` when already there.

        ``reason`` is required with ``not_ready`` (a configured code) and
        refused with any other state.  Raises :class:`AgentStateError` (or
        :class:`UnknownReasonError`) and changes nothing when the table does not
        allow the move for ``actor``.  Reaching ``available``, ``not_ready`` or
        ``logged_out`` clears ``pending_reason``.
        """
        if not self.check(to, actor, reason):
            return None
        old = self.state
        self.state = to
        self.reason = reason
        self.since = now
        if to not in _KEEPS_PENDING:
            self.pending_reason = None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("agent %s: %s -> %s%s", self.extension, old, to, f" ({reason})" if reason else "")
        return AgentStateChanged(
            extension=self.extension, from_state=old, to_state=to, reason=reason, item_id=item_id, ts=now
        )

    def defer_not_ready(self, reason: str | None) -> None:
        """Keep ``reason`` to apply when the agent's work ends (it is ``reserved`` or ``busy``).

        Raises :class:`UnknownReasonError` for an unknown reason and
        :class:`AgentStateError` when the agent holds no work.
        """
        reason = self.check_reason(reason)
        if self.state not in _HOLDS_WORK:
            raise AgentStateError(f"agent {self.extension}: only an agent at work can defer not_ready ({self.state})")
        self.pending_reason = reason

    def clear_pending(self) -> None:
        """Forget a deferred not-ready reason (the agent asked for ``available`` again)."""
        self.pending_reason = None

    def snapshot(self, wrap_up_until: float | None = None) -> AgentSnapshot:
        """The state to store."""
        return AgentSnapshot(self.extension, self.state, self.since, self.reason, self.pending_reason, wrap_up_until)

    @classmethod
    def restore(cls, snapshot: AgentSnapshot, reasons: frozenset[str]) -> AgentStateMachine:
        """The machine in the stored state, without an event.

        Raises :class:`AgentStateError` when the snapshot is inconsistent (a
        not-ready state without a known reason, a reason on another state, a
        pending reason on an agent without work).
        """
        machine = cls(snapshot.extension, reasons, snapshot.since)
        if snapshot.state is AgentState.NOT_READY:
            machine.check_reason(snapshot.reason)
        elif snapshot.reason is not None:
            raise AgentStateError(f"agent {snapshot.extension}: stored reason {snapshot.reason!r} on {snapshot.state}")
        if snapshot.pending_reason is not None:
            machine.check_reason(snapshot.pending_reason)
            if snapshot.state not in _KEEPS_PENDING:
                raise AgentStateError(f"agent {snapshot.extension}: stored pending reason on {snapshot.state}")
        machine.state = snapshot.state
        machine.reason = snapshot.reason
        machine.pending_reason = snapshot.pending_reason
        return machine
