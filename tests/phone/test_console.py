"""The softphone's console: keys parsed into commands, events rendered as lines (no pjsua2)."""

from __future__ import annotations

import io

import pytest

from cosmo.phone.console import (
    Answer,
    Command,
    Console,
    Dial,
    Hangup,
    Help,
    Quit,
    SendDtmf,
    Status,
    ToggleHold,
    parse_command,
    render,
    render_status,
)
from cosmo.phone.errors import CommandError, PhoneError
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
    Party,
    RecordingClosed,
    RegistrationChanged,
    SoundChosen,
)

ADA = Party("1001", "Ada Lovelace", "sip:1001@cosmo.local")


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("a", Answer()),
        ("h", Hangup()),
        ("H", ToggleHold()),
        ("  s \n", Status()),
        ("?", Help()),
        ("help", Help()),
        ("q", Quit()),
        ("quit", Quit()),
        ("5", SendDtmf("5")),
        ("123#", SendDtmf("123#")),
        ("*0#", SendDtmf("*0#")),
        ("d 12ab#", SendDtmf("12AB#")),
        ("c 1002", Dial("1002")),
        ("c +15550100", Dial("+15550100")),
        ("c  sip:bob@example.com;transport=tcp ", Dial("sip:bob@example.com;transport=tcp")),
        ("", None),
        ("   \n", None),
    ],
)
def test_keys(line: str, command: Command | None) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x", "unknown key 'x' (? for help)"),
        ("A", "unknown key 'A' (? for help)"),
        ("12x", "unknown key '12x' (? for help)"),
        ("c", "c needs a number: c 1002"),
        ("c <1002>", "cannot dial '<1002>': give an extension, a number or a sip: URI"),
        ("d", "d needs DTMF digits (0-9 * # A-D): d 12A#"),
        ("d 12E", "d needs DTMF digits (0-9 * # A-D): d 12A#"),
    ],
)
def test_bad_keys_say_what_is_accepted(line: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(line)
    assert str(caught.value) == message
    assert isinstance(caught.value, PhoneError)


@pytest.mark.parametrize(
    ("value", "party"),
    [
        ('"Ada Lovelace" <sip:1001@cosmo.local>', Party("1001", "Ada Lovelace", "sip:1001@cosmo.local")),
        ("cosmo <sip:cosmo@cosmo.local>;tag=x", Party("cosmo", "cosmo", "sip:cosmo@cosmo.local")),
        ("<sip:+15550123@127.0.0.1:5060;transport=tcp>", Party("+15550123", None,
                                                               "sip:+15550123@127.0.0.1:5060;transport=tcp")),
        ("sip:1002@cosmo.local", Party("1002", None, "sip:1002@cosmo.local")),
        ('"say \\"hi\\"" <sips:bob@example.com>', Party("bob", 'say "hi"', "sips:bob@example.com")),
        ("<tel:+15550100>", Party("+15550100", None, "tel:+15550100")),
        ("<sip:example.com>", Party("example.com", None, "sip:example.com")),
        ("not a uri", Party("not a uri", None, "not a uri")),
    ],
)
def test_party_from_what_pjsip_reports(value: str, party: Party) -> None:
    assert Party.parse(value) == party


def test_party_shows_the_name_and_the_number_once() -> None:
    assert str(ADA) == "Ada Lovelace <1001>"
    assert str(Party("cosmo", "cosmo", "sip:cosmo@cosmo.local")) == "cosmo"
    assert str(Party("1002", None, "sip:1002@cosmo.local")) == "1002"


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (RegistrationChanged(200, "OK", True, 300, "1001@cosmo.local"),
         "registered as 1001@cosmo.local (200 OK, expires in 300 s)"),
        (RegistrationChanged(200, "OK", False, 0, "1001@cosmo.local"), "unregistered 1001@cosmo.local"),
        (RegistrationChanged(403, "Forbidden", False, 0, "1001@cosmo.local"),
         "registration of 1001@cosmo.local failed: 403 Forbidden"),
        (CallStateChanged(1, CallState.INCOMING, ADA, 0, "", False),
         "call 1: INCOMING from Ada Lovelace <1001> (a to answer, h to reject)"),
        (CallStateChanged(2, CallState.CALLING, ADA, 0, "", True), "call 2: CALLING Ada Lovelace <1001>"),
        (CallStateChanged(2, CallState.EARLY, ADA, 180, "Ringing", True),
         "call 2: EARLY to Ada Lovelace <1001> (180 Ringing)"),
        (CallStateChanged(1, CallState.CONFIRMED, ADA, 200, "OK", False), "call 1: CONFIRMED from Ada Lovelace <1001>"),
        (CallStateChanged(1, CallState.DISCONNECTED, ADA, 200, "Normal call clearing", False),
         "call 1: DISCONNECTED from Ada Lovelace <1001> (200 Normal call clearing)"),
        (CallStateChanged(2, CallState.DISCONNECTED, ADA, 486, "Busy Here", True),
         "call 2: DISCONNECTED to Ada Lovelace <1001> (486 Busy Here)"),
        (HoldChanged(1, HoldState.LOCAL), "call 1: on hold (H to resume)"),
        (HoldChanged(1, HoldState.REMOTE), "call 1: held by the other side"),
        (HoldChanged(1, HoldState.NONE), "call 1: resumed"),
        (DtmfSent(1, "123#"), "call 1: sent DTMF 123#"),
        (DtmfReceived(1, "5"), "call 1: received DTMF 5"),
        (RecordingClosed(1, "/tmp/a.wav"), "call 1: recorded to /tmp/a.wav"),
        (SoundChosen("null", "none, null device"), "sound: none, null device"),
        (Notice("call 1: answering automatically"), "call 1: answering automatically"),
    ],
)
def test_event_lines(event: Event, line: str) -> None:
    assert render(event) == line


def test_status_lines() -> None:
    assert render_status("1001@cosmo.local", False, []) == \
        "status: 1001@cosmo.local not registered\nstatus: no call"
    calls = [CallSummary(3, CallState.CONFIRMED, ADA, HoldState.LOCAL, True)]
    assert render_status("1002@cosmo.local", True, calls) == \
        "status: 1002@cosmo.local registered\nstatus: call 3 CONFIRMED to Ada Lovelace <1001>, hold: local"


def test_console_writes_one_flushed_line_per_event() -> None:
    out = io.StringIO()
    console = Console(out)
    console.show(DtmfSent(1, "9"))
    console.write("! no call to hang up")
    assert out.getvalue() == "call 1: sent DTMF 9\n! no call to hang up\n"
