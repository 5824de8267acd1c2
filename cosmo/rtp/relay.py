"""Relaying audio between two legs of a call (the media half of a B2BUA bridge).

Each packet received on one leg goes out on the other at once, with the
other leg's own SSRC, sequence and timestamp (its stream stays continuous
through re-INVITEs, holds and source changes on either side).  Payloads are
not decoded when both legs use the same codec; µ-law ↔ A-law goes through a
256-byte translation table (G.711 Appendix), never through linear PCM.  Either direction can be paused, for example
while the held side listens to music on hold.
"""

from __future__ import annotations

from .g711 import alaw_to_ulaw, ulaw_to_alaw
from .session import RtpSession

_TRANSCODE = {("PCMU", "PCMA"): ulaw_to_alaw, ("PCMA", "PCMU"): alaw_to_ulaw}


class Relay:
    """Two-way audio between sessions ``a`` and ``b``."""

    def __init__(self, a: RtpSession, b: RtpSession) -> None:
        self.a = a
        self.b = b
        self.to_b = True  # a's audio reaches b
        self.to_a = True  # b's audio reaches a
        self.active = False

    def start(self) -> Relay:
        """Begin relaying (idempotent)."""
        if not self.active:
            self.active = True
            self.a.audio_sinks.append(self._from_a)
            self.b.audio_sinks.append(self._from_b)
        return self

    def stop(self) -> None:
        """Stop relaying (idempotent)."""
        if self.active:
            self.active = False
            for session, sink in ((self.a, self._from_a), (self.b, self._from_b)):
                if sink in session.audio_sinks:
                    session.audio_sinks.remove(sink)

    def _from_a(self, payload: bytes, _pt: int, _ts: int) -> None:
        if self.to_b:
            a, b = self.a, self.b
            if a.codec == b.codec:  # the common case: straight into b's stream
                b._send(b.payload_type, payload, len(payload))
            else:
                _transcoded(a, b, payload)

    def _from_b(self, payload: bytes, _pt: int, _ts: int) -> None:
        if self.to_a:
            a, b = self.a, self.b
            if a.codec == b.codec:
                a._send(a.payload_type, payload, len(payload))
            else:
                _transcoded(b, a, payload)


def _transcoded(source: RtpSession, target: RtpSession, payload: bytes) -> None:
    transcode = _TRANSCODE.get((source.codec, target.codec))
    if transcode is not None:
        payload = transcode(payload)
        target.send_audio(payload, len(payload))
