"""In-band DTMF on a received G.711 stream, for peers that negotiated no telephone-event.

RFC 4733 digits need ``telephone-event`` in both SDPs; a peer that did not
offer it (old gateways, some carriers) sends its keys as tones in the audio.
:class:`InbandDtmfListener` decodes each received payload and feeds the
:class:`~cosmo.rtp.dtmf.GoertzelDetector` in the whole 10 ms steps it
analyses, carrying any remainder to the next packet, so any packet length
(10, 20, 30 ms, or odd sizes) works.  A payload of a codec it cannot decode
is ignored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .dtmf import HOP, DtmfDigit, GoertzelDetector
from .g711 import alaw_decode, ulaw_decode

__all__ = ["InbandDtmfListener"]

_DECODERS: dict[str, Callable[[bytes], npt.NDArray[np.int16]]] = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
_EMPTY = np.zeros(0, dtype=np.int16)


class InbandDtmfListener:
    """Digits heard in one stream's audio (``source="inband"``)."""

    def __init__(self, detector: GoertzelDetector | None = None) -> None:
        self.detector = detector if detector is not None else GoertzelDetector()
        self._carry = _EMPTY

    def reset(self) -> None:
        """Forget buffered audio and any digit in progress (the stream changed)."""
        self.detector.reset()
        self._carry = _EMPTY

    def feed(self, payload: bytes, codec: str) -> list[DtmfDigit]:
        """Digits recognised once ``payload`` (G.711 of ``codec``) is added to the audio."""
        decode = _DECODERS.get(codec)
        if decode is None or not payload:
            return []
        samples = decode(payload)
        if len(self._carry):
            samples = np.concatenate((self._carry, samples))
        whole = len(samples) - len(samples) % HOP
        self._carry = samples[whole:].copy() if whole < len(samples) else _EMPTY
        if not whole:
            return []
        return self.detector.feed(samples[:whole])
