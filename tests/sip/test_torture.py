"""The 49 RFC 4475 torture messages at the parser level: parse, then validate.

What a server does with a message that parses and validates (420, 415, 416,
406, 483 ...) is the application's business and is tested against a running
server; here each message is either VALID for :func:`parse_message` plus
:func:`validate_request` / :func:`validate_response`, or INVALID with the
status (400 or 505) and the exact reason we give.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from cosmo.sip.errors import SipParseError
from cosmo.sip.headers import CSeq, NameAddr, Via
from cosmo.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    parse_message,
    response_from_headers,
    validate_request,
    validate_response,
)
from cosmo.sip.uri import AbsoluteUri, SipUri

TORTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "sip-torture"

pytestmark = pytest.mark.skipif(
    not TORTURE_DIR.is_dir(), reason=f"RFC 4475 torture messages not found in {TORTURE_DIR}"
)

VALID = "valid"
INVALID = "invalid"


class Outcome(NamedTuple):
    verdict: str
    status: int | None = None
    message: str | None = None


def _invalid(message: str, status: int = 400) -> Outcome:
    return Outcome(INVALID, status, message)


_VALID = Outcome(VALID)

# RFC 4475 §3.1.1 valid, §3.1.2 invalid, §3.2-§3.4 (valid at this level unless
# the application answer is itself a 400: insuf, multi01, mcl01).
EXPECTED: dict[str, Outcome] = {
    # §3.1.1 valid messages
    "wsinv": _VALID,
    "intmeth": _VALID,
    "esc01": _VALID,
    "escnull": _VALID,
    "esc02": _VALID,
    "lwsdisp": _VALID,
    "longreq": _VALID,
    "dblreq": _VALID,
    "semiuri": _VALID,
    "transports": _VALID,
    "mpart01": _VALID,
    "unreason": _VALID,
    "noreason": _VALID,
    # §3.1.2 invalid messages
    "badinv01": _invalid("empty or invalid Via parameter name in 'SIP/2.0/UDP 192.0.2.15;;'"),
    "clerr": _invalid("Content-Length 9999 is larger than the 154 bytes of body received"),
    "ncl": _invalid("Content-Length is not a non-negative number: '-999'"),
    "scalar02": _invalid("CSeq number too large: 36893488147419103232"),
    "scalarlg": _invalid("CSeq number too large: 9292394834772304023312"),
    "quotbal": _invalid("unterminated quoted string: '\"Mr. J. User <sip:j.user@example.com>'"),
    "ltgtruri": _invalid(
        "bad Request-URI: URI contains whitespace, a control character or <>\": '<sip:user@example.com>'"
    ),
    "lwsruri": _invalid("malformed request line: 'INVITE sip:user@example.com; lr SIP/2.0'"),
    "lwsstart": _invalid("malformed request line: 'INVITE  sip:user@example.com  SIP/2.0'"),
    "trws": _invalid("malformed request line: 'OPTIONS sip:remote-target@example.com SIP/2.0  '"),
    "escruri": _invalid("Request-URI must not contain headers (RFC 3261 §19.1.5)"),
    "baddate": _invalid("malformed Date (RFC 1123 in GMT required): 'Fri, 01 Jan 2010 16:00:00 EST'"),
    "regbadct": _invalid(
        "a URI with '?' or ',' must be enclosed in <>: 'sip:user@example.com?Route=%3Csip:sip.example.com%3E'"
    ),
    "badaspec": _invalid("whitespace inside <> in '\"Watson, Thomas\" < sip:t.watson@example.org >'"),
    "baddn": _invalid(
        "invalid display name 'Bell, Alexander': 'Bell, Alexander <sip:a.g.bell@example.com>;tag=43'"
    ),
    "badvers": _invalid("unsupported version SIP/7.0", 505),
    "mismatch01": _invalid("CSeq method INVITE does not match request method OPTIONS"),
    "mismatch02": _invalid("CSeq method INVITE does not match request method NEWMETHOD"),
    "bigcode": _invalid("malformed status line: 'SIP/2.0 4294967301 better not break the receiver'"),
    # §3.2 transaction layer
    "badbranch": _VALID,
    # §3.3 application layer
    "insuf": _invalid("missing From header"),
    "unkscm": _VALID,  # 416 from the application
    "novelsc": _VALID,  # 416 from the application
    "unksm2": _VALID,
    "bext01": _VALID,  # 420 from the application
    "invut": _VALID,  # 415 from the application
    "regaut01": _VALID,  # 401 from the registrar
    "multi01": _invalid("more than one CSeq header"),
    "mcl01": _invalid("more than one Content-Length header"),
    "bcast": _VALID,
    "zeromf": _VALID,  # 483 for anything but OPTIONS, from the application
    "cparam01": _VALID,
    "cparam02": _VALID,
    "regescrt": _VALID,
    "sdp01": _VALID,  # 406 from the application
    # §3.4 backward compatibility
    "inv2543": _VALID,
}


def _judge(data: bytes) -> SipRequest | SipResponse:
    message = parse_message(data)
    if isinstance(message, SipRequest):
        validate_request(message)
    else:
        validate_response(message)
    return message


def _load(name: str) -> bytes:
    return (TORTURE_DIR / f"{name}.dat").read_bytes()


def test_every_message_has_an_expected_outcome() -> None:
    assert sorted(path.stem for path in TORTURE_DIR.glob("*.dat")) == sorted(EXPECTED)
    assert len(EXPECTED) == 49


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_outcome(name: str) -> None:
    expected = EXPECTED[name]
    data = _load(name)
    if expected.verdict == VALID:
        message = _judge(data)
        assert message.defects == []
        return
    with pytest.raises(SipParseError) as info:
        _judge(data)
    assert str(info.value) == expected.message
    assert info.value.status == expected.status


@pytest.mark.parametrize("name", sorted(name for name, outcome in EXPECTED.items() if outcome.verdict == VALID))
def test_valid_messages_are_written_back_stably(name: str) -> None:
    message = parse_message(_load(name))
    written = bytes(message)
    again = parse_message(written)
    assert bytes(again) == written
    if name != "inv2543":  # it has no Content-Length: writing adds one
        assert again == message
    _judge(written)


def test_wsinv() -> None:
    request = _judge(_load("wsinv"))
    assert isinstance(request, SipRequest)
    assert request.method == "INVITE"
    assert request.uri == SipUri("chair-dnrc.example.com", "vivekg", params=(("unknownparam", None),))
    assert request.to.tag == "1918181833n"
    assert request.to.uri == SipUri("chair-dnrc.example.com", "vivekg")
    assert request.from_ == NameAddr(SipUri("example.com", "jdrosen"), 'J Rosenberg \\"', (("tag", "98asjd8"),))
    assert request.cseq == CSeq(9, "INVITE")
    assert request.max_forwards == 68
    assert request.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert request.vias == [
        Via("UDP", "192.0.2.2", None, (("branch", "390skdjuw"),)),
        Via("TCP", "spindle.example.com", None, (("branch", "z9hG4bK9ikj8"),)),
        Via("UDP", "192.168.255.111", None, (("branch", "z9hG4bK30239"),)),
    ]
    assert request.headers.get("Subject") == ""
    assert request.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert request.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert request.name_addrs("Route") == [NameAddr(SipUri(
        "services.example.com", params=(("lr", None), ("unknownwith", "value"), ("unknown-no-value", None))))]
    assert request.contacts == [NameAddr(
        SipUri("example.com", "jdrosen"), 'Quoted string ""',
        (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")))]
    assert request.content_type == "application/sdp"
    assert len(request.body) == 150


def test_intmeth() -> None:
    request = _judge(_load("intmeth"))
    assert isinstance(request, SipRequest)
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert request.method == method
    assert request.cseq == CSeq(139122385, method)
    assert request.uri == SipUri(
        "example.com", "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
        password="&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    assert request.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert request.to.uri == SipUri("example.com", "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    assert request.from_.display == "token1~` token2'+_ token3*%!.-"
    assert request.from_.tag == "_token~1'+`*%!-."
    working = "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"
    assert request.from_.param("fromParam''~+*_!.-%") == f'"{working}"'
    assert request.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert request.via.branch == "z9hG4bK-.!%66*_+`'~"
    assert request.max_forwards == 255
    assert request.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"


def test_esc01() -> None:
    request = _judge(_load("esc01"))
    assert isinstance(request, SipRequest)
    assert isinstance(request.uri, SipUri)
    assert request.uri.user == "sips%3Auser%40example.com"
    assert request.uri.user_unescaped == "sips:user@example.com"
    assert request.to.sip_uri.user_unescaped == "user"
    assert request.from_.sip_uri.user_unescaped == "I have spaces"
    [contact] = request.contacts
    assert contact.sip_uri.user_unescaped == "caller"
    assert contact.sip_uri.params == (("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))
    assert request.content_type == "application/sdp"  # from the compact 'C:'


def test_escnull() -> None:
    request = _judge(_load("escnull"))
    assert request.to.sip_uri.user == "null-%00-null"
    assert request.to.sip_uri.user_unescaped == "null-\x00-null"
    assert [contact.sip_uri.user for contact in request.contacts] == ["%00", "%00%00"]
    assert [contact.sip_uri.user_unescaped for contact in request.contacts] == ["\x00", "\x00\x00"]
    assert request.body == b""


def test_esc02() -> None:
    request = _judge(_load("esc02"))
    assert isinstance(request, SipRequest)
    assert request.method == "RE%47IST%45R"  # not REGISTER
    assert request.to.display == "%Z%45"
    assert request.via.branch == "z9hG4bK209%fzsnel234"
    # C%6Fntact is an extension header, not a Contact
    assert [contact.sip_uri.host for contact in request.contacts] == ["host1.example.com", "host3.example.com"]
    assert request.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp() -> None:
    assert _judge(_load("lwsdisp")).from_ == NameAddr(SipUri("example.com", "caller"), "caller", (("tag", "323"),))


def test_longreq() -> None:
    request = _judge(_load("longreq"))
    vias = request.vias
    assert len(vias) == 34
    assert [via.host for via in vias[:3]] == ["sip33.example.com", "sip32.example.com", "sip31.example.com"]
    assert vias[-1].param("received") == "192.0.2.5"
    assert request.to.display is not None and "extremeextreme" in request.to.display
    assert request.to.sip_uri.port == 6000
    assert len(request.body) == 150


def test_dblreq_only_the_first_request_counts() -> None:
    request = _judge(_load("dblreq"))
    assert isinstance(request, SipRequest)
    assert request.method == "REGISTER"
    assert request.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert request.body == b""
    assert b"INVITE" not in bytes(request)


def test_semiuri() -> None:
    request = _judge(_load("semiuri"))
    assert isinstance(request, SipRequest)
    assert request.uri == SipUri("example.com", "user;par=u%40example.net")
    assert isinstance(request.uri, SipUri)
    assert request.uri.params == ()
    assert request.uri.user_unescaped == "user;par=u@example.net"
    assert request.headers.get("Accept") == (
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag")


def test_transports() -> None:
    request = _judge(_load("transports"))
    assert [via.transport for via in request.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert [via.host for via in request.vias] == [f"t{i}.example.com" for i in range(1, 6)]
    assert request.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01() -> None:
    request = _judge(_load("mpart01"))
    assert request.content_type == "multipart/mixed"
    assert len(request.body) == 553
    assert request.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert request.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert request.via.param("rport") == ""


def test_unreason_and_noreason() -> None:
    unreason = _judge(_load("unreason"))
    assert isinstance(unreason, SipResponse)
    assert unreason.status == 200
    assert unreason.reason == (
        "= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e "
        "\u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435")
    noreason = _judge(_load("noreason"))
    assert isinstance(noreason, SipResponse)
    assert (noreason.status, noreason.reason) == (100, "")
    assert bytes(noreason).startswith(b"SIP/2.0 100 \r\n")


def test_other_schemes() -> None:
    unkscm = _judge(_load("unkscm"))
    assert isinstance(unkscm, SipRequest)
    assert unkscm.uri == AbsoluteUri("nobodyknowsthisscheme", "totallyopaquecontent")
    novelsc = _judge(_load("novelsc"))
    assert isinstance(novelsc, SipRequest)
    assert novelsc.uri == AbsoluteUri("soap.beep", "//192.0.2.103:3002")
    unksm2 = _judge(_load("unksm2"))
    assert unksm2.to.uri == AbsoluteUri("isbn", "2983792873")
    assert unksm2.from_.uri == AbsoluteUri("http", "//www.example.com")
    assert [contact.uri for contact in unksm2.contacts] == [AbsoluteUri("name", "John_Smith")]


def test_application_layer_facts() -> None:
    assert _judge(_load("badbranch")).via.branch == "z9hG4bK"
    assert _judge(_load("bext01")).tokens("Require") == ["nothingsupportsthis", "nothingsupportsthiseither"]
    assert _judge(_load("invut")).content_type == "application/unknownformat"
    assert _judge(_load("regaut01")).headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert _judge(_load("bcast")).vias[1].host == "255.255.255.255"
    assert _judge(_load("zeromf")).max_forwards == 0
    assert _judge(_load("sdp01")).headers.get("Accept") == "text/nobodyKnowsThis"
    cparam01 = _judge(_load("cparam01")).contacts[0]
    assert cparam01.params == (("unknownparam", None),) and cparam01.sip_uri.params == ()
    cparam02 = _judge(_load("cparam02")).contacts[0]
    assert cparam02.params == () and cparam02.sip_uri.params == (("unknownparam", None),)
    regescrt = _judge(_load("regescrt")).contacts[0]
    assert regescrt.sip_uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_inv2543() -> None:
    request = _judge(_load("inv2543"))
    assert request.max_forwards is None
    assert request.via == Via("UDP", "iftgw.example.com")
    assert request.via.branch is None
    assert request.from_.tag is None
    assert request.to.sip_uri.param("user") is None
    assert request.to.param("user") == "phone"  # addr-spec: the parameter belongs to the header
    assert request.headers.get("Content-Length") is None
    assert len(request.body) == 105


@pytest.mark.parametrize("name", ["ltgtruri", "lwsruri", "lwsstart", "trws", "badvers"])
def test_a_bad_start_line_still_allows_an_answer(name: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(_load(name))
    headers = info.value.headers
    assert isinstance(headers, Headers)
    response = response_from_headers(headers, info.value.status, to_tag="cosmo-1")
    assert response.status == info.value.status
    assert response.via == parse_message(bytes(response)).via
    assert response.call_id.startswith(f"{name}.")
    assert response.cseq.method in {"INVITE", "OPTIONS"}
    assert response.to.tag is not None
