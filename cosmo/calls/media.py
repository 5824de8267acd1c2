"""Cosmo's side of the SDP offer/answer for the legs it terminates.

Until the RTP engine owns the media path, :class:`SdpOnlyMedia` negotiates
real SDP (codec choice, direction, telephone-event) on ports reserved from
the configured RTP range, so phones and trunks accept the call; no audio
flows on them yet.
"""

from __future__ import annotations

import itertools
import time

from cosmo.sip.sdp import parse_sdp
from cosmo.sip.sdp_negotiation import create_offer, negotiate_answer

from .call import Call


class SdpOnlyMedia:
    """Negotiates SDP for locally terminated legs; one even RTP port per call."""

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        self.host = host
        self._ports = itertools.cycle(range(port_min + port_min % 2, port_max - 1, 2))
        self._session_id = int(time.time())
        self._held: dict[str, int] = {}

    def _port(self, call: Call) -> int:
        port = self._held.get(call.id)
        if port is None:
            port = self._held[call.id] = next(self._ports)
        return port

    def answer(self, call: Call, offer: bytes) -> bytes:
        """The answer to ``offer``; SdpError (488/400) when it cannot be accepted."""
        answer, _ = negotiate_answer(
            parse_sdp(offer), self.host, self._port(call), session_id=self._session_id, version=1
        )
        return bytes(answer)

    def offer(self, call: Call) -> bytes:
        """An offer of PCMU, PCMA and telephone-event."""
        return bytes(create_offer(self.host, self._port(call), session_id=self._session_id, version=1))

    def release(self, call: Call) -> None:
        """Forget the call's port."""
        self._held.pop(call.id, None)
