"""Tests of :mod:`cosmo.sip.headers`: header names and the typed header values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo.sip import headers as headers_module
from cosmo.sip.errors import SipParseError
from cosmo.sip.headers import (
    COMPACT_FORMS,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    format_params,
    is_token,
    param_value,
    parse_cseq,
    parse_name_addr,
    parse_params,
    parse_quoted_string,
    parse_uint,
    parse_via,
    quote,
    set_param,
    split_list,
)
from cosmo.sip.uri import AbsoluteUri, SipUri

from .conftest import name_addrs, vias

# --- header names ----------------------------------------------------------------

CANONICAL_NAMES = [
    # compact forms (RFC 3261 §7.3.3 and later registries), either case
    ("v", "Via"), ("V", "Via"), ("i", "Call-ID"), ("I", "Call-ID"), ("m", "Contact"),
    ("M", "Contact"), ("f", "From"), ("F", "From"), ("t", "To"), ("l", "Content-Length"),
    ("L", "Content-Length"), ("c", "Content-Type"), ("C", "Content-Type"),
    ("e", "Content-Encoding"), ("s", "Subject"), ("k", "Supported"), ("o", "Event"),
    ("r", "Refer-To"), ("b", "Referred-By"), ("u", "Allow-Events"), ("x", "Session-Expires"),
    ("a", "Accept-Contact"), ("j", "Reject-Contact"), ("d", "Request-Disposition"),
    ("y", "Identity"), ("n", "Identity-Info"),
    # odd case, as in RFC 4475 wsinv and longreq
    ("MaX-fOrWaRdS", "Max-Forwards"), ("VIA", "Via"), ("viA", "Via"), ("TO", "To"),
    ("from", "From"), ("cseq", "CSeq"), ("CSEQ", "CSeq"), ("call-id", "Call-ID"),
    ("CALL-ID", "Call-ID"), ("content-length", "Content-Length"), ("user-agent", "User-Agent"),
    ("record-route", "Record-Route"), ("proxy-authorization", "Proxy-Authorization"),
    # names whose usual spelling is not plain title case
    ("www-authenticate", "WWW-Authenticate"), ("WWW-AUTHENTICATE", "WWW-Authenticate"),
    ("mime-version", "MIME-Version"), ("rack", "RAck"), ("RSEQ", "RSeq"),
    ("sip-etag", "SIP-ETag"), ("Sip-If-Match", "SIP-If-Match"),
    ("p-asserted-identity", "P-Asserted-Identity"), ("P-PREFERRED-IDENTITY", "P-Preferred-Identity"),
    # extension headers: title case per dash-separated part
    ("NewFangledHeader", "Newfangledheader"), ("x-cosmo-queue", "X-Cosmo-Queue"),
    ("C%6Fntact", "C%6fntact"), ("z", "Z"), ("extensionHeader-!.%*+_`'~", "Extensionheader-!.%*+_`'~"),
]


@pytest.mark.parametrize(("name", "canonical"), CANONICAL_NAMES, ids=[n for n, _ in CANONICAL_NAMES])
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical
    assert canonical_name(name) == canonical  # second lookup from the cache


def test_every_compact_form_maps_to_a_name_that_is_already_canonical() -> None:
    for compact, full in COMPACT_FORMS.items():
        assert canonical_name(compact) == full
        assert canonical_name(full) == full
        assert canonical_name(full.upper()) == full


def test_name_cache_is_bounded() -> None:
    for i in range(5000):
        canonical_name(f"X-Peer-Chosen-{i}")
    assert len(headers_module._name_cache) <= 4096
    assert canonical_name("X-Peer-Chosen-4999") == "X-Peer-Chosen-4999"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("INVITE", True), ("z9hG4bK-.!%*_+`'~", True), ("", False), ("a b", False), ("a;b", False),
     ("a=b", False), ("é", False), ("<a>", False), ('"a"', False), ("a/b", False)],
)
def test_is_token(text: str, expected: bool) -> None:
    assert is_token(text) is expected


# --- lists -------------------------------------------------------------------------

SPLITS = [
    ("", []),
    ("   ", []),
    ("INVITE", ["INVITE"]),
    ("  INVITE ", ["INVITE"]),
    ("INVITE, ACK,BYE ,CANCEL", ["INVITE", "ACK", "BYE", "CANCEL"]),
    ("a,,b,", ["a", "b"]),
    (";;,,;;,;", [";;", ";;", ";"]),  # RFC 4475 wsinv's UnknownHeaderWithUnusualValue
    ('"Watson, Thomas" <sip:t.watson@example.org>, <sip:b@example.com>',
     ['"Watson, Thomas" <sip:t.watson@example.org>', "<sip:b@example.com>"]),
    ('"a \\", b" <sip:x@example.com>, sip:z@example.com',
     ['"a \\", b" <sip:x@example.com>', "sip:z@example.com"]),
    ('"back\\\\slash," <sip:x@example.com>,<sip:y@example.com>',
     ['"back\\\\slash," <sip:x@example.com>', "<sip:y@example.com>"]),
    ("<sip:a,b@example.com;x=1>, <sip:c@example.com>", ["<sip:a,b@example.com;x=1>", "<sip:c@example.com>"]),
    ('<sip:a@example.com>;+sip.instance="<urn:uuid:1,2>";reg-id=1, <sip:c@example.com>',
     ['<sip:a@example.com>;+sip.instance="<urn:uuid:1,2>";reg-id=1', "<sip:c@example.com>"]),
    ("SIP/2.0/UDP a.example.com;branch=z9hG4bK1 , SIP/2.0/TCP b.example.com",
     ["SIP/2.0/UDP a.example.com;branch=z9hG4bK1", "SIP/2.0/TCP b.example.com"]),
    # an unquoted display name with a comma is two elements (RFC 4475 baddn)
    ("Bell, Alexander <sip:a.g.bell@example.com>", ["Bell", "Alexander <sip:a.g.bell@example.com>"]),
    ('Digest realm="cosmo", nonce="a,b", qop="auth"', ['Digest realm="cosmo"', 'nonce="a,b"', 'qop="auth"']),
]


@pytest.mark.parametrize(("value", "items"), SPLITS, ids=[repr(v) for v, _ in SPLITS])
def test_split_list(value: str, items: list[str]) -> None:
    assert split_list(value) == items


@settings(max_examples=150, deadline=None)
@given(st.lists(name_addrs(), min_size=1, max_size=4))
def test_split_list_of_joined_name_addrs(values: list[NameAddr]) -> None:
    texts = [str(value) for value in values]
    assert split_list(", ".join(texts)) == texts
    assert [parse_name_addr(item) for item in split_list(",".join(texts))] == values


# --- quoted strings ------------------------------------------------------------------


def test_quote_escapes_quote_and_backslash() -> None:
    assert quote('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert quote("") == '""'


def test_parse_quoted_string_returns_the_content_and_the_end() -> None:
    assert parse_quoted_string('x "J Rosenberg \\\\\\"" <sip:x>', 2) == ('J Rosenberg \\"', 20)


def test_unterminated_quoted_string() -> None:
    with pytest.raises(SipParseError) as info:
        parse_quoted_string('"abc\\"', 0)
    assert str(info.value) == "unterminated quoted string: '\"abc\\\\\"'"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_quoted_string_round_trip(text: str) -> None:
    quoted = quote(text)
    assert parse_quoted_string(quoted + ";rest", 0) == (text, len(quoted))


# --- parameters ------------------------------------------------------------------------

PARAMS = [
    ("", ()),
    ("   ", ()),
    (";lr", (("lr", None),)),
    (";tag=1918181833n", (("tag", "1918181833n"),)),
    (" ;   tag    = 1918181833n", (("tag", "1918181833n"),)),  # RFC 4475 wsinv
    (" ; newparam = newvalue ; secondparam ; q = 0.33",
     (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))),
    (";\ttag\t=\tabc\t", (("tag", "abc"),)),
    (";branch=z9hG4bKPj5a3d;rport;received=192.0.2.1",
     (("branch", "z9hG4bKPj5a3d"), ("rport", None), ("received", "192.0.2.1"))),
    (";received=2001:db8::9;maddr=[2001:db8::1]", (("received", "2001:db8::9"), ("maddr", "[2001:db8::1]"))),
    (';+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1',
     (("+sip.instance", '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"'), ("reg-id", "1"))),
    (';x="a\\"b;c"', (("x", '"a\\"b;c"'),)),
    (";x=\"\"", (("x", '""'),)),
    (";fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\"",
     (("fromParam''~+*_!.-%", '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'),)),
    (";expires=3600;q=0.7", (("expires", "3600"), ("q", "0.7"))),
]


@pytest.mark.parametrize(("text", "params"), PARAMS, ids=[repr(t) for t, _ in PARAMS])
def test_parse_params(text: str, params: tuple[tuple[str, str | None], ...]) -> None:
    assert parse_params(text) == params


def test_parse_params_from_a_position() -> None:
    assert parse_params("<sip:a@example.com>;lr;x=1", 19) == (("lr", None), ("x", "1"))


BAD_PARAMS = [
    (";", "header", "empty or invalid header parameter name in ';'"),
    (";;", "header", "empty or invalid header parameter name in ';;'"),
    (";lr;", "header", "empty or invalid header parameter name in ';lr;'"),
    (";=1", "header", "empty or invalid header parameter name in ';=1'"),
    (";ta<g=1", "header", "empty or invalid header parameter name in ';ta<g=1'"),
    ("tag=1", "header", "unexpected 't' in header parameters: 'tag=1'"),
    (";a b", "header", "unexpected 'b' in header parameters: ';a b'"),
    (";tag=", "header", "invalid value for header parameter 'tag': ';tag='"),
    (";tag= ", "header", "invalid value for header parameter 'tag': ';tag= '"),
    (";tag=a,b", "header", "invalid value for header parameter 'tag': ';tag=a,b'"),
    (";tag=<x>", "header", "invalid value for header parameter 'tag': ';tag=<x>'"),
    (';x="abc', "header", "unterminated quoted string: ';x=\"abc'"),
    (";;", "Via", "empty or invalid Via parameter name in ';;'"),
    (";branch=", "Via", "invalid value for Via parameter 'branch': ';branch='"),
]


@pytest.mark.parametrize(("text", "what", "message"), BAD_PARAMS, ids=[repr(t) for t, _, _ in BAD_PARAMS])
def test_bad_params(text: str, what: str, message: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_params(text, what=what)
    assert str(info.value) == message


def test_param_helpers() -> None:
    params = (("Tag", "x"), ("lr", None), ("tag", "y"))
    assert param_value(params, "TAG") == "x"
    assert param_value(params, "lr") == ""
    assert param_value(params, "q") is None
    assert set_param(params, "tag", "z") == (("Tag", "z"), ("lr", None))
    assert set_param(params, "q", "0.5") == params + (("q", "0.5"),)
    assert format_params((("tag", "x"), ("lr", None))) == ";tag=x;lr"
    assert format_params(()) == ""


# --- name-addr ----------------------------------------------------------------------------

NAME_ADDRS = [
    ("Bob <sip:bob@biloxi.com>;tag=a6c85cf",
     NameAddr(SipUri("biloxi.com", "bob"), "Bob", (("tag", "a6c85cf"),)),
     '"Bob" <sip:bob@biloxi.com>;tag=a6c85cf'),
    ('"J Rosenberg \\\\\\""       <sip:jdrosen@example.com> ; tag = 98asjd8',  # RFC 4475 wsinv
     NameAddr(SipUri("example.com", "jdrosen"), 'J Rosenberg \\"', (("tag", "98asjd8"),)),
     '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'),
    ("caller<sip:caller@example.com>;tag=323",  # RFC 4475 lwsdisp
     NameAddr(SipUri("example.com", "caller"), "caller", (("tag", "323"),)),
     '"caller" <sip:caller@example.com>;tag=323'),
    ("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe",
     NameAddr(SipUri("example.com", "a.g.bell"), "A. Bell", (("tag", "qweoiqpe"),)),
     '"A. Bell" <sip:a.g.bell@example.com>;tag=qweoiqpe'),
    ("token1~` token2'+_   token3*%!.- <sip:mundane@example.com>",
     NameAddr(SipUri("example.com", "mundane"), "token1~` token2'+_ token3*%!.-"),
     "\"token1~` token2'+_ token3*%!.-\" <sip:mundane@example.com>"),
    ('"Alice \u00b6\u20ac" <sip:alice@example.com>;tag=1',
     NameAddr(SipUri("example.com", "alice"), "Alice \u00b6\u20ac", (("tag", "1"),)),
     '"Alice \u00b6\u20ac" <sip:alice@example.com>;tag=1'),
    ('"Watson, Thomas"<sip:t.watson@example.org>',
     NameAddr(SipUri("example.org", "t.watson"), "Watson, Thomas"),
     '"Watson, Thomas" <sip:t.watson@example.org>'),
    # addr-spec: parameters after the URI are header parameters (RFC 3261 §20.10)
    ("sip:+12125551212@server.phone2net.com;tag=887s",
     NameAddr(SipUri("server.phone2net.com", "+12125551212"), None, (("tag", "887s"),)),
     "<sip:+12125551212@server.phone2net.com>;tag=887s"),
    ("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",  # RFC 4475 wsinv
     NameAddr(SipUri("chair-dnrc.example.com", "vivekg"), None, (("tag", "1918181833n"),)),
     "<sip:vivekg@chair-dnrc.example.com>;tag=1918181833n"),
    ("sip:+19725552222@gw1.example.net;unknownparam",  # RFC 4475 cparam01
     NameAddr(SipUri("gw1.example.net", "+19725552222"), None, (("unknownparam", None),)),
     "<sip:+19725552222@gw1.example.net>;unknownparam"),
    ("<sip:+19725552222@gw1.example.net;unknownparam>",  # RFC 4475 cparam02
     NameAddr(SipUri("gw1.example.net", "+19725552222", params=(("unknownparam", None),))),
     "<sip:+19725552222@gw1.example.net;unknownparam>"),
    ("  sip:alice@example.com  ", NameAddr(SipUri("example.com", "alice")), "<sip:alice@example.com>"),
    ("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",  # RFC 4475 regescrt
     NameAddr(SipUri("example.com", "user", headers=(("Route", "%3Csip:sip.example.com%3E"),))),
     "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"),
    ('<sip:h8o2e4c6@2hd7kfa6m8ia.invalid;transport=ws>;+sip.ice;reg-id=1;'
     '+sip.instance="<urn:uuid:2bd4c49b-1c5e-4a9a-8d5f-6a0c0e4f1c3a>";expires=600',
     NameAddr(SipUri("2hd7kfa6m8ia.invalid", "h8o2e4c6", params=(("transport", "ws"),)), None,
              (("+sip.ice", None), ("reg-id", "1"),
               ("+sip.instance", '"<urn:uuid:2bd4c49b-1c5e-4a9a-8d5f-6a0c0e4f1c3a>"'), ("expires", "600"))),
     '<sip:h8o2e4c6@2hd7kfa6m8ia.invalid;transport=ws>;+sip.ice;reg-id=1;'
     '+sip.instance="<urn:uuid:2bd4c49b-1c5e-4a9a-8d5f-6a0c0e4f1c3a>";expires=600'),
    # other schemes (RFC 4475 unksm2)
    ("isbn:2983792873", NameAddr(AbsoluteUri("isbn", "2983792873")), "<isbn:2983792873>"),
    ("<http://www.example.com>;tag=3234233",
     NameAddr(AbsoluteUri("http", "//www.example.com"), None, (("tag", "3234233"),)),
     "<http://www.example.com>;tag=3234233"),
    ("<tel:+1-201-555-0123>", NameAddr(AbsoluteUri("tel", "+1-201-555-0123")), "<tel:+1-201-555-0123>"),
]


@pytest.mark.parametrize(("value", "expected", "written"), NAME_ADDRS, ids=[v for v, _, _ in NAME_ADDRS])
def test_parse_name_addr(value: str, expected: NameAddr, written: str) -> None:
    parsed = parse_name_addr(value)
    assert parsed == expected
    assert str(parsed) == written
    assert parse_name_addr(written) == expected


BAD_NAME_ADDRS = [
    ("", "empty name-addr"),
    (" \t ", "empty name-addr"),
    # RFC 4475 quotbal
    ('"Mr. J. User <sip:j.user@example.com>', "unterminated quoted string: '\"Mr. J. User <sip:j.user@example.com>'"),
    # RFC 4475 badaspec
    ('"Watson, Thomas" < sip:t.watson@example.org >',
     "whitespace inside <> in '\"Watson, Thomas\" < sip:t.watson@example.org >'"),
    ("<sip:t.watson@example.org >", "whitespace inside <> in '<sip:t.watson@example.org >'"),
    # RFC 4475 baddn
    ("Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
     "invalid display name 'Bell, Alexander': 'Bell, Alexander <sip:a.g.bell@example.com>;tag=43'"),
    ("J\u00f6rg <sip:joerg@example.com>", "invalid display name 'J\u00f6rg': 'J\u00f6rg <sip:joerg@example.com>'"),
    # RFC 4475 regbadct
    ("sip:user@example.com?Route=%3Csip:sip.example.com%3E",
     "a URI with '?' or ',' must be enclosed in <>: 'sip:user@example.com?Route=%3Csip:sip.example.com%3E'"),
    ("sip:a,b@example.com", "a URI with '?' or ',' must be enclosed in <>: 'sip:a,b@example.com'"),
    ("sip:bob @biloxi.com", "whitespace in URI: 'sip:bob @biloxi.com'"),
    ('"Bob" sip:bob@biloxi.com', "display name not followed by <URI>: '\"Bob\" sip:bob@biloxi.com'"),
    ('"Bob"', "display name not followed by <URI>: '\"Bob\"'"),
    ("Bob <sip:bob@biloxi.com", "missing '>' in 'Bob <sip:bob@biloxi.com'"),
    ("<bob@biloxi.com>", "URI has no valid scheme: 'bob@biloxi.com'"),
    ("*", "URI has no valid scheme: '*'"),
    ("<sip:bob@biloxi.com>;;tag=1", "empty or invalid header parameter name in '<sip:bob@biloxi.com>;;tag=1'"),
    ('"Joe" <sip:joe@example.org>;;;;',
     "empty or invalid header parameter name in '\"Joe\" <sip:joe@example.org>;;;;'"),
    ("<sip:bob@biloxi.com> junk", "unexpected 'j' in header parameters: '<sip:bob@biloxi.com> junk'"),
    ("<sip:bob@biloxi.com>;tag=", "invalid value for header parameter 'tag': '<sip:bob@biloxi.com>;tag='"),
]


@pytest.mark.parametrize(("value", "message"), BAD_NAME_ADDRS, ids=[repr(v) for v, _ in BAD_NAME_ADDRS])
def test_bad_name_addr(value: str, message: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_name_addr(value)
    assert str(info.value) == message
    assert info.value.status == 400


def test_empty_quoted_display_name_round_trips() -> None:
    value = parse_name_addr('"" <sip:alice@example.com>;tag=1')
    assert value.display == ""
    assert str(value) == '"" <sip:alice@example.com>;tag=1'
    assert parse_name_addr(str(value)) == value


def test_name_addr_accessors() -> None:
    value = parse_name_addr("<sip:bob@biloxi.com>;Tag=a6c85cf;lr;q=0.5")
    assert value.tag == "a6c85cf"
    assert value.param("LR") == ""
    assert value.param("q") == "0.5"
    assert value.param("expires") is None
    assert value.sip_uri == SipUri("biloxi.com", "bob")
    assert str(value.with_tag("x1")) == "<sip:bob@biloxi.com>;Tag=x1;lr;q=0.5"  # replaced in place
    assert str(value.with_param("expires", "0")) == "<sip:bob@biloxi.com>;Tag=a6c85cf;lr;q=0.5;expires=0"
    assert parse_name_addr("<sip:bob@biloxi.com>").tag is None
    assert parse_name_addr("<sip:bob@biloxi.com>;tag").tag is None


def test_name_addr_sip_uri_answers_416_for_other_schemes() -> None:
    with pytest.raises(SipParseError) as info:
        parse_name_addr("<tel:+1-201-555-0123>").sip_uri  # noqa: B018
    assert str(info.value) == "unsupported URI scheme 'tel'"
    assert (info.value.status, info.value.reason) == (416, "Unsupported URI Scheme")


@settings(max_examples=300, deadline=None)
@given(name_addrs())
def test_name_addr_round_trip(value: NameAddr) -> None:
    assert parse_name_addr(str(value)) == value


# --- Via -------------------------------------------------------------------------------------

VIAS = [
    ("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
     Via("UDP", "pc33.atlanta.com", None, (("branch", "z9hG4bK776asdhds"),)),
     "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds"),
    # RFC 4475 wsinv: LWS around the slashes, before ';' and around '='
    ("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw",
     Via("UDP", "192.0.2.2", None, (("branch", "390skdjuw"),)),
     "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw"),
    ("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8",
     Via("TCP", "spindle.example.com", None, (("branch", "z9hG4bK9ikj8"),)),
     "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"),
    ("\tsip/2.0/udp host.example.com : 5060 ;branch=z9hG4bK1\t",
     Via("UDP", "host.example.com", 5060, (("branch", "z9hG4bK1"),)),
     "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bK1"),
    # pjsip: valueless rport before branch; and its reply with rport/received filled in
    ("SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj0b7c2d4e5f60718293a4b5c6d7e8f901",
     Via("UDP", "192.0.2.20", 5060, (("rport", None), ("branch", "z9hG4bKPj0b7c2d4e5f60718293a4b5c6d7e8f901"))),
     "SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj0b7c2d4e5f60718293a4b5c6d7e8f901"),
    ("SIP/2.0/UDP 192.0.2.20:5060;rport=5060;received=198.51.100.7;branch=z9hG4bKPj1",
     Via("UDP", "192.0.2.20", 5060, (("rport", "5060"), ("received", "198.51.100.7"), ("branch", "z9hG4bKPj1"))),
     "SIP/2.0/UDP 192.0.2.20:5060;rport=5060;received=198.51.100.7;branch=z9hG4bKPj1"),
    ("SIP/2.0/TCP 192.0.2.20:50250;rport;branch=z9hG4bKPjda05;alias",
     Via("TCP", "192.0.2.20", 50250, (("rport", None), ("branch", "z9hG4bKPjda05"), ("alias", None))),
     "SIP/2.0/TCP 192.0.2.20:50250;rport;branch=z9hG4bKPjda05;alias"),
    # IPv6 sent-by; received carries the address without brackets (RFC 3261 §20.42)
    ("SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bK1;received=2001:db8::9",
     Via("TLS", "[2001:db8::9]", 5061, (("branch", "z9hG4bK1"), ("received", "2001:db8::9"))),
     "SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bK1;received=2001:db8::9"),
    ("SIP/2.0/WSS 7p1m8vd0l2ql.invalid;branch=z9hG4bK4798355",
     Via("WSS", "7p1m8vd0l2ql.invalid", None, (("branch", "z9hG4bK4798355"),)),
     "SIP/2.0/WSS 7p1m8vd0l2ql.invalid;branch=z9hG4bK4798355"),
    ("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",  # RFC 4475 transports
     Via("UNKNOWN", "t4.example.com", None, (("branch", "z9hG4bKasd0f3en"),)),
     "SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en"),
    ("SIP/2.0/UDP iftgw.example.com", Via("UDP", "iftgw.example.com"), "SIP/2.0/UDP iftgw.example.com"),
    ("SIP/2.0/UDP host.example.com;branch=z9hG4bK-.!%66*_+`'~",  # RFC 4475 intmeth
     Via("UDP", "host.example.com", None, (("branch", "z9hG4bK-.!%66*_+`'~"),)),
     "SIP/2.0/UDP host.example.com;branch=z9hG4bK-.!%66*_+`'~"),
    ("SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",  # version judged on the start line
     Via("UDP", "c.example.com", None, (("branch", "z9hG4bKkdjuw"),), "SIP/7.0"),
     "SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw"),
]


@pytest.mark.parametrize(("value", "expected", "written"), VIAS, ids=[v for v, _, _ in VIAS])
def test_parse_via(value: str, expected: Via, written: str) -> None:
    parsed = parse_via(value)
    assert parsed == expected
    assert str(parsed) == written
    assert parse_via(written) == expected


BAD_VIAS = [
    ("", "malformed Via: ''"),
    ("SIP/2.0/UDP", "malformed Via: 'SIP/2.0/UDP'"),
    ("SIP/2.0 host.example.com", "malformed Via: 'SIP/2.0 host.example.com'"),
    ("SIP/2.0/UDPhost.example.com", "malformed Via: 'SIP/2.0/UDPhost.example.com'"),
    ("SIP/2.0/UDP [2001:db8::1", "malformed Via: 'SIP/2.0/UDP [2001:db8::1'"),
    ("SIP/2.0/UDP host:0", "Via port out of range: 'SIP/2.0/UDP host:0'"),
    ("SIP/2.0/UDP host:65536", "Via port out of range: 'SIP/2.0/UDP host:65536'"),
    ("SIP/2.0/UDP host:123456", "unexpected '6' in Via parameters: 'SIP/2.0/UDP host:123456'"),
    ("SIP/2.0/UDP host x", "unexpected 'x' in Via parameters: 'SIP/2.0/UDP host x'"),
    ("SIP/2.0/UDP host_1", "unexpected '_' in Via parameters: 'SIP/2.0/UDP host_1'"),
    # RFC 4475 badinv01 (after the list split)
    ("SIP/2.0/UDP 192.0.2.15;;", "empty or invalid Via parameter name in 'SIP/2.0/UDP 192.0.2.15;;'"),
    ("SIP/2.0/UDP host;branch=", "invalid value for Via parameter 'branch': 'SIP/2.0/UDP host;branch='"),
]


@pytest.mark.parametrize(("value", "message"), BAD_VIAS, ids=[repr(v) for v, _ in BAD_VIAS])
def test_bad_via(value: str, message: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_via(value)
    assert str(info.value) == message


def test_via_accessors() -> None:
    via = parse_via("SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj1")
    assert via.branch == "z9hG4bKPj1"
    assert via.sent_by == "192.0.2.20:5060"
    assert via.param("rport") == ""
    assert via.param("received") is None
    received = via.with_param("received", "198.51.100.7").with_param("rport", "5060")
    assert str(received) == "SIP/2.0/UDP 192.0.2.20:5060;rport=5060;branch=z9hG4bKPj1;received=198.51.100.7"
    assert parse_via("SIP/2.0/UDP iftgw.example.com").branch is None
    assert parse_via("SIP/2.0/UDP iftgw.example.com").sent_by == "iftgw.example.com"


@settings(max_examples=300, deadline=None)
@given(vias())
def test_via_round_trip(via: Via) -> None:
    assert parse_via(str(via)) == via


# --- CSeq and numbers -----------------------------------------------------------------------

CSEQS = [
    ("1 INVITE", CSeq(1, "INVITE"), "1 INVITE"),
    ("0009 INVITE", CSeq(9, "INVITE"), "9 INVITE"),  # RFC 4475 wsinv (after unfolding)
    ("\t4711\t  REGISTER \t", CSeq(4711, "REGISTER"), "4711 REGISTER"),
    ("0 ACK", CSeq(0, "ACK"), "0 ACK"),
    ("2147483647 BYE", CSeq(2**31 - 1, "BYE"), "2147483647 BYE"),
    ("139122385 !interesting-Method0123456789_*+`.%indeed'~",
     CSeq(139122385, "!interesting-Method0123456789_*+`.%indeed'~"),
     "139122385 !interesting-Method0123456789_*+`.%indeed'~"),
    ("29344 RE%47IST%45R", CSeq(29344, "RE%47IST%45R"), "29344 RE%47IST%45R"),  # RFC 4475 esc02
]


@pytest.mark.parametrize(("value", "expected", "written"), CSEQS, ids=[v for v, _, _ in CSEQS])
def test_parse_cseq(value: str, expected: CSeq, written: str) -> None:
    assert parse_cseq(value) == expected
    assert str(expected) == written


BAD_CSEQS = [
    ("", "malformed CSeq: ''"),
    ("1", "malformed CSeq: '1'"),
    ("INVITE", "malformed CSeq: 'INVITE'"),
    ("INVITE 1", "malformed CSeq: 'INVITE 1'"),
    ("1INVITE", "malformed CSeq: '1INVITE'"),
    ("-1 INVITE", "malformed CSeq: '-1 INVITE'"),
    ("1 INV ITE", "malformed CSeq: '1 INV ITE'"),
    ("1 INVITE;x", "malformed CSeq: '1 INVITE;x'"),
    ("\u0661 INVITE", "malformed CSeq: '\u0661 INVITE'"),  # ARABIC-INDIC DIGIT ONE
    ("2147483648 BYE", "CSeq number too large: 2147483648"),
    ("36893488147419103232 REGISTER", "CSeq number too large: 36893488147419103232"),  # RFC 4475 scalar02
    ("9292394834772304023312 OPTIONS", "CSeq number too large: 9292394834772304023312"),  # scalarlg
]


@pytest.mark.parametrize(("value", "message"), BAD_CSEQS, ids=[repr(v) for v, _ in BAD_CSEQS])
def test_bad_cseq(value: str, message: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_cseq(value)
    assert str(info.value) == message


def test_cseq_with_thousands_of_digits_is_our_parse_error() -> None:
    with pytest.raises(SipParseError) as info:
        parse_cseq("9" * 5000 + " INVITE")
    assert str(info.value) == "CSeq number too large: " + "9" * 40


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31 - 1), st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]+", fullmatch=True))
def test_cseq_round_trip(seq: int, method: str) -> None:
    assert parse_cseq(str(CSeq(seq, method))) == CSeq(seq, method)


UINTS = [("70", 255, 70), (" 0068 ", 255, 68), ("0", 255, 0), ("255", 255, 255),
         ("\t3600", 2**32 - 1, 3600), ("00000000000000000001", 255, 1)]


@pytest.mark.parametrize(("value", "maximum", "expected"), UINTS)
def test_parse_uint(value: str, maximum: int, expected: int) -> None:
    assert parse_uint(value, "Max-Forwards", maximum) == expected


BAD_UINTS = [
    ("", "Max-Forwards is not a non-negative number: ''"),
    ("-1", "Max-Forwards is not a non-negative number: '-1'"),
    ("1.5", "Max-Forwards is not a non-negative number: '1.5'"),
    ("7 0", "Max-Forwards is not a non-negative number: '7 0'"),
    ("\u0663", "Max-Forwards is not a non-negative number: '\u0663'"),
    ("\u00b2", "Max-Forwards is not a non-negative number: '\u00b2'"),
    ("256", "Max-Forwards too large: 256"),
    ("300", "Max-Forwards too large: 300"),
    ("1" * 5000, "Max-Forwards too large: " + "1" * 40),
]


@pytest.mark.parametrize(("value", "message"), BAD_UINTS, ids=[repr(v[:20]) for v, _ in BAD_UINTS])
def test_bad_uint(value: str, message: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uint(value, "Max-Forwards", 255)
    assert str(info.value) == message


# --- any text ----------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    ['"', "\\", "<", ">", ";", ",", "=", " ", "\t", ":", "/", "sip:", "a@b", "SIP/2.0/UDP ", "[::1]",
     "tag", "branch", "%", "1", "99999999999", "é", "\x00", "*"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=30), st.lists(_PIECES, max_size=12).map("".join)))
def test_any_text_gives_a_value_or_our_parse_error(text: str) -> None:
    for parse in (parse_name_addr, parse_via, parse_cseq, parse_params):
        try:
            parse(text)
        except SipParseError:
            pass
    assert isinstance(split_list(text), list)
