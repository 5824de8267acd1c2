"""Errors raised by the RTP stack.

A peer's malformed datagram is an :class:`RtpParseError` carrying a short
``reason`` code (one of :class:`ParseReason`), so the receive path can keep
one counter per reason without parsing messages.  Our own misuse of the API
(an out-of-range field handed to a serialiser) is an :class:`RtpUsageError`.
"""

from __future__ import annotations

import enum


class RtpError(Exception):
    """Base of every error raised by :mod:`cosmo.rtp`."""


class RtpUsageError(RtpError):
    """The local program used the RTP API wrongly (a bug here, not the peer's)."""


class ParseReason(enum.StrEnum):
    """Why a datagram or payload was refused; stable names for counters."""

    SHORT = "short"  # fewer bytes than the fixed part needs
    VERSION = "version"  # version field is not 2
    PADDING = "padding"  # padding count is zero or runs into the header
    CSRC = "csrc"  # CSRC list runs past the data
    EXTENSION = "extension"  # header extension runs past the data
    LENGTH = "length"  # an RTCP length, count or item runs past its packet
    TYPE = "type"  # an RTCP packet of another type than the one asked for


class RtpParseError(RtpError):
    """Bytes that are not a well-formed RTP packet, RTCP packet or RTP payload.

    ``reason`` names the rule that failed (a :class:`ParseReason`); the
    message says where and by how much.
    """

    def __init__(self, message: str, reason: ParseReason) -> None:
        super().__init__(message)
        self.reason = reason
