"""What the agent softphone reports: small frozen events, and the calling party.

The pjsua2 adapter (:mod:`cosmo.phone.softphone`) turns pjsip's callbacks
into these events; the console (:mod:`cosmo.phone.console`) renders them.
Neither this module nor the console imports pjsua2, so both are testable
without the optional ``phone`` extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CallState",
    "CallStateChanged",
    "CallSummary",
    "DtmfReceived",
    "DtmfSent",
    "Event",
    "HoldChanged",
    "HoldState",
    "Notice",
    "Party",
    "RecordingClosed",
    "RegistrationChanged",
    "SoundChosen",
]


class CallState(StrEnum):
    """A call's state, named as pjsip's INVITE session states (RFC 3261 §13)."""

    CALLING = "CALLING"  # INVITE sent, nothing heard back
    INCOMING = "INCOMING"  # INVITE received, not answered yet
    EARLY = "EARLY"  # a provisional response with a To tag: ringing
    CONNECTING = "CONNECTING"  # 2xx sent or received, ACK pending
    CONFIRMED = "CONFIRMED"  # the call is up
    DISCONNECTED = "DISCONNECTED"  # ended: refused, cancelled or hung up


class HoldState(StrEnum):
    """Who holds the call's audio (RFC 3264 §8.4: sendonly/inactive offers)."""

    NONE = "none"
    LOCAL = "local"  # this phone put the call on hold
    REMOTE = "remote"  # the other side did


# name-addr: optional display name (quoted or a token run), then <URI>;
# or a bare addr-spec (RFC 3261 §20.10, §25.1).
_NAME_ADDR = re.compile(r'^\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^<"]*?))\s*<(?P<uri>[^>]*)>')
_URI_USER = re.compile(r"^(?:sips?|tel):(?:(?P<user>[^@;?]*)@)?(?P<host>[^;?>]*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Party:
    """The other side of a call: number (the URI's user part), display name, URI."""

    number: str
    name: str | None
    uri: str

    @classmethod
    def parse(cls, value: str) -> Party:
        """Read a From/To/remote URI as pjsip reports it (``"Ada" <sip:1001@cosmo.local>``).

        Never fails: what cannot be read as a SIP URI is kept whole as the number.
        """
        text = value.strip()
        name: str | None = None
        uri = text
        match = _NAME_ADDR.match(text)
        if match is not None:
            uri = match.group("uri").strip()
            quoted = match.group("quoted")
            raw = quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted is not None else match.group("token")
            name = raw.strip() or None
        user = _URI_USER.match(uri)
        if user is None:
            return cls(number=uri, name=name, uri=uri)
        number = user.group("user") or user.group("host")
        if uri.lower().startswith("tel:"):
            number = user.group("host")
        return cls(number=number, name=name, uri=uri)

    def __str__(self) -> str:
        if self.name and self.name != self.number:
            return f"{self.name} <{self.number}>"
        return self.number


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """A REGISTER transaction ended: ``registered`` is whether a binding is active now."""

    code: int
    reason: str
    registered: bool
    expires: int
    aor: str


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    """A call moved to ``state``; ``code``/``reason`` are the last SIP status seen."""

    call: int
    state: CallState
    party: Party
    code: int
    reason: str
    outgoing: bool


@dataclass(frozen=True, slots=True)
class CallSummary:
    """A call in progress, as the status key shows it (not an event)."""

    call: int
    state: CallState | None
    party: Party
    hold: HoldState
    outgoing: bool


@dataclass(frozen=True, slots=True)
class HoldChanged:
    """The call's audio was held or resumed, by this phone or by the other side."""

    call: int
    hold: HoldState


@dataclass(frozen=True, slots=True)
class DtmfSent:
    """Digits handed to pjsip for RFC 4733 telephone-events."""

    call: int
    digits: str


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A digit the other side sent (RFC 4733 or SIP INFO)."""

    call: int
    digit: str


@dataclass(frozen=True, slots=True)
class RecordingClosed:
    """A call's recording was finished and its WAV header written."""

    call: int
    path: str


@dataclass(frozen=True, slots=True)
class SoundChosen:
    """Where the phone's audio goes: a sound device, pyaudio, or nowhere (null device)."""

    kind: str  # "pjsua", "pyaudio" or "null"
    description: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A line of information for the person at the phone."""

    text: str


Event = (
    RegistrationChanged
    | CallStateChanged
    | HoldChanged
    | DtmfSent
    | DtmfReceived
    | RecordingClosed
    | SoundChosen
    | Notice
)
