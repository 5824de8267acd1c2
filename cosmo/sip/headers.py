"""Header names and typed header values (RFC 3261 §7.3, §20, §25.1).

Messages keep every header value as text so that unknown headers pass through
untouched (Sippy's habit); the parsers here turn the values a SIP element acts
on into frozen values: :class:`NameAddr` (From, To, Contact, Route,
Record-Route), :class:`Via` and :class:`CSeq`.

Header names are canonicalised on the way in: compact forms (``v``, ``i``,
``m`` ...) and any spelling (``MaX-fOrWaRdS``) map to one canonical name, so
lookups never care how the peer wrote them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from .errors import SipParseError
from .uri import PARSE_CACHE_SIZE, AbsoluteUri, Params, SipUri, Uri, parse_uri

# RFC 3261 §7.3.3 and the registries of later RFCs.
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}
_SPECIAL_CASE = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
    "p-asserted-identity": "P-Asserted-Identity",
    "p-preferred-identity": "P-Preferred-Identity",
    "min-se": "Min-SE",
    "session-id": "Session-ID",
}
_name_cache: dict[str, str] = {}

TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
_TOKEN = re.compile(f"[{TOKEN_CHARS}]+")
_LWS = " \t"

# Headers whose values are comma-separated lists of elements that a SIP
# element handles one by one (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset({"Via", "Route", "Record-Route", "Contact"})
# Headers that may appear at most once (RFC 3261 §20, table 2/3); a request
# with two of them is answered 400 (RFC 4475 multi01, mcl01).
SINGLE_HEADERS = frozenset(
    {
        "To",
        "From",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Length",
        "Content-Type",
        "Expires",
        "Date",
        "Min-Expires",
        "Content-Disposition",
    }
)


def canonical_name(name: str) -> str:
    """The canonical spelling of header ``name`` (compact forms expanded)."""
    cached = _name_cache.get(name)
    if cached is not None:
        return cached
    lower = name.lower()
    if lower in COMPACT_FORMS:
        result = COMPACT_FORMS[lower]
    elif lower in _SPECIAL_CASE:
        result = _SPECIAL_CASE[lower]
    else:
        result = "-".join(part[:1].upper() + part[1:] for part in lower.split("-"))
    if len(_name_cache) < 4096:  # bounded: peers choose header names
        _name_cache[name] = result
    return result


def is_token(text: str) -> bool:
    """Whether ``text`` is an RFC 3261 ``token``."""
    return _TOKEN.fullmatch(text) is not None


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quotes and ``<...>``.

    Empty elements are dropped (RFC 7230 §7 tolerance), whitespace stripped.
    """
    if "," not in value:
        stripped = value.strip()
        return [stripped] if stripped else []
    items: list[str] = []
    start = 0
    in_quote = in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            item = value[start:i].strip()
            if item:
                items.append(item)
            start = i + 1
        i += 1
    item = value[start:].strip()
    if item:
        items.append(item)
    return items


def parse_quoted_string(text: str, pos: int) -> tuple[str, int]:
    """Parse a quoted-string starting at ``text[pos] == '"'``.

    Returns the unescaped content and the index after the closing quote.
    """
    assert text[pos] == '"'
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise SipParseError(f"unterminated quoted string: {text!r}")


def quote(text: str) -> str:
    """``text`` as a quoted-string, escaping ``"`` and ``\\``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str, pos: int = 0, *, what: str = "header") -> Params:
    """Parse ``*( SEMI generic-param )`` from ``text[pos:]``.

    LWS is allowed around ``;`` and ``=`` (RFC 3261 §25.1, RFC 4475 wsinv);
    values may be tokens, hosts or quoted strings (kept with their quotes).
    An empty parameter (``;;``) is an error (RFC 4475 badinv01).
    """
    params: list[tuple[str, str | None]] = []
    n = len(text)
    i = _skip_lws(text, pos)
    while i < n:
        if text[i] != ";":
            raise SipParseError(f"unexpected {text[i]!r} in {what} parameters: {text!r}")
        i = _skip_lws(text, i + 1)
        start = i
        while i < n and text[i] not in ";= \t":
            i += 1
        name = text[start:i]
        if not name or not is_token(name):
            raise SipParseError(f"empty or invalid {what} parameter name in {text!r}")
        i = _skip_lws(text, i)
        value: str | None = None
        if i < n and text[i] == "=":
            i = _skip_lws(text, i + 1)
            if i < n and text[i] == '"':
                _, end = parse_quoted_string(text, i)
                value = text[i:end]
                i = end
            else:
                start = i
                while i < n and text[i] not in "; \t":
                    i += 1
                value = text[start:i]
                if not value or not _PARAM_VALUE.fullmatch(value):
                    raise SipParseError(f"invalid value for {what} parameter {name!r}: {text!r}")
            i = _skip_lws(text, i)
        params.append((name, value))
    return tuple(params)


# gen-value = token / host / quoted-string; hosts add ':' and '[]' for IPv6.
_PARAM_VALUE = re.compile(f"[{TOKEN_CHARS}:\\[\\]]+")


def _skip_lws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _LWS:
        i += 1
    return i


def param_value(params: Params, name: str) -> str | None:
    """The value of ``name`` in ``params`` (case-insensitive); ``""`` when valueless."""
    lname = name.lower()
    for pname, value in params:
        if pname.lower() == lname:
            return "" if value is None else value
    return None


def set_param(params: Params, name: str, value: str | None) -> Params:
    """``params`` with ``name`` set to ``value``, replacing any existing value in place."""
    lname = name.lower()
    out = []
    found = False
    for pname, pvalue in params:
        if pname.lower() == lname:
            if not found:
                out.append((pname, value))
                found = True
        else:
            out.append((pname, pvalue))
    if not found:
        out.append((name, value))
    return tuple(out)


def format_params(params: Params) -> str:
    """Serialise parameters as ``;name=value;flag``."""
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A ``name-addr`` or ``addr-spec`` with header parameters (From, To, Contact, Route).

    ``display`` is the unescaped display name (``None`` if absent).
    """

    uri: Uri
    display: str | None = None
    params: Params = ()

    def __str__(self) -> str:
        head = f"{quote(self.display)} " if self.display is not None else ""
        return f"{head}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter, if any."""
        return param_value(self.params, "tag") or None

    def param(self, name: str) -> str | None:
        """Header parameter ``name`` (``""`` when valueless, ``None`` when absent)."""
        return param_value(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with the ``tag`` parameter set."""
        return replace(self, params=set_param(self.params, "tag", tag))

    def with_param(self, name: str, value: str | None) -> NameAddr:
        """A copy with header parameter ``name`` set."""
        return replace(self, params=set_param(self.params, name, value))

    @property
    def sip_uri(self) -> SipUri:
        """The URI as a :class:`SipUri`; 416 error if it has another scheme."""
        if isinstance(self.uri, SipUri):
            return self.uri
        raise SipParseError(
            f"unsupported URI scheme {self.uri.scheme!r}", 416, "Unsupported URI Scheme"
        )


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_name_addr(value: str) -> NameAddr:
    """Parse a From/To/Contact/Route value (RFC 3261 §20.10, §25.1).

    Rejects an unterminated quote (RFC 4475 quotbal), a display name of
    non-token characters (baddn), spaces inside ``<>`` (badaspec), and an
    addr-spec that holds ``?``, ``,`` or ``;`` outside brackets (regbadct).
    """
    text = value.strip(_LWS)
    if not text:
        raise SipParseError("empty name-addr")
    display: str | None = None
    if text[0] == '"':
        display, pos = parse_quoted_string(text, 0)
        pos = _skip_lws(text, pos)
        if pos >= len(text) or text[pos] != "<":
            raise SipParseError(f"display name not followed by <URI>: {value!r}")
    else:
        lt = text.find("<")
        if lt < 0:
            return _parse_addr_spec(text, value)
        words = text[:lt].split()
        for word in words:
            if not is_token(word):
                raise SipParseError(f"invalid display name {text[:lt].strip()!r}: {value!r}")
        display = " ".join(words) or None
        pos = lt
    gt = text.find(">", pos)
    if gt < 0:
        raise SipParseError(f"missing '>' in {value!r}")
    uri_text = text[pos + 1 : gt]
    if uri_text != uri_text.strip(_LWS):
        raise SipParseError(f"whitespace inside <> in {value!r}")
    uri = parse_uri(uri_text)
    params = parse_params(text, gt + 1)
    return NameAddr(uri, display, params)


def _parse_addr_spec(text: str, value: str) -> NameAddr:
    semi = text.find(";")
    uri_text = text if semi < 0 else text[:semi]
    uri_text = uri_text.rstrip(_LWS)
    if "?" in uri_text or "," in uri_text:
        raise SipParseError(f"a URI with '?' or ',' must be enclosed in <>: {value!r}")
    if any(c in uri_text for c in _LWS):
        raise SipParseError(f"whitespace in URI: {value!r}")
    uri = parse_uri(uri_text)
    params = parse_params(text, semi) if semi >= 0 else ()
    return NameAddr(uri, None, params)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via header element (RFC 3261 §20.42, §18.2.1, RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        host = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.transport} {host}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        """Parameter ``name`` (``""`` when valueless, ``None`` when absent)."""
        return param_value(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        """A copy with parameter ``name`` set."""
        return replace(self, params=set_param(self.params, name, value))

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter, or ``None``."""
        return param_value(self.params, "branch") or None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as sent."""
        return self.host if self.port is None else f"{self.host}:{self.port}"


_VIA = re.compile(
    rf"([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)"
    r"[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*"
)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_via(value: str) -> Via:
    """Parse one Via element (already split from a list)."""
    text = value.strip(_LWS)
    match = _VIA.match(text)
    if match is None:
        raise SipParseError(f"malformed Via: {value!r}")
    name, version, transport, host, port_text = match.groups()
    port = None
    if port_text is not None:
        port = int(port_text)
        if not 0 < port <= 65535:
            raise SipParseError(f"Via port out of range: {value!r}")
    params = parse_params(text, match.end(), what="Via") if match.end() < len(text) else ()
    protocol = f"{name.upper()}/{version}"
    return Via(transport.upper(), host, port, params, protocol)


def parse_via_sent_by(value: str) -> Via:
    """The protocol, transport and sent-by of a Via whose parameters may be broken.

    Used only to route a 400 back to the sender of a malformed request
    (RFC 4475 badinv01); parameters that parse are kept, the rest dropped.
    """
    text = value.strip(_LWS)
    match = _VIA.match(text)
    if match is None:
        raise SipParseError(f"malformed Via: {value!r}")
    name, version, transport, host, port_text = match.groups()
    port = int(port_text) if port_text is not None and 0 < int(port_text) <= 65535 else None
    params: list[tuple[str, str | None]] = []
    for item in text[match.end() :].split(";"):
        pname, eq, pvalue = item.strip(_LWS).partition("=")
        if pname and is_token(pname.strip(_LWS)):
            params.append((pname.strip(_LWS), pvalue.strip(_LWS) if eq else None))
    return Via(transport.upper(), host, port, tuple(params), f"{name.upper()}/{version}")


MAX_CSEQ = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CSeq:
    """A CSeq value: sequence number and method (RFC 3261 §20.16)."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_CSEQ = re.compile(rf"[ \t]*([0-9]+)[ \t]+([{TOKEN_CHARS}]+)[ \t]*")


def parse_cseq(value: str) -> CSeq:
    """Parse a CSeq value; the number must be below 2**31 (RFC 4475 scalar02)."""
    match = _CSEQ.fullmatch(value)
    if match is None:
        raise SipParseError(f"malformed CSeq: {value!r}")
    digits = match.group(1)
    significant = digits.lstrip("0") or "0"
    # Bound the length before int(): past 4300 digits int() raises ValueError.
    if len(significant) > 10 or int(significant) > MAX_CSEQ:
        raise SipParseError(f"CSeq number too large: {digits[:40]}")
    return CSeq(int(significant), match.group(2))


def parse_uint(value: str, name: str, maximum: int) -> int:
    """Parse a non-negative decimal header value no greater than ``maximum``."""
    text = value.strip(_LWS)
    if not text.isdigit() or not text.isascii():
        raise SipParseError(f"{name} is not a non-negative number: {value!r}")
    significant = text.lstrip("0") or "0"  # bound int(): huge digit strings are refused first
    if len(significant) > 20 or int(significant) > maximum:
        raise SipParseError(f"{name} too large: {text[:40]}")
    return int(significant)


def format_uri_for_header(uri: Uri) -> str:
    """A URI in angle brackets, as From/To/Contact want it."""
    return f"<{uri}>"


__all__ = [
    "LIST_HEADERS",
    "SINGLE_HEADERS",
    "AbsoluteUri",
    "CSeq",
    "NameAddr",
    "Via",
    "canonical_name",
    "format_params",
    "is_token",
    "param_value",
    "parse_cseq",
    "parse_name_addr",
    "parse_params",
    "parse_uint",
    "parse_via",
    "quote",
    "set_param",
    "split_list",
]
