"""SIP messages: parsing, validation and serialisation (RFC 3261 §7, §8.2, §18.3).

Theory of operation
-------------------
Parsing happens in two steps, as in h11:

1. :func:`parse_message` frames the bytes: start line, unfolded header lines
   and body.  It is lenient about what it cannot judge yet (a missing To, an
   absurd Content-Length) and records such *defects* on the message; it raises
   :class:`SipParseError` only when there is no message at all (no start line,
   a header line without a colon) and then attaches the headers it could read,
   so a server can still answer 400 on the request's Via.
2. :func:`validate_request` / :func:`validate_response` check what a SIP
   element must check before acting (RFC 3261 §8.2.1-§8.2.2, RFC 4475) and
   raise :class:`SipParseError` with the status to answer: 400, 505, 416.

Header values stay text; :mod:`cosmo.sip.headers` turns the ones the stack
acts on into typed values.  Content-Length is computed when serialising.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .errors import SipParseError, SipUsageError
from .headers import (
    LIST_HEADERS,
    SINGLE_HEADERS,
    TOKEN_CHARS,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    parse_cseq,
    parse_name_addr,
    parse_uint,
    parse_via,
    split_list,
)
from .uri import SipUri, Uri, parse_uri

SIP_VERSION = "SIP/2.0"
MAX_MAX_FORWARDS = 255
MAX_EXPIRES = 2**32 - 1

REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

# RFC 3261 §7.1: the SIP-Version string is case-insensitive (sent upper-case).
_REQUEST_LINE = re.compile(rf"([{TOKEN_CHARS}]+) ([^ ]+) ([Ss][Ii][Pp]/[0-9]+\.[0-9]+)")
_STATUS_LINE = re.compile(r"([Ss][Ii][Pp]/[0-9]+\.[0-9]+) ([1-6][0-9][0-9]) (.*)", re.DOTALL)
_HEADER_NAME = re.compile(rf"[{TOKEN_CHARS}]+")
_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


def reason_phrase(status: int) -> str:
    """The usual reason phrase for ``status``."""
    return REASON_PHRASES.get(status) or REASON_PHRASES.get(status - status % 100, "Unknown")


class Headers:
    """An ordered, case-insensitive list of (canonical name, value) pairs.

    Names are canonicalised on insertion, so ``get("v")`` finds ``Via``.
    Values are kept as text exactly as received (unfolded).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    @classmethod
    def _trusted(cls, items: list[tuple[str, str]]) -> Headers:
        obj = cls.__new__(cls)
        obj._items = items
        return obj

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        """A shallow copy."""
        return Headers._trusted(list(self._items))

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or ``None``."""
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order."""
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def count(self, name: str) -> int:
        """How many times ``name`` appears."""
        key = canonical_name(name)
        return sum(1 for n, _ in self._items if n == key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        """Append a header."""
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a header before every other (a new top Via)."""
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` by one header at the position of the first."""
        key = canonical_name(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n == key:
                if not placed:
                    out.append((key, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((key, value))
        self._items = out

    def remove(self, name: str) -> None:
        """Remove every ``name``."""
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if n != key]

    def remove_first(self, name: str) -> str | None:
        """Remove and return the first ``name`` (the top Via, say)."""
        key = canonical_name(name)
        for i, (n, v) in enumerate(self._items):
            if n == key:
                del self._items[i]
                return v
        return None


class SipMessage:
    """What requests and responses share: headers, body, defects and typed views."""

    __slots__ = ("body", "defects", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        # Problems found while framing (a wrong Content-Length, say); turned
        # into a 400 by validate_request.
        self.defects: list[str] = []

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        lines = [self.start_line()]
        body = self.body
        length_written = False
        for name, value in self.headers:
            if name == "Content-Length":
                if length_written:
                    continue
                value = str(len(body))
                length_written = True
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, SipMessage)
            and self.start_line() == other.start_line()
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    # Typed views.  Each parses on demand; raise SipParseError when malformed.
    @property
    def call_id(self) -> str:
        """The Call-ID (400 if absent)."""
        value = self.headers.get("Call-ID")
        if not value:
            raise SipParseError("missing Call-ID")
        return value

    @property
    def cseq(self) -> CSeq:
        """The CSeq (400 if absent or malformed)."""
        value = self.headers.get("CSeq")
        if value is None:
            raise SipParseError("missing CSeq")
        return parse_cseq(value)

    @property
    def from_(self) -> NameAddr:
        """The From header."""
        return self._name_addr("From")

    @property
    def to(self) -> NameAddr:
        """The To header."""
        return self._name_addr("To")

    def _name_addr(self, name: str) -> NameAddr:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name}")
        return parse_name_addr(value)

    @property
    def vias(self) -> list[Via]:
        """Every Via, top first."""
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def via(self) -> Via:
        """The top Via."""
        value = self.headers.get("Via")
        if value is None:
            raise SipParseError("missing Via")
        return parse_via(value)

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact except ``*``."""
        return [parse_name_addr(v) for v in self.headers.get_all("Contact") if v.strip() != "*"]

    def name_addrs(self, name: str) -> list[NameAddr]:
        """Every value of a name-addr list header such as Route or Record-Route."""
        return [parse_name_addr(v) for v in self.headers.get_all(name)]

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lower-cased, without parameters."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, or ``None`` when absent (RFC 2543 peers)."""
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_uint(value, "Max-Forwards", MAX_MAX_FORWARDS)

    @property
    def expires(self) -> int | None:
        """The Expires header, or ``None``."""
        value = self.headers.get("Expires")
        return None if value is None else parse_uint(value, "Expires", MAX_EXPIRES)

    def tokens(self, name: str) -> list[str]:
        """A list header of tokens (Require, Supported, Allow), lower-cased."""
        out: list[str] = []
        for value in self.headers.get_all(name):
            out.extend(item.lower() for item in split_list(value))
        return out


class SipRequest(SipMessage):
    """A SIP request."""

    __slots__ = ("method", "uri", "version")

    def __init__(
        self,
        method: str,
        uri: Uri,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri
        self.version = version

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<SipRequest {self.method} {self.uri}>"


class SipResponse(SipMessage):
    """A SIP response."""

    __slots__ = ("reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason
        self.version = version

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<SipResponse {self.status} {self.reason}>"


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Frame ``data`` (one datagram or one framed stream message) into a message.

    Leading CRLFs are skipped (RFC 3261 §7.5).  Without Content-Length the
    body is the rest of the data; with it, extra bytes are ignored (RFC 4475
    dblreq) and a missing tail becomes a defect (clerr).
    """
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        if data.endswith(b"\r\n", start):
            end = len(data) - 2  # headers end at the end of the datagram
            rest = b""
        else:
            raise SipParseError("no empty line after the header section")
    else:
        rest = data[end + 4 :]
    head = data[start:end].decode("utf-8", "surrogateescape")
    lines = head.split("\r\n")
    if not lines or not lines[0]:
        raise SipParseError("empty message")
    headers = _parse_header_lines(lines)
    message = _parse_start_line(lines[0], headers)
    _frame_body(message, rest)
    return message


def _parse_header_lines(lines: list[str]) -> Headers:
    items: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not items:
                raise SipParseError("continuation line before the first header")
            name, value = items[-1]
            folded = line.strip(" \t")
            items[-1] = (name, f"{value} {folded}" if value else folded)
            continue
        colon = line.find(":")
        if colon <= 0:
            raise SipParseError(
                f"header line without a name and colon: {line[:60]!r}",
                headers=_split_lists(items),
            )
        raw_name = line[:colon].rstrip(" \t")
        if not _HEADER_NAME.fullmatch(raw_name):
            raise SipParseError(f"invalid header name: {raw_name[:60]!r}", headers=_split_lists(items))
        items.append((canonical_name(raw_name), line[colon + 1 :].strip(" \t")))
    return _split_lists(items)


def _split_lists(items: list[tuple[str, str]]) -> Headers:
    out: list[tuple[str, str]] = []
    for name, value in items:
        if name in LIST_HEADERS and "," in value:
            out.extend((name, element) for element in split_list(value))
        else:
            out.append((name, value))
    return Headers._trusted(out)


def _parse_start_line(line: str, headers: Headers) -> SipRequest | SipResponse:
    if line[:4].upper() == "SIP/":
        match = _STATUS_LINE.fullmatch(line)
        if match is None:
            raise SipParseError(f"malformed status line: {line[:80]!r}", headers=headers)
        version, status, reason = match.groups()
        if version.upper() != SIP_VERSION:
            raise SipParseError(
                f"unsupported version {version}", 505, "Version Not Supported", headers=headers
            )
        return SipResponse(int(status), reason, headers)
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise SipParseError(f"malformed request line: {line[:80]!r}", headers=headers)
    method, uri_text, version = match.groups()
    if version.upper() != SIP_VERSION:
        raise SipParseError(
            f"unsupported version {version}", 505, "Version Not Supported", headers=headers
        )
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        raise SipParseError(f"bad Request-URI: {exc}", headers=headers) from None
    return SipRequest(method, uri, headers)


def _frame_body(message: SipMessage, rest: bytes) -> None:
    values = message.headers.get_all("Content-Length")
    if not values:
        message.body = rest
        return
    try:
        length = parse_uint(values[0], "Content-Length", 2**31)
    except SipParseError as exc:
        message.defects.append(str(exc))
        message.body = rest
        return
    if length > len(rest):
        message.defects.append(
            f"Content-Length {length} is larger than the {len(rest)} bytes of body received"
        )
        message.body = rest
    else:
        message.body = rest[:length]


def _check_single_headers(message: SipMessage) -> None:
    seen: set[str] = set()
    for name, _ in message.headers:
        if name in SINGLE_HEADERS:
            if name in seen:
                raise SipParseError(f"more than one {name} header")
            seen.add(name)


def _check_common(message: SipMessage) -> None:
    if message.defects:
        raise SipParseError(message.defects[0])
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if not message.headers.get(name):
            raise SipParseError(f"missing {name} header")
    _check_single_headers(message)
    message.vias  # noqa: B018 - parse to validate
    message.from_  # noqa: B018
    message.to  # noqa: B018
    message.cseq  # noqa: B018
    for name in ("Route", "Record-Route"):
        message.name_addrs(name)
    message.contacts  # noqa: B018
    message.max_forwards  # noqa: B018
    message.expires  # noqa: B018
    date = message.headers.get("Date")
    if date is not None and not _DATE.fullmatch(date):
        raise SipParseError(f"malformed Date (RFC 1123 in GMT required): {date!r}")


def validate_request(request: SipRequest) -> None:
    """Check what RFC 3261 §8.2 and RFC 4475 require of a request before it is acted on.

    Raises :class:`SipParseError` with the status to answer (400 or 416).
    """
    _check_common(request)
    if request.cseq.method != request.method:
        raise SipParseError(
            f"CSeq method {request.cseq.method} does not match request method {request.method}"
        )
    uri = request.uri
    if isinstance(uri, SipUri) and uri.headers:
        raise SipParseError("Request-URI must not contain headers (RFC 3261 §19.1.5)")


def validate_response(response: SipResponse) -> None:
    """Check a response before it is matched to a transaction; invalid ones are dropped."""
    _check_common(response)
    for name in ("Retry-After",):
        value = response.headers.get(name)
        if value is not None:
            parse_uint(value.split(";", 1)[0].split("(", 1)[0], name, MAX_EXPIRES)
    for value in response.headers.get_all("Warning"):
        for item in split_list(value):
            code = item.split(" ", 1)[0]
            if not (len(code) == 3 and code.isdigit()):
                raise SipParseError(f"malformed Warning code: {item[:40]!r}")


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """Build a response to ``request`` as a UAS does (RFC 3261 §8.2.6).

    Copies Via, From, To, Call-ID, CSeq and (for 100) Timestamp; adds
    ``to_tag`` to To when the request's To has none.  ``extra`` headers follow.
    """
    return response_from_headers(request.headers, status, reason, to_tag=to_tag, extra=extra, body=body)


def response_from_headers(
    headers: Headers,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """Like :func:`make_response` from a header section alone (after a parse error)."""
    items: list[tuple[str, str]] = []
    for name, value in headers:
        if name == "Via" or name == "From" or name == "Call-ID" or name == "CSeq":
            items.append((name, value))
        elif name == "To":
            if to_tag is not None and status != 100 and not _has_tag(value):
                value = f"{value};tag={to_tag}"
            items.append((name, value))
        elif name == "Timestamp" and status == 100:
            items.append((name, value))
    response = SipResponse(status, reason, Headers._trusted(items), body)
    for name, value in extra:
        response.headers.add(name, value)
    return response


def _has_tag(to: str) -> bool:
    try:
        return parse_name_addr(to).tag is not None
    except SipParseError:  # a torn request: judge the text
        return ";tag=" in to.replace(" ", "").replace("\t", "").lower()


class StreamFramer:
    """Cut a byte stream (TCP, TLS) into SIP messages by Content-Length (RFC 3261 §18.3).

    ``feed`` returns complete messages; a double-CRLF keep-alive ping
    (RFC 5626 §4.4.1) is returned as :data:`PING`.  A header section or body
    larger than ``max_size`` raises :class:`SipParseError` (status 513): the
    transport closes the connection, since framing is lost.
    """

    def __init__(self, max_size: int = 65535) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return the messages now complete."""
        self._buffer += data
        out: list[bytes] = []
        buf = self._buffer
        while buf:
            # Keep-alive: CRLFCRLF between messages (ping) or a lone CRLF (pong).
            if buf[:4] == b"\r\n\r\n":
                del buf[:4]
                out.append(PING)
                continue
            if buf[:2] == b"\r\n":
                if len(buf) < 4 and buf == b"\r\n\r\n"[: len(buf)]:
                    break  # wait: may become a ping
                del buf[:2]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.max_size:
                    raise SipParseError("header section too large", 513, "Message Too Large")
                break
            length = _content_length(bytes(buf[:end]))
            total = end + 4 + length
            if total > self.max_size:
                raise SipParseError("message too large", 513, "Message Too Large")
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out


PING = b""

_CONTENT_LENGTH_LINE = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", re.IGNORECASE)


def _content_length(head: bytes) -> int:
    match = _CONTENT_LENGTH_LINE.search(head)
    if match is None:
        return 0  # RFC 3261 §18.3 requires it on streams; treat absence as no body
    digits = match.group(1)
    if len(digits) > 10:
        raise SipParseError("Content-Length too large", 513, "Message Too Large")
    return int(digits)


def require_sip_uri(uri: Uri) -> SipUri:
    """``uri`` as a :class:`SipUri`, or a 416 error."""
    if isinstance(uri, SipUri):
        return uri
    raise SipParseError(f"unsupported URI scheme {uri.scheme!r}", 416, "Unsupported URI Scheme")


def clone_request(request: SipRequest) -> SipRequest:
    """A copy of ``request`` whose headers may be changed independently."""
    if not isinstance(request, SipRequest):
        raise SipUsageError("clone_request needs a SipRequest")
    copy = SipRequest(request.method, request.uri, request.headers.copy(), request.body, request.version)
    return copy
