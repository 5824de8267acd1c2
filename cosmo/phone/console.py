"""The softphone's line-oriented console: keys in, one line per event out.

A line is read whole (the terminal's own line editing applies), parsed into
a small command value, and carried out by the softphone; every event the
softphone reports becomes one line on the output stream.  Nothing here
touches pjsua2, so the keys and the wording are tested without it.

Keys::

    a            answer the ringing call
    h            hang up (or reject the ringing call)
    H            hold / resume
    0-9 * #      send those digits as RFC 4733 DTMF, e.g. ``123#``
    d DIGITS     send DTMF, A-D allowed too
    c NUMBER     call an extension, a number or a sip: URI
    s            status: registration and calls
    ?            this help
    q            quit (hang up, unregister)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TextIO

from cosmo.phone.errors import CommandError
from cosmo.phone.events import (
    CallState,
    CallStateChanged,
    CallSummary,
    DtmfReceived,
    DtmfSent,
    Event,
    HoldChanged,
    HoldState,
    Notice,
    RecordingClosed,
    RegistrationChanged,
    SoundChosen,
)

__all__ = [
    "HELP",
    "Answer",
    "Command",
    "Console",
    "Dial",
    "Hangup",
    "Help",
    "Quit",
    "SendDtmf",
    "Status",
    "ToggleHold",
    "parse_command",
    "render",
    "render_status",
]

HELP = """keys (then Enter):
  a            answer the ringing call
  h            hang up, or reject the ringing call
  H            hold / resume
  0-9 * #      send DTMF (RFC 4733), e.g. 123#
  d DIGITS     send DTMF, A-D allowed too
  c NUMBER     call an extension, a number or a sip: URI
  s            status
  ?            this help
  q            quit"""


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the ringing call with 200 OK."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call: BYE when up, CANCEL when calling out, 603 when ringing in."""


@dataclass(frozen=True, slots=True)
class ToggleHold:
    """Hold the call (re-INVITE with a=sendonly), or resume it when held."""


@dataclass(frozen=True, slots=True)
class SendDtmf:
    """Send ``digits`` as RFC 4733 telephone-events."""

    digits: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Call ``target``: an extension, a number or a full sip:/sips: URI."""

    target: str


@dataclass(frozen=True, slots=True)
class Status:
    """Print the registration and the calls."""


@dataclass(frozen=True, slots=True)
class Help:
    """Print the keys."""


@dataclass(frozen=True, slots=True)
class Quit:
    """Hang up, unregister and leave."""


Command = Answer | Hangup | ToggleHold | SendDtmf | Dial | Status | Help | Quit

_DIGITS = re.compile(r"^[0-9*#]+$")
_ANY_DTMF = re.compile(r"^[0-9*#A-Da-d]+$")
# What may be dialled: a SIP URI as is, else a user part (RFC 3261 §25.1
# unreserved characters, '+' for E.164 numbers).
_DIAL_USER = re.compile(r"^[A-Za-z0-9+*#._~!$&'()=-]+$")

_SINGLE_KEYS: dict[str, Command] = {
    "a": Answer(),
    "h": Hangup(),
    "H": ToggleHold(),
    "s": Status(),
    "?": Help(),
    "help": Help(),
    "q": Quit(),
    "quit": Quit(),
}


def parse_command(line: str) -> Command | None:
    """The command a console line asks for; ``None`` for an empty line.

    Raises :class:`CommandError` for anything else, saying what was wrong.
    """
    text = line.strip()
    if not text:
        return None
    single = _SINGLE_KEYS.get(text)
    if single is not None:
        return single
    if _DIGITS.match(text):
        return SendDtmf(text)
    key, _, rest = text.partition(" ")
    rest = rest.strip()
    if key == "c":
        if not rest:
            raise CommandError("c needs a number: c 1002")
        if rest.lower().startswith(("sip:", "sips:")) or _DIAL_USER.match(rest):
            return Dial(rest)
        raise CommandError(f"cannot dial {rest!r}: give an extension, a number or a sip: URI")
    if key == "d":
        if not _ANY_DTMF.match(rest):
            raise CommandError("d needs DTMF digits (0-9 * # A-D): d 12A#")
        return SendDtmf(rest.upper())
    raise CommandError(f"unknown key {text!r} (? for help)")


def render(event: Event) -> str:
    """The console line for one event."""
    match event:
        case RegistrationChanged(code=code, reason=reason, registered=True, expires=expires, aor=aor):
            return f"registered as {aor} ({code} {reason}, expires in {expires} s)"
        case RegistrationChanged(code=code, reason=reason, registered=False, aor=aor) if 200 <= code < 300:
            return f"unregistered {aor}"
        case RegistrationChanged(code=code, reason=reason, aor=aor):
            return f"registration of {aor} failed: {code} {reason}"
        case CallStateChanged():
            return _render_call_state(event)
        case HoldChanged(call=call, hold=HoldState.LOCAL):
            return f"call {call}: on hold (H to resume)"
        case HoldChanged(call=call, hold=HoldState.REMOTE):
            return f"call {call}: held by the other side"
        case HoldChanged(call=call):
            return f"call {call}: resumed"
        case DtmfSent(call=call, digits=digits):
            return f"call {call}: sent DTMF {digits}"
        case DtmfReceived(call=call, digit=digit):
            return f"call {call}: received DTMF {digit}"
        case RecordingClosed(call=call, path=path):
            return f"call {call}: recorded to {path}"
        case SoundChosen(description=description):
            return f"sound: {description}"
        case Notice(text=text):
            return text
    raise AssertionError(f"no rendering for {event!r}")  # every Event is matched above


def render_status(aor: str, registered: bool, calls: list[CallSummary]) -> str:
    """The lines of the ``s`` key: the registration, then each call or ``no call``."""
    lines = [f"status: {aor} {'registered' if registered else 'not registered'}"]
    for call in calls:
        direction = "to" if call.outgoing else "from"
        hold = "" if call.hold == HoldState.NONE else f", hold: {call.hold}"
        lines.append(f"status: call {call.call} {call.state or 'NULL'} {direction} {call.party}{hold}")
    if not calls:
        lines.append("status: no call")
    return "\n".join(lines)


def _render_call_state(event: CallStateChanged) -> str:
    prefix = f"call {event.call}: {event.state}"
    if event.state == CallState.INCOMING:
        return f"{prefix} from {event.party} (a to answer, h to reject)"
    if event.state == CallState.CALLING:
        return f"{prefix} {event.party}"
    line = f"{prefix} {'to' if event.outgoing else 'from'} {event.party}"
    if event.state in (CallState.EARLY, CallState.DISCONNECTED) and event.code:
        line += f" ({event.code} {event.reason})"
    return line


class Console:
    """Writes rendered events and messages to ``out``, one flushed line each."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def show(self, event: Event) -> None:
        """Print one event."""
        self.write(render(event))

    def write(self, text: str) -> None:
        """Print ``text`` (one or more lines) and flush, so pipes see it at once."""
        self.out.write(text + "\n")
        self.out.flush()
