"""A call and its legs, with the record (CDR) each call leaves behind.

A :class:`Call` is what the contact centre sees: one customer interaction
by voice, with one or more SIP legs (the caller's, an agent's, a trunk's).
Its state moves only forward (setup → ringing → answered → ended); the end
is recorded once, with who hung up and why, and becomes a :class:`CallRecord`.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from cosmo.sip.session import InviteSession

log = logging.getLogger(__name__)


class CallState(StrEnum):
    """Where a call is."""

    SETUP = "setup"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


_MOVES = {
    CallState.SETUP: {CallState.RINGING, CallState.ANSWERED, CallState.ENDED},
    CallState.RINGING: {CallState.ANSWERED, CallState.ENDED},
    CallState.ANSWERED: {CallState.ENDED},
    CallState.ENDED: set(),
}


class Direction(StrEnum):
    """Seen from the contact centre."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class LegRole(StrEnum):
    """What a leg connects to."""

    CALLER = "caller"  # the customer, inbound from a trunk
    AGENT = "agent"  # an agent's phone
    TRUNK = "trunk"  # out through a trunk (a B2BUA B-leg or an outbound call)


@dataclass(slots=True)
class Leg:
    """One SIP leg of a call."""

    role: LegRole
    session: InviteSession
    target: str  # what was dialled / who called, for records


@dataclass(frozen=True, slots=True)
class CallRecord:
    """The call detail record stored when a call ends."""

    call_id: str
    sip_call_id: str
    direction: str
    trunk: str | None
    from_uri: str
    to_uri: str
    caller: str
    callee: str
    started_at: float
    answered_at: float | None
    ended_at: float
    end_reason: str
    hangup_by: str  # caller, callee or system (Cosmo: timeout, API, media failure)
    sip_status: int | None
    extra: dict[str, object]

    @property
    def duration_s(self) -> float:
        """Talk time (from answer to end), 0 for unanswered calls."""
        return 0.0 if self.answered_at is None else max(0.0, self.ended_at - self.answered_at)


@dataclass(slots=True)
class Call:
    """A call; see the module docstring."""

    direction: Direction
    caller: str
    callee: str
    from_uri: str = ""
    to_uri: str = ""
    trunk: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    legs: list[Leg] = field(default_factory=list)
    state: CallState = CallState.SETUP
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    hangup_by: str | None = None
    sip_status: int | None = None
    data: dict[str, object] = field(default_factory=dict)

    @property
    def sip_call_id(self) -> str:
        """The SIP Call-ID of the first leg."""
        return self.legs[0].session.call_id if self.legs else ""

    def leg(self, role: LegRole) -> Leg | None:
        """The first leg in ``role``."""
        for leg in self.legs:
            if leg.role == role:
                return leg
        return None

    def set_state(self, new: CallState) -> bool:
        """Move forward to ``new``; returns False (and logs) for a move that is not allowed."""
        if new == self.state:
            return False
        if new not in _MOVES[self.state]:
            log.warning("call %s: refused transition %s -> %s", self.id, self.state, new)
            return False
        log.debug("call %s: %s -> %s", self.id, self.state, new)
        self.state = new
        if new == CallState.ANSWERED:
            self.answered_at = time.time()
        elif new == CallState.ENDED:
            self.ended_at = time.time()
        return True

    def record(self) -> CallRecord:
        """The CDR of an ended call."""
        return CallRecord(
            call_id=self.id,
            sip_call_id=self.sip_call_id,
            direction=str(self.direction),
            trunk=self.trunk,
            from_uri=self.from_uri,
            to_uri=self.to_uri,
            caller=self.caller,
            callee=self.callee,
            started_at=self.started_at,
            answered_at=self.answered_at,
            ended_at=self.ended_at or time.time(),
            end_reason=self.end_reason or "unknown",
            hangup_by=self.hangup_by or "unknown",
            sip_status=self.sip_status,
            extra={k: v for k, v in self.data.items() if isinstance(v, str | int | float | bool | dict)},
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view for the API."""
        return {
            "id": self.id,
            "sip_call_id": self.sip_call_id,
            "direction": str(self.direction),
            "state": str(self.state),
            "caller": self.caller,
            "callee": self.callee,
            "trunk": self.trunk,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "legs": [{"role": str(leg.role), "target": leg.target, "state": str(leg.session.state)} for leg in self.legs],
        }
