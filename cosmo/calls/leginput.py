"""What a caller sends on one leg, for the IVR: digits and audio.

Theory of operation
-------------------
:class:`LegInput` hooks one leg's RTP session (its ``dtmf_sinks`` and
``audio_sinks``) for as long as the leg is in a flow:

* Digits (RFC 4733 events, in-band tones, SIP INFO — the RTP session merges
  them) go into a *type-ahead* buffer, so a key pressed during a prompt, or
  before the next menu asks, is not lost.  :meth:`next_digit` takes them in
  order; :meth:`clear_digits` forgets them (a new menu that must not see an
  old key).  ``on_digit`` is told of each key as it arrives (barge-in).
* Audio is decoded from G.711 to 16-bit PCM, 8 kHz, and handed in whole
  20 ms frames to ``on_audio`` while someone listens (speech recognition);
  nothing is decoded otherwise.

Everything runs on the event loop, called from the RTP receive path: the
callbacks must be cheap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from cosmo.rtp.dtmf import DtmfDigit
from cosmo.rtp.g711 import find_codec
from cosmo.rtp.session import RtpSession

__all__ = ["FRAME_BYTES", "LegInput"]

log = logging.getLogger(__name__)

FRAME_SAMPLES = 160
FRAME_BYTES = FRAME_SAMPLES * 2
"""One 20 ms frame of 8 kHz 16-bit PCM."""

TYPE_AHEAD = 32
"""Digits kept ahead of the flow; older ones are dropped beyond this."""


class LegInput:
    """Digits and audio from one leg's RTP session.  See the module documentation."""

    def __init__(self, rtp: RtpSession) -> None:
        self.rtp = rtp
        self._digits: deque[str] = deque(maxlen=TYPE_AHEAD)
        self._arrived = asyncio.Event()
        self.on_digit: Callable[[str], None] | None = None
        self.on_audio: Callable[[bytes], None] | None = None
        self._pcm = bytearray()
        rtp.dtmf_sinks.append(self._digit)
        rtp.audio_sinks.append(self._audio)

    def close(self) -> None:
        """Unhook from the RTP session."""
        if self._digit in self.rtp.dtmf_sinks:
            self.rtp.dtmf_sinks.remove(self._digit)
        if self._audio in self.rtp.audio_sinks:
            self.rtp.audio_sinks.remove(self._audio)
        self.on_digit = self.on_audio = None

    # ---- digits --------------------------------------------------------------------
    def _digit(self, digit: DtmfDigit) -> None:
        self._digits.append(digit.digit)
        self._arrived.set()
        if self.on_digit is not None:
            self.on_digit(digit.digit)

    @property
    def pending(self) -> str:
        """The digits typed ahead, not taken yet."""
        return "".join(self._digits)

    def clear_digits(self) -> None:
        """Forget the digits typed ahead."""
        self._digits.clear()
        self._arrived.clear()

    async def next_digit(self, timeout: float | None) -> str | None:
        """The next digit, waiting up to ``timeout`` seconds; ``None`` when none came."""
        if not self._digits:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return None
        return self._digits.popleft() if self._digits else None

    # ---- audio ---------------------------------------------------------------------
    def _audio(self, payload: bytes, _pt: int, _ts: int) -> None:
        listener = self.on_audio
        if listener is None:
            return
        codec = find_codec(self.rtp.codec)
        if codec is None:
            return
        self._pcm += codec.decode(payload).astype("<i2").tobytes()
        while len(self._pcm) >= FRAME_BYTES:
            frame = bytes(self._pcm[:FRAME_BYTES])
            del self._pcm[:FRAME_BYTES]
            listener(frame)
