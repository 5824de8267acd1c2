"""SIP and other URIs (RFC 3261 §19.1, §25.1).

A ``sip:``/``sips:`` URI is parsed into a :class:`SipUri`; any other scheme
(``tel:``, ``http:``, ``isbn:``, unknown ones) into an :class:`AbsoluteUri`
that keeps its text untouched, so a message that names such a URI still parses
(RFC 4475 unksm2, novelsc) and the application decides what to do (416).

The user part and parameters are stored exactly as written (escaped), which
keeps serialisation byte-exact; comparison helpers unescape as RFC 3261
§19.1.4 requires.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

from .errors import SipParseError

#: Parsed URIs, name-addrs and Vias are immutable, and a call repeats the same
#: From, To, Contact and Via text in every message: the parsers keep the most
#: recent results.
PARSE_CACHE_SIZE = 4096

Params = tuple[tuple[str, str | None], ...]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# The structure of a SIP URI; the character classes of each part are checked
# separately so that errors can say which part is wrong.
_SIP_URI = re.compile(
    r"(?P<scheme>sips?):"
    r"(?:(?P<userinfo>[^@]*)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<params>(?:;[^;?]*)*)"
    r"(?:\?(?P<headers>.*))?",
    re.IGNORECASE | re.DOTALL | re.ASCII,
)
_ESCAPED = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
_PASSWORD = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")
_PARAM_CHARS = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")
_HEADER_CHARS = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})*")
# Anything that can never stand inside a URI of any scheme (RFC 3986 §2 plus
# the SIP delimiters); its presence means the caller cut the URI wrongly.
_NEVER_IN_URI = re.compile(r"[\x00-\x20\x7f<>\"]")


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI.

    ``user`` and ``password`` are kept escaped as written; ``params`` and
    ``headers`` keep their order and spelling.
    """

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts.append(":")
                parts.append(self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params:
            parts.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers:
            parts.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(parts)

    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` (case-insensitive); ``""`` if it has none."""
        lname = name.lower()
        for pname, value in self.params:
            if pname.lower() == lname:
                return "" if value is None else value
        return None

    def has_param(self, name: str) -> bool:
        """Whether the URI carries parameter ``name`` (case-insensitive)."""
        return self.param(name) is not None

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """A copy with ``name`` set to ``value`` (replacing an existing one)."""
        lname = name.lower()
        kept = tuple(p for p in self.params if p[0].lower() != lname)
        return replace(self, params=kept + ((name, value),))

    def without_param(self, name: str) -> SipUri:
        """A copy without parameter ``name``."""
        lname = name.lower()
        return replace(self, params=tuple(p for p in self.params if p[0].lower() != lname))

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or ``None``."""
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %-escapes decoded (RFC 3261 §19.1.4)."""
        return None if self.user is None else unquote(self.user, errors="surrogateescape")

    @property
    def host_port(self) -> str:
        """``host`` or ``host:port``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def aor(self) -> str:
        """The address-of-record form: ``sip:user@host`` with user unescaped, host lower-cased.

        Used as the key of the location service (RFC 3261 §10.3 step 5).
        """
        scheme = "sip" if self.scheme == "sips" else self.scheme
        user = self.user_unescaped
        host = self.host.lower()
        return f"{scheme}:{user}@{host}" if user is not None else f"{scheme}:{host}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of a scheme other than sip/sips, kept as opaque text."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_uri(text: str) -> Uri:
    """Parse ``text`` into a :class:`SipUri` or an :class:`AbsoluteUri`.

    Raises :class:`SipParseError` (status 400) for text that is no URI, and for
    a sip/sips URI whose parts break the RFC 3261 grammar.
    """
    if not text:
        raise SipParseError("empty URI")
    if _NEVER_IN_URI.search(text):
        raise SipParseError(f"URI contains whitespace, a control character or <>\": {text!r}")
    colon = text.find(":")
    if colon <= 0 or not _SCHEME.fullmatch(text, 0, colon):
        raise SipParseError(f"URI has no valid scheme: {text!r}")
    scheme = text[:colon].lower()
    if scheme not in ("sip", "sips"):
        if colon == len(text) - 1:
            raise SipParseError(f"URI has nothing after its scheme: {text!r}")
        return AbsoluteUri(scheme, text[colon + 1 :])
    match = _SIP_URI.fullmatch(text)
    if match is None:
        raise SipParseError(f"malformed SIP URI: {text!r}")
    user = password = None
    userinfo = match.group("userinfo")
    if userinfo is not None:
        user, sep, pw = userinfo.partition(":")
        if not _USER.fullmatch(user):
            raise SipParseError(f"invalid user part in SIP URI: {text!r}")
        if sep:
            if not _PASSWORD.fullmatch(pw):
                raise SipParseError(f"invalid password in SIP URI: {text!r}")
            password = pw
    port_text = match.group("port")
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise SipParseError(f"port out of range in SIP URI: {text!r}")
    params = _parse_uri_params(match.group("params"), text)
    headers: tuple[tuple[str, str], ...] = ()
    header_text = match.group("headers")
    if header_text is not None:
        items = []
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not eq or not name or not _HEADER_CHARS.fullmatch(name + value):
                raise SipParseError(f"invalid header part in SIP URI: {text!r}")
            items.append((name, value))
        headers = tuple(items)
    return SipUri(
        host=match.group("host"),
        user=user,
        port=port,
        scheme=scheme,
        password=password,
        params=params,
        headers=headers,
    )


def parse_sip_uri(text: str) -> SipUri:
    """Parse ``text`` and insist on a sip/sips URI (416 otherwise)."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise SipParseError(
            f"unsupported URI scheme {uri.scheme!r}", 416, "Unsupported URI Scheme"
        )
    return uri


def _parse_uri_params(text: str, whole: str) -> Params:
    if not text:
        return ()
    params: list[tuple[str, str | None]] = []
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        if not name or not _PARAM_CHARS.fullmatch(name) or (eq and not _PARAM_CHARS.fullmatch(value)):
            raise SipParseError(f"invalid parameter {item!r} in SIP URI: {whole!r}")
        params.append((name, value if eq else None))
    return tuple(params)
