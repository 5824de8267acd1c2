"""Errors raised by the SIP stack.

A peer's mistake (``SipParseError`` and friends) carries the SIP status the
layer above should answer with, so a server can reply ``400 Bad Request`` or
``505 Version Not Supported`` without re-deriving why.  Our own misuse of the
API is a ``SipUsageError`` and is never sent to a peer.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by :mod:`cosmo.sip`."""


class SipUsageError(SipError):
    """The local program used the SIP API wrongly (a bug here, not the peer's)."""


class SipProtocolError(SipError):
    """A peer sent something that breaks the protocol.

    ``status`` and ``reason`` are what a server should answer with when an
    answer is possible (for example 400 or 505).
    """

    def __init__(self, message: str, status: int = 400, reason: str = "Bad Request") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def detail(self) -> str:
        """The human-readable description, suitable for a ``Warning``-free reason text."""
        return str(self.args[0]) if self.args else self.reason


class SipParseError(SipProtocolError):
    """Bytes that are not a well-formed SIP message, URI or header value.

    ``headers`` holds what could be parsed of the header section (may be
    ``None``), so that a server can still build an error response carrying the
    request's Via, From, To, Call-ID and CSeq.
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        reason: str = "Bad Request",
        headers: object | None = None,
    ) -> None:
        super().__init__(message, status, reason)
        self.headers = headers
