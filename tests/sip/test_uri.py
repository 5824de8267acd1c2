"""Tests of :mod:`cosmo.sip.uri`: sip/sips URIs, other schemes, and malformed ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo.sip.errors import SipParseError
from cosmo.sip.uri import AbsoluteUri, SipUri, parse_sip_uri, parse_uri

from .conftest import absolute_uris, sip_uris

# (text as written, the URI it denotes).  Each text is also what str() gives back.
SIP_URIS = [
    # RFC 3261 §19.1.3 examples
    ("sip:alice@atlanta.com", SipUri("atlanta.com", "alice")),
    (
        "sip:alice:secretword@atlanta.com;transport=tcp",
        SipUri("atlanta.com", "alice", password="secretword", params=(("transport", "tcp"),)),
    ),
    (
        "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
        SipUri("atlanta.com", "alice", scheme="sips",
               headers=(("subject", "project%20x"), ("priority", "urgent"))),
    ),
    (
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        SipUri("gateway.com", "+1-212-555-1212", password="1234", params=(("user", "phone"),)),
    ),
    ("sips:1212@gateway.com", SipUri("gateway.com", "1212", scheme="sips")),
    ("sip:alice@192.0.2.4", SipUri("192.0.2.4", "alice")),
    (
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        SipUri("atlanta.com", params=(("method", "REGISTER"),), headers=(("to", "alice%40atlanta.com"),)),
    ),
    ("sip:alice;day=tuesday@atlanta.com", SipUri("atlanta.com", "alice;day=tuesday")),
    # host forms and ports
    ("sip:registrar.example.com", SipUri("registrar.example.com")),
    ("sip:192.0.2.10:5060;lr", SipUri("192.0.2.10", port=5060, params=(("lr", None),))),
    ("sip:bob@[::1]", SipUri("[::1]", "bob")),
    (
        "sip:[2001:db8::10]:5070;transport=udp",
        SipUri("[2001:db8::10]", port=5070, params=(("transport", "udp"),)),
    ),
    ("sip:agent@[::ffff:192.0.2.1]:65535", SipUri("[::ffff:192.0.2.1]", "agent", port=65535)),
    ("sip:alice@example.com:0", SipUri("example.com", "alice", port=0)),
    # user and password characters, escapes kept as written
    ("sip:%61lice@example.com", SipUri("example.com", "%61lice")),
    ("sip:sips%3Auser%40example.com@example.net", SipUri("example.net", "sips%3Auser%40example.com")),
    ("sip:null-%00-null@example.com", SipUri("example.com", "null-%00-null")),
    ("sip:alice:@example.com", SipUri("example.com", "alice", password="")),
    ("sip:?@h", SipUri("h", "?")),
    (
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        SipUri("example.com", "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
               password="&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"),
    ),
    # parameters: valueless, escaped, IPv6 values, unknown ones, order kept
    (
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value",
        SipUri("services.example.com",
               params=(("lr", None), ("unknownwith", "value"), ("unknown-no-value", None))),
    ),
    (
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
        SipUri("host5.example.net", "cal%6Cer", params=(("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))),
    ),
    (
        "sip:user@host;maddr=[2001:db8::1];ttl=15",
        SipUri("host", "user", params=(("maddr", "[2001:db8::1]"), ("ttl", "15"))),
    ),
    (
        "sip:h9po1ojc@u3legsua5tov.invalid;transport=ws;ob",
        SipUri("u3legsua5tov.invalid", "h9po1ojc", params=(("transport", "ws"), ("ob", None))),
    ),
    # URI headers: empty value, escaped '<' '>' (RFC 4475 regescrt)
    (
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        SipUri("example.com", "user", headers=(("Route", "%3Csip:sip.example.com%3E"),)),
    ),
    ("sip:user@example.com?body=", SipUri("example.com", "user", headers=(("body", ""),))),
    (
        "sip:[::1]:5060;transport=tcp?h=v",
        SipUri("[::1]", port=5060, params=(("transport", "tcp"),), headers=(("h", "v"),)),
    ),
]


@pytest.mark.parametrize(("text", "expected"), SIP_URIS, ids=[t for t, _ in SIP_URIS])
def test_parse_sip_uri(text: str, expected: SipUri) -> None:
    assert parse_uri(text) == expected
    assert parse_sip_uri(text) == expected


@pytest.mark.parametrize(("text", "expected"), SIP_URIS, ids=[t for t, _ in SIP_URIS])
def test_str_gives_back_the_text(text: str, expected: SipUri) -> None:
    assert str(expected) == text


def test_scheme_is_case_insensitive_and_written_in_lower_case() -> None:
    uri = parse_uri("SIPS:Alice@Example.COM")
    assert uri == SipUri("Example.COM", "Alice", scheme="sips")
    assert str(uri) == "sips:Alice@Example.COM"


ABSOLUTE_URIS = [
    ("tel:+1-201-555-0123;phone-context=example.com",
     AbsoluteUri("tel", "+1-201-555-0123;phone-context=example.com")),
    ("http://www.example.com", AbsoluteUri("http", "//www.example.com")),
    ("isbn:2983792873", AbsoluteUri("isbn", "2983792873")),
    ("name:John_Smith", AbsoluteUri("name", "John_Smith")),
    ("urn:uuid:2bd4c49b-1c5e-4a9a-8d5f-6a0c0e4f1c3a",
     AbsoluteUri("urn", "uuid:2bd4c49b-1c5e-4a9a-8d5f-6a0c0e4f1c3a")),
    ("soap.beep://192.0.2.103:3002", AbsoluteUri("soap.beep", "//192.0.2.103:3002")),
    ("im:fluffy@example.com", AbsoluteUri("im", "fluffy@example.com")),
]


@pytest.mark.parametrize(("text", "expected"), ABSOLUTE_URIS, ids=[t for t, _ in ABSOLUTE_URIS])
def test_other_schemes_are_kept_opaque(text: str, expected: AbsoluteUri) -> None:
    assert parse_uri(text) == expected
    assert str(expected) == text


def test_unknown_scheme_is_lower_cased() -> None:
    # RFC 4475 unkscm: schemes are case-insensitive (RFC 3986 §3.1).
    uri = parse_uri("nobodyKnowsThisScheme:totallyopaquecontent")
    assert uri == AbsoluteUri("nobodyknowsthisscheme", "totallyopaquecontent")
    assert str(uri) == "nobodyknowsthisscheme:totallyopaquecontent"


def test_parse_sip_uri_answers_416_for_other_schemes() -> None:
    with pytest.raises(SipParseError) as info:
        parse_sip_uri("tel:+1-201-555-0123")
    assert str(info.value) == "unsupported URI scheme 'tel'"
    assert (info.value.status, info.value.reason) == (416, "Unsupported URI Scheme")


MALFORMED = [
    ("", "empty URI"),
    ("sip:alice@example.com ", "URI contains whitespace, a control character or <>\": 'sip:alice@example.com '"),
    ("sip:alice @example.com", "URI contains whitespace, a control character or <>\": 'sip:alice @example.com'"),
    ("<sip:user@example.com>", "URI contains whitespace, a control character or <>\": '<sip:user@example.com>'"),
    ('sip:"alice"@example.com', "URI contains whitespace, a control character or <>\": 'sip:\"alice\"@example.com'"),
    ("sip:alice@example.com\x00", "URI contains whitespace, a control character or <>\": 'sip:alice@example.com\\x00'"),
    ("tel:+1\t555", "URI contains whitespace, a control character or <>\": 'tel:+1\\t555'"),
    ("alice@example.com", "URI has no valid scheme: 'alice@example.com'"),
    (":alice@example.com", "URI has no valid scheme: ':alice@example.com'"),
    ("1sip:alice@example.com", "URI has no valid scheme: '1sip:alice@example.com'"),
    ("si_p:alice@example.com", "URI has no valid scheme: 'si_p:alice@example.com'"),
    ("tel:", "URI has nothing after its scheme: 'tel:'"),
    ("sip:", "malformed SIP URI: 'sip:'"),
    ("sip:alice@", "malformed SIP URI: 'sip:alice@'"),
    ("sip:alice@exa_mple.com", "malformed SIP URI: 'sip:alice@exa_mple.com'"),
    ("sip:alice@example.com:", "malformed SIP URI: 'sip:alice@example.com:'"),
    ("sip:alice@example.com:123456", "malformed SIP URI: 'sip:alice@example.com:123456'"),
    ("sip:alice@example.com:5o60", "malformed SIP URI: 'sip:alice@example.com:5o60'"),
    ("sip:[2001:db8::1", "malformed SIP URI: 'sip:[2001:db8::1'"),
    ("sip:[fe80::1%eth0]", "malformed SIP URI: 'sip:[fe80::1%eth0]'"),
    ("sip:alice@example.com:65536", "port out of range in SIP URI: 'sip:alice@example.com:65536'"),
    ("sip:@example.com", "invalid user part in SIP URI: 'sip:@example.com'"),
    ("sip:al%ice@example.com", "invalid user part in SIP URI: 'sip:al%ice@example.com'"),
    ("sip:al[ice@example.com", "invalid user part in SIP URI: 'sip:al[ice@example.com'"),
    ("sip:alice:pa%zz@example.com", "invalid password in SIP URI: 'sip:alice:pa%zz@example.com'"),
    ("sip:alice:pa;ss@example.com", "invalid password in SIP URI: 'sip:alice:pa;ss@example.com'"),
    ("sip:alice@example.com;", "invalid parameter '' in SIP URI: 'sip:alice@example.com;'"),
    ("sip:alice@example.com;;lr", "invalid parameter '' in SIP URI: 'sip:alice@example.com;;lr'"),
    ("sip:alice@example.com;=tcp", "invalid parameter '=tcp' in SIP URI: 'sip:alice@example.com;=tcp'"),
    ("sip:alice@example.com;transport=",
     "invalid parameter 'transport=' in SIP URI: 'sip:alice@example.com;transport='"),
    ("sip:alice@example.com;a=b{c}", "invalid parameter 'a=b{c}' in SIP URI: 'sip:alice@example.com;a=b{c}'"),
    ("sip:alice@example.com;a=%zz", "invalid parameter 'a=%zz' in SIP URI: 'sip:alice@example.com;a=%zz'"),
    ("sip:alice@example.com?", "invalid header part in SIP URI: 'sip:alice@example.com?'"),
    ("sip:alice@example.com?subject", "invalid header part in SIP URI: 'sip:alice@example.com?subject'"),
    ("sip:alice@example.com?=x", "invalid header part in SIP URI: 'sip:alice@example.com?=x'"),
    ("sip:alice@example.com?a=1&b", "invalid header part in SIP URI: 'sip:alice@example.com?a=1&b'"),
    ("sip:alice@example.com?a=1;b", "invalid header part in SIP URI: 'sip:alice@example.com?a=1;b'"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED, ids=[repr(t) for t, _ in MALFORMED])
def test_malformed_uri(text: str, message: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert str(info.value) == message
    assert (info.value.status, info.value.reason) == (400, "Bad Request")


@pytest.mark.parametrize("text", ["sip:\u212aelvin.example.com", "sip:alice@\u017fip.example.com"])
def test_host_is_ascii_only(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert str(info.value) == f"malformed SIP URI: {text!r}"


# --- accessors -----------------------------------------------------------------


AORS = [
    ("sip:Alice@Atlanta.COM:5060;transport=tcp?subject=x", "sip:Alice@atlanta.com"),
    ("sips:bob@biloxi.example.com", "sip:bob@biloxi.example.com"),
    ("sip:%61lice@example.com", "sip:alice@example.com"),
    ("sip:I%20have%20spaces@example.net", "sip:I have spaces@example.net"),
    ("sip:Registrar.Example.com;lr", "sip:registrar.example.com"),
    ("sip:agent7@[2001:DB8::7]:5061", "sip:agent7@[2001:db8::7]"),
]


@pytest.mark.parametrize(("text", "aor"), AORS)
def test_aor(text: str, aor: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    assert uri.aor == aor


def test_params_are_looked_up_case_insensitively() -> None:
    uri = parse_sip_uri("sip:alice@example.com;Transport=TCP;lr;ttl=15")
    assert uri.param("transport") == "TCP"
    assert uri.param("LR") == ""
    assert uri.param("maddr") is None
    assert uri.has_param("lr") and uri.has_param("TTL") and not uri.has_param("maddr")
    assert uri.transport == "tcp"
    assert parse_sip_uri("sip:alice@example.com").transport is None


def test_with_param_replaces_and_appends() -> None:
    uri = parse_sip_uri("sip:alice@example.com;Transport=UDP;lr")
    replaced = uri.with_param("transport", "tcp")
    assert replaced.params == (("lr", None), ("transport", "tcp"))
    assert str(replaced) == "sip:alice@example.com;lr;transport=tcp"
    assert str(uri.with_param("ob")) == "sip:alice@example.com;Transport=UDP;lr;ob"
    assert str(uri) == "sip:alice@example.com;Transport=UDP;lr"  # frozen: unchanged


def test_without_param() -> None:
    uri = parse_sip_uri("sip:alice@example.com;transport=udp;LR;ttl=1")
    assert str(uri.without_param("lr")) == "sip:alice@example.com;transport=udp;ttl=1"
    assert uri.without_param("maddr") == uri


def test_user_unescaped_and_host_port() -> None:
    uri = parse_sip_uri("sip:sips%3Auser%40example.com@example.net:5080")
    assert uri.user_unescaped == "sips:user@example.com"
    assert uri.host_port == "example.net:5080"
    assert parse_sip_uri("sip:example.net").user_unescaped is None
    assert parse_sip_uri("sip:example.net").host_port == "example.net"
    # %-escapes that are no UTF-8 stay recoverable (RFC 4475 escnull, esc02)
    assert parse_sip_uri("sip:null-%00-null@example.com").user_unescaped == "null-\x00-null"
    assert parse_sip_uri("sip:%ff@example.com").user_unescaped == "\udcff"


def test_password_is_dropped_without_a_user() -> None:
    assert str(SipUri("example.com", password="secret")) == "sip:example.com"


# --- properties ----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sip_uris())
def test_sip_uri_round_trip(uri: SipUri) -> None:
    assert parse_uri(str(uri)) == uri


@settings(max_examples=100, deadline=None)
@given(absolute_uris)
def test_absolute_uri_round_trip(uri: AbsoluteUri) -> None:
    assert parse_uri(str(uri)) == uri


_URI_PIECES = st.sampled_from(
    ["sip:", "sips:", "tel:", "@", ":", ";", "=", "?", "&", "%", "%4", "%41", "[", "]", "::1",
     "alice", "example.com", "5060", "99999", " ", "<", ">", '"', "\x00", "\u212a", "é", ".", "-"]
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_URI_PIECES, max_size=12).map("".join)))
def test_any_text_gives_a_uri_or_our_parse_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except SipParseError:
        return
    assert parse_uri(str(uri)) == uri
