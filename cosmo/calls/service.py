"""The telephony facade that the web API uses: plain data in, plain data out.

The web room never touches SIP objects (ARCHITECTURE rule 3); it asks this
service, which answers with JSON-ready dictionaries.
"""

from __future__ import annotations

import time

from cosmo.sip.registrar import LocationService, aor_for
from cosmo.sip.stack import SipStack
from cosmo.sip.useragent import UserAgent

from .call import CallState
from .manager import CallManager


class TelephonyService:
    """Calls, registrations and SIP counters for the API."""

    def __init__(self, manager: CallManager, location: LocationService, stack: SipStack, ua: UserAgent) -> None:
        self.manager = manager
        self.location = location
        self.stack = stack
        self.ua = ua

    def calls(self) -> list[dict[str, object]]:
        """Calls in progress."""
        return [call.to_dict() for call in self.manager.calls.values()]

    async def originate(self, target: str, caller: str = "cosmo") -> dict[str, object]:
        """Place a call to an extension or a number; returns the call once answered or failed."""
        call = await self.manager.originate(target, caller=caller)
        view = call.to_dict()
        view["answered"] = call.state == CallState.ANSWERED
        view["end_reason"] = call.end_reason
        view["sip_status"] = call.sip_status
        return view

    async def hangup(self, call_id: str) -> bool:
        """Hang up a call; False when there is none with that id."""
        return await self.manager.hangup(call_id)

    def registrations(self, extension: str | None = None) -> list[dict[str, object]]:
        """Live registrations, for every agent or one extension."""
        now = time.time()
        aors = [aor_for(extension)] if extension else self.location.all_aors()
        out: list[dict[str, object]] = []
        for aor in aors:
            for binding in self.location.bindings(aor, now):
                out.append(
                    {
                        "extension": aor.split(":", 1)[1],
                        "contact": binding.contact,
                        "expires_in": binding.expires_in(now),
                        "source": str(binding.source),
                        "user_agent": binding.user_agent,
                    }
                )
        return out

    def sip_stats(self) -> dict[str, object]:
        """Counters of the SIP stack (what arrived, what was dropped, what is alive)."""
        stats = self.stack.stats
        transport = self.stack.transports.stats
        return {
            "messages_in": stats.messages_in,
            "requests_in": stats.requests_in,
            "responses_in": stats.responses_in,
            "parse_errors": stats.parse_errors,
            "rejected_requests": stats.rejected_requests,
            "dropped_responses": stats.dropped_responses,
            "handler_errors": stats.handler_errors,
            "garbage_dropped": transport.garbage_dropped,
            "oversize": transport.oversize,
            "framing_errors": transport.framing_errors,
            "connections_open": transport.connections_open,
            "client_transactions": self.stack.transactions.client_count,
            "server_transactions": self.stack.transactions.server_count,
            "sessions": self.ua.session_count,
            "calls": len(self.manager.calls),
        }
