"""Test data shared by the SIP message-core tests.

* ``TORTURE_DIR`` / :func:`torture_messages`: the 49 RFC 4475 messages,
  byte for byte, kept in ``tests/data/sip-torture``.
* :func:`wire`: captured traffic written readably (``\\n`` line ends) and
  turned into the CRLF bytes that were on the wire.
* Hypothesis strategies that build well-formed URIs, header values and
  messages from the RFC 3261 §25.1 character classes, for the round-trip
  properties ``parse(bytes(m)) == m``.
"""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import strategies as st

from cosmo.sip.headers import CSeq, NameAddr, Via, quote
from cosmo.sip.message import Headers, SipRequest, SipResponse
from cosmo.sip.uri import AbsoluteUri, SipUri

TORTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "sip-torture"
TORTURE_MISSING = f"RFC 4475 torture messages not found in {TORTURE_DIR}"


def torture_messages() -> dict[str, bytes]:
    """Every ``*.dat`` of the torture directory by name (empty when it is absent)."""
    if not TORTURE_DIR.is_dir():
        return {}
    return {path.stem: path.read_bytes() for path in sorted(TORTURE_DIR.glob("*.dat"))}


def wire(text: str) -> bytes:
    """``text`` with every ``\\n`` turned into CRLF, UTF-8 encoded."""
    return text.replace("\n", "\r\n").encode("utf-8")


# --- character classes (RFC 3261 §25.1) --------------------------------------

ALNUM = string.ascii_letters + string.digits
UNRESERVED = ALNUM + "-_.!~*'()"
TOKEN = ALNUM + "-.!%*_+`'~"
_ESCAPES = st.sampled_from(["%20", "%40", "%3A", "%3a", "%25", "%00", "%7E", "%3B", "%2C"])


def _escaped_text(alphabet: str, min_size: int = 1, max_size: int = 10) -> st.SearchStrategy[str]:
    return st.lists(
        st.one_of(st.sampled_from(alphabet), _ESCAPES), min_size=min_size, max_size=max_size
    ).map("".join)


def _text(alphabet: str, min_size: int = 1, max_size: int = 10) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


tokens = _text(TOKEN)
uri_users = _escaped_text(UNRESERVED + "&=+$,;?/")
uri_passwords = _escaped_text(UNRESERVED + "&=+$,", min_size=0)
_labels = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(_labels, min_size=1, max_size=4).map(".".join)
ipv4_hosts = st.ip_addresses(v=4).map(str)
ipv6_references = st.ip_addresses(v=6).map(lambda address: f"[{address}]")
hosts = st.one_of(hostnames, ipv4_hosts, ipv6_references)
ports = st.one_of(st.none(), st.integers(1, 65535))
_uri_param_text = _escaped_text(UNRESERVED + "[]/:&+$")
uri_params = st.lists(
    st.tuples(_uri_param_text, st.one_of(st.none(), _uri_param_text)), max_size=3
).map(tuple)
_uri_header_text = _escaped_text(UNRESERVED + "[]/?:+$", min_size=0)
uri_headers = st.lists(
    st.tuples(_escaped_text(UNRESERVED + "[]/?:+$"), _uri_header_text), min_size=1, max_size=3
).map(tuple)


@st.composite
def sip_uris(draw: st.DrawFn, *, with_headers: bool = True) -> SipUri:
    """A ``sip:``/``sips:`` URI; without URI headers when it is to be a Request-URI."""
    user = draw(st.one_of(st.none(), uri_users))
    password = draw(st.one_of(st.none(), uri_passwords)) if user is not None else None
    headers = draw(st.one_of(st.just(()), uri_headers)) if with_headers else ()
    return SipUri(
        host=draw(hosts),
        user=user,
        port=draw(ports),
        scheme=draw(st.sampled_from(["sip", "sips"])),
        password=password,
        params=draw(uri_params),
        headers=headers,
    )


absolute_uris = st.one_of(
    st.from_regex(r"\+[1-9][0-9]{3,12}", fullmatch=True).map(lambda n: AbsoluteUri("tel", n)),
    st.just(AbsoluteUri("urn", "service:sos")),
    hostnames.map(lambda host: AbsoluteUri("http", f"//{host}/")),
)

# gen-value = token / host / quoted-string
_quoted_values = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=12
).map(quote)
header_param_values = st.one_of(st.none(), tokens, ipv4_hosts, _quoted_values)
header_params = st.lists(st.tuples(tokens, header_param_values), max_size=3).map(tuple)
# A display name is any text without CR/LF; quote() escapes '"' and '\'.  The
# An empty display name round-trips ("" <sip:...>): see test_headers.
display_names = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"),
            min_size=1, max_size=16),
)


@st.composite
def name_addrs(draw: st.DrawFn) -> NameAddr:
    """A From/To/Contact value: display name, URI and header parameters."""
    uri = draw(st.one_of(sip_uris(), absolute_uris))
    return NameAddr(uri, draw(display_names), draw(header_params))


transports = st.one_of(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]),
                       tokens.map(str.upper))


@st.composite
def vias(draw: st.DrawFn) -> Via:
    """A Via element with a magic-cookie branch and maybe rport/received."""
    params: list[tuple[str, str | None]] = [("branch", "z9hG4bK" + draw(tokens))]
    if draw(st.booleans()):
        params.append(("rport", None))
    if draw(st.booleans()):
        params.append(("received", draw(ipv4_hosts)))
    params.extend(draw(header_params))
    return Via(draw(transports), draw(hosts), draw(ports), tuple(draw(st.permutations(params))))


METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "MESSAGE",
           "NOTIFY", "SUBSCRIBE", "REFER", "PRACK", "UPDATE", "PUBLISH"]
methods = st.one_of(st.sampled_from(METHODS), tokens)
call_ids = st.tuples(
    _text(ALNUM + "-.!%*_+`'~()<>:\\\"/[]?{}", max_size=20),
    st.one_of(st.just(""), hostnames.map(lambda host: "@" + host)),
).map("".join)
# Header names that no RFC gives a meaning, so the parser keeps them as text.
extension_names = tokens.map(lambda name: "X-" + name)
# Values as a peer may write them: no control characters, no CR/LF, and no
# leading or trailing LWS (the parser drops it).
extension_values = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=24
).map(lambda value: value.strip(" \t"))
bodies = st.binary(max_size=200)


def _common_headers(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    items = [("Via", str(via)) for via in draw(st.lists(vias(), min_size=1, max_size=3))]
    items.append(("From", str(draw(name_addrs()).with_tag(draw(tokens)))))
    items.append(("To", str(draw(name_addrs()))))
    items.append(("Call-ID", draw(call_ids)))
    items.append(("CSeq", str(CSeq(draw(st.integers(0, 2**31 - 1)), method))))
    items.extend(("Contact", str(contact)) for contact in draw(st.lists(name_addrs(), max_size=2)))
    items.extend(draw(st.lists(st.tuples(extension_names, extension_values), max_size=4)))
    return items


@st.composite
def requests(draw: st.DrawFn) -> SipRequest:
    """A well-formed request with a correct Content-Length somewhere among its headers."""
    method = draw(methods)
    uri = draw(st.one_of(sip_uris(with_headers=False), absolute_uris))
    items = _common_headers(draw, method)
    items.append(("Max-Forwards", str(draw(st.integers(0, 255)))))
    body = draw(bodies)
    items.append(("Content-Length", str(len(body))))
    return SipRequest(method, uri, Headers(draw(st.permutations(items))), body)


reason_phrases = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=24
)


@st.composite
def responses(draw: st.DrawFn) -> SipResponse:
    """A well-formed response with a correct Content-Length somewhere among its headers."""
    items = _common_headers(draw, draw(methods))
    body = draw(bodies)
    items.append(("Content-Length", str(len(body))))
    status = draw(st.integers(100, 699))
    return SipResponse(status, draw(reason_phrases), Headers(draw(st.permutations(items))), body)


messages = st.one_of(requests(), responses())
