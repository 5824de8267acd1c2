"""Session descriptions (SDP, RFC 8866 which obsoletes RFC 4566).

Text is parsed into a :class:`SessionDescription` holding one
:class:`MediaDescription` per ``m=`` line.  Every ``a=`` line is kept as an
ordered ``(name, value)`` pair (``value`` is ``None`` for a flag such as
``a=sendrecv``), so attributes this module does not interpret -- ICE, DTLS,
``ssrc``, ``crypto``, vendor ``X-`` lines -- pass through untouched.  Typed
accessors read the ones the media path needs: ``rtpmap`` (with the RFC 3551
static payload types), ``fmtp``, ``ptime``, ``rtcp`` (RFC 3605), the
direction attributes and ``telephone-event`` (RFC 4733).

Serialising writes the lines in the order RFC 8866 §5 fixes, each ended by
CRLF, so ``parse_sdp(bytes(d)) == d``.  Parsing is lenient where deployed
agents are (bare LF line ends, blank lines, session-level lines out of order,
an empty ``s=``) and strict where a guess could misroute media: a malformed
``v=``/``o=``/``c=``/``m=``/``t=``/``b=`` line raises :class:`SdpError` (status
400) naming the line.  An unparsable optional attribute value (``a=ptime:x``)
is ignored by its accessor, as RFC 8866 §5.13 allows.

Offer/answer (RFC 3264) lives in :mod:`cosmo.sip.sdp_negotiation`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import SipParseError

Attribute = tuple[str, str | None]
Attributes = tuple[Attribute, ...]

# RFC 8866 §9 token; proto is token *("/" token).
_TOKEN_CHARS = r"!#$%&'*+\-.0-9A-Z^_`a-z{|}~"
_TOKEN = re.compile(f"[{_TOKEN_CHARS}]+")
_PROTO = re.compile(f"[{_TOKEN_CHARS}]+(?:/[{_TOKEN_CHARS}]+)*")
_DIGITS = re.compile(r"[0-9]{1,20}")
_PORT = re.compile(r"([0-9]{1,5})(?:/([0-9]{1,5}))?")
_MEDIA_LINE_TYPES = "icbka"
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3264 §8.4: an agent MUST accept c=0.0.0.0 and then send neither RTP nor
# RTCP to the peer.  "::" is the IPv6 unspecified address: nothing can be sent there either.
_HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})


class SdpError(SipParseError):
    """A session description that cannot be parsed or negotiated.

    ``status`` is what a server should answer the carrying request with:
    400 for a malformed description, 488 ``Not Acceptable Here`` when it is
    well formed but nothing in it can be accepted.
    """


def _number(text: str, what: str, maximum: int | None = None) -> int:
    if not _DIGITS.fullmatch(text):
        raise SdpError(f"{what} {text!r} is not a number")
    value = int(text)
    if maximum is not None and value > maximum:
        raise SdpError(f"{what} {value} is out of range (0-{maximum})")
    return value


def _fields(value: str, kind: str, count: int, names: str) -> list[str]:
    parts = value.split()
    if len(parts) != count:
        raise SdpError(f"{kind}= line needs {count} fields ({names}), got {len(parts)}")
    return parts


class Direction(enum.StrEnum):
    """A media stream's direction from the describing agent's view (RFC 3264 §5.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, *, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reversed(self) -> Direction:
        """The same stream seen from the other end (sendonly <-> recvonly)."""
        return Direction.from_flags(sends=self.receives, receives=self.sends)

    def restrict(self, other: Direction) -> Direction:
        """What both ``self`` and ``other`` allow."""
        return Direction.from_flags(
            sends=self.sends and other.sends, receives=self.receives and other.receives
        )


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP payload format: what an ``rtpmap`` (and ``fmtp``) line names.

    Two codecs are the same format when name (case-insensitively, RFC 4855
    §3), clock rate and channels agree; the payload type is only the number
    one side chose for it.
    """

    name: str
    clock_rate: int
    payload_type: int
    channels: int = 1
    fmtp: str | None = None

    @property
    def rtpmap_value(self) -> str:
        """``PCMU/8000`` or ``opus/48000/2``: the text after the payload type."""
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.name}/{self.clock_rate}{suffix}"

    @property
    def is_telephone_event(self) -> bool:
        return self.name.lower() == "telephone-event"

    @property
    def is_comfort_noise(self) -> bool:
        return self.name.lower() == "cn"

    def matches(self, other: Codec) -> bool:
        """Whether ``other`` is the same payload format under any payload type."""
        return (
            self.name.lower() == other.name.lower()
            and self.clock_rate == other.clock_rate
            and self.channels == other.channels
        )


# RFC 3551 §6 table 4 and 5: formats usable without an rtpmap line.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1), 6: ("DVI4", 16000, 1), 7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1), 10: ("L16", 44100, 2),
    11: ("L16", 44100, 1), 12: ("QCELP", 8000, 1), 13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1), 15: ("G728", 8000, 1), 16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1), 18: ("G729", 8000, 1), 25: ("CelB", 90000, 1),
    26: ("JPEG", 90000, 1), 28: ("nv", 90000, 1), 31: ("H261", 90000, 1),
    32: ("MPV", 90000, 1), 33: ("MP2T", 90000, 1), 34: ("H263", 90000, 1),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line: who made the description and which version it is."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Origin:
        names = "username sess-id sess-version nettype addrtype address"
        user, sess_id, version, nettype, addrtype, address = _fields(value, "o", 6, names)
        return cls(user, sess_id, _number(version, "o= sess-version"), nettype, addrtype, address)

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """A ``c=`` line.  ``ttl``/``count`` only appear on multicast addresses."""

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    count: int | None = None

    @classmethod
    def parse(cls, value: str) -> Connection:
        nettype, addrtype, address = _fields(value, "c", 3, "nettype addrtype address")
        ttl = count = None
        parts = address.split("/")
        # RFC 8866 §5.7: IP4 multicast is <base>/<ttl>[/<count>], IP6 <base>[/<count>];
        # other address types are opaque.
        if addrtype == "IP4" and len(parts) <= 3 or addrtype == "IP6" and len(parts) <= 2:
            address, *suffix = parts
            if addrtype == "IP4" and suffix:
                ttl = _number(suffix.pop(0), "c= TTL", 255)
            if suffix:
                count = _number(suffix[0], "c= address count")
        if not address:
            raise SdpError("c= line has an empty address")
        return cls(nettype, addrtype, address, ttl, count)

    def __str__(self) -> str:
        suffix = "".join(f"/{n}" for n in (self.ttl, self.count) if n is not None)
        return f"{self.nettype} {self.addrtype} {self.address}{suffix}"


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """A ``b=`` line, e.g. ``AS:84`` (kilobits per second) or ``TIAS:64000``."""

    bwtype: str
    bandwidth: int

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        bwtype, colon, amount = value.partition(":")
        if not colon or not _TOKEN.fullmatch(bwtype):
            raise SdpError(f"b= line {value!r} is not <bwtype>:<bandwidth>")
        return cls(bwtype, _number(amount, "b= bandwidth"))

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@dataclass(frozen=True, slots=True)
class Timing:
    """A ``t=`` line and the ``r=`` lines after it (kept as text)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Timing:
        start, stop = _fields(value, "t", 2, "start-time stop-time")
        return cls(_number(start, "t= start-time"), _number(stop, "t= stop-time"))


@dataclass(frozen=True, slots=True)
class RtcpAttribute:
    """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605 §2.1)."""

    port: int
    nettype: str | None = None
    addrtype: str | None = None
    address: str | None = None


def _optional(*lines: tuple[str, object | None]) -> list[str]:
    return [f"{kind}={value}" for kind, value in lines if value is not None]


def _attribute_lines(attributes: Attributes) -> list[str]:
    return [f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes]


def _first(attributes: Attributes, name: str) -> str | None:
    return next((v for n, v in attributes if n == name and v is not None), None)


def _declared_direction(attributes: Attributes) -> Direction | None:
    return next((Direction(n) for n, _ in attributes if n in _DIRECTIONS), None)


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section: a media stream and the lines that describe it."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    encryption_key: str | None = None
    attributes: Attributes = ()

    def __str__(self) -> str:
        return "".join(f"{line}\r\n" for line in self._lines())

    def _lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        lines += _optional(("i", self.information), ("c", self.connection))
        lines += [f"b={b}" for b in self.bandwidths]
        lines += _optional(("k", self.encryption_key))
        return lines + _attribute_lines(self.attributes)

    # -- generic attribute access ------------------------------------------

    def has_attribute(self, name: str) -> bool:
        return any(n == name for n, _ in self.attributes)

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=<name>:<value>`` line, ``None`` if absent."""
        return _first(self.attributes, name)

    def attribute_values(self, name: str) -> tuple[str, ...]:
        """Values of every ``a=<name>:`` line in order (``candidate``, ``ssrc``...)."""
        return tuple(v for n, v in self.attributes if n == name and v is not None)

    # -- RTP ------------------------------------------------------------------

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto.upper()

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The formats as RTP payload types (validated at parse for RTP protos)."""
        return tuple(int(f) for f in self.formats) if self.is_rtp else ()

    def fmtp(self, payload_type: int) -> str | None:
        """The format parameters of ``a=fmtp:<payload_type> <params>``."""
        prefix = f"{payload_type} "
        return next((v[len(prefix):] for v in self.attribute_values("fmtp") if v.startswith(prefix)), None)

    def rtpmap(self, payload_type: int) -> Codec | None:
        """The codec ``payload_type`` names: its ``rtpmap`` line, else the static table."""
        prefix = f"{payload_type} "
        for value in self.attribute_values("rtpmap"):
            if value.startswith(prefix):
                parts = value[len(prefix):].strip().split("/")
                if len(parts) in (2, 3) and parts[0] and all(_DIGITS.fullmatch(p) for p in parts[1:]):
                    channels = int(parts[2]) if len(parts) == 3 else 1
                    return Codec(parts[0], int(parts[1]), payload_type, channels, self.fmtp(payload_type))
                return None  # a malformed rtpmap does not fall back to the static table
        static = STATIC_PAYLOAD_TYPES.get(payload_type)
        if static is None:
            return None
        name, rate, channels = static
        return Codec(name, rate, payload_type, channels, self.fmtp(payload_type))

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """Every format this stream names that resolves to a codec, in offer order."""
        found = (self.rtpmap(pt) for pt in self.payload_types)
        return tuple(c for c in found if c is not None)

    def telephone_event(self, clock_rate: int | None = None) -> int | None:
        """The payload type of the first ``telephone-event`` format (RFC 4733).

        With ``clock_rate`` only events at that rate count: events share the
        audio stream's RTP clock, and WebRTC agents offer one event format per
        audio rate (Chrome: 48000 and 8000).
        """
        for codec in self.codecs:
            if codec.is_telephone_event and clock_rate in (None, codec.clock_rate):
                return codec.payload_type
        return None

    # -- other typed attributes ----------------------------------------------

    def _positive(self, name: str) -> int | None:
        value = self.attribute(name)
        return int(value.strip()) if value and _DIGITS.fullmatch(value.strip()) else None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds: the packet length this end wants to receive."""
        return self._positive("ptime")

    @property
    def maxptime(self) -> int | None:
        return self._positive("maxptime")

    @property
    def declared_direction(self) -> Direction | None:
        """The direction attribute at media level only (see SessionDescription.direction)."""
        return _declared_direction(self.attributes)

    @property
    def rtcp(self) -> RtcpAttribute | None:
        value = self.attribute("rtcp")
        parts = value.split() if value else []
        if not parts or not _DIGITS.fullmatch(parts[0]) or int(parts[0]) > 65535:
            return None
        if len(parts) == 4:
            return RtcpAttribute(int(parts[0]), parts[1], parts[2], parts[3])
        return RtcpAttribute(int(parts[0])) if len(parts) == 1 else None

    @property
    def rtcp_port(self) -> int:
        """Where RTCP goes: ``a=rtcp`` if given, else the next port up (RFC 3550 §11)."""
        rtcp = self.rtcp
        return rtcp.port if rtcp is not None else self.port + 1

    @property
    def rtcp_mux(self) -> bool:
        return self.has_attribute("rtcp-mux")

    @property
    def mid(self) -> str | None:
        return self.attribute("mid")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole session description: session-level lines and the media sections."""

    version: int = 0
    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    times: tuple[Timing, ...] = (Timing(),)
    time_zones: str | None = None
    encryption_key: str | None = None
    attributes: Attributes = ()
    media: tuple[MediaDescription, ...] = ()

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse SDP text or bytes (UTF-8, RFC 8866 §5.1); raise :class:`SdpError`."""
        return parse_sdp(data)

    def __str__(self) -> str:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        lines += _optional(("i", self.information), ("u", self.uri))
        lines += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        lines += _optional(("c", self.connection))
        lines += [f"b={b}" for b in self.bandwidths]
        for timing in self.times:
            lines.append(f"t={timing.start} {timing.stop}")
            lines += [f"r={r}" for r in timing.repeats]
        lines += _optional(("z", self.time_zones), ("k", self.encryption_key))
        lines += _attribute_lines(self.attributes)
        for media in self.media:
            lines += media._lines()
        return "".join(f"{line}\r\n" for line in lines)

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")

    def attribute(self, name: str) -> str | None:
        """The value of the first session-level ``a=<name>:<value>`` line."""
        return _first(self.attributes, name)

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The ``c=`` line that applies to ``media``: its own, else the session's."""
        return media.connection if media.connection is not None else self.connection

    def connection_address(self, media: MediaDescription) -> str | None:
        connection = self.connection_for(media)
        return connection.address if connection is not None else None

    def direction(self, media: MediaDescription) -> Direction:
        """The direction the describing agent means for ``media``.

        The media-level attribute wins, then the session-level one, else
        ``sendrecv`` (RFC 8866 §6.7).  A connection address of 0.0.0.0 is the
        RFC 2543 hold: nothing may be sent to that agent (RFC 3264 §8.4), so its
        ``sendrecv`` means ``sendonly`` and ``recvonly`` means ``inactive``.  With
        ICE the same address is only a placeholder until candidates are checked
        (trickle ICE, RFC 8838), so it is not read as hold there.
        """
        declared = media.declared_direction or _declared_direction(self.attributes) or Direction.SENDRECV
        uses_ice = media.has_attribute("ice-ufrag") or self.attribute("ice-ufrag") is not None
        if self.connection_address(media) in _HOLD_ADDRESSES and not uses_ice:
            return declared.restrict(Direction.SENDONLY)
        return declared


# -- parsing ---------------------------------------------------------------------

_Line = tuple[int, str, str]


@contextmanager
def _at_line(number: int) -> Iterator[None]:
    """Prefix an error raised while reading one line with that line's number."""
    try:
        yield
    except SdpError as exc:
        raise SdpError(f"line {number}: {exc.detail}") from None


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse a session description; raise :class:`SdpError` (status 400) if malformed."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError(f"SDP is not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    sections: list[list[_Line]] = [[]]
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line:
            continue  # blank lines, e.g. the extra CRLF some agents end the body with
        if len(line) < 2 or line[1] != "=" or "\r" in line or "\x00" in line:
            raise SdpError(f"line {number}: expected '<type>=<value>', got {line[:40]!r}")
        if line[0] == "m":
            sections.append([])
        sections[-1].append((number, line[0], line[2:]))
    return _session(sections[0], tuple(_media(s) for s in sections[1:]))


def _session(lines: list[_Line], media: tuple[MediaDescription, ...]) -> SessionDescription:
    if not lines or lines[0][1] != "v":
        raise SdpError("SDP must start with a v= line")
    text: dict[str, str] = {}
    origin: Origin | None = None
    connection: Connection | None = None
    emails: list[str] = []
    phones: list[str] = []
    bandwidths: list[Bandwidth] = []
    times: list[Timing] = []
    attributes: list[Attribute] = []
    for number, kind, value in lines:
        with _at_line(number):
            if kind in "vocsiuzk":
                if kind in text:
                    raise SdpError(f"second {kind}= line")
                text[kind] = value
            if kind == "v" and value != "0":
                raise SdpError(f"unsupported SDP version {value!r} (only 0 exists)")
            elif kind == "o":
                origin = Origin.parse(value)
            elif kind == "c":
                connection = Connection.parse(value)
            elif kind == "e":
                emails.append(value)
            elif kind == "p":
                phones.append(value)
            elif kind == "b":
                bandwidths.append(Bandwidth.parse(value))
            elif kind == "t":
                times.append(Timing.parse(value))
            elif kind == "r":
                if not times:
                    raise SdpError("r= line before any t= line")
                last = times[-1]
                times[-1] = Timing(last.start, last.stop, (*last.repeats, value))
            elif kind == "a":
                attributes.append(_attribute(value))
            elif kind not in "vsiuzk":
                raise SdpError(f"unknown line type '{kind}='")
    if origin is None or "s" not in text or not times:
        missing = "o" if origin is None else "s" if "s" not in text else "t"
        raise SdpError(f"SDP has no {missing}= line")
    return SessionDescription(
        origin=origin, session_name=text["s"], information=text.get("i"), uri=text.get("u"),
        emails=tuple(emails), phones=tuple(phones), connection=connection,
        bandwidths=tuple(bandwidths), times=tuple(times), time_zones=text.get("z"),
        encryption_key=text.get("k"), attributes=tuple(attributes), media=media,
    )  # fmt: skip


def _media(lines: list[_Line]) -> MediaDescription:
    number, _, value = lines[0]
    with _at_line(number):
        media, port, port_count, proto, formats = _media_line(value)
    text: dict[str, str] = {}
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = []
    attributes: list[Attribute] = []
    for number, kind, value in lines[1:]:
        with _at_line(number):
            if kind not in _MEDIA_LINE_TYPES:
                raise SdpError(f"{kind}= line is not allowed after the first m= line")
            if kind in "ick":
                if kind in text:
                    raise SdpError(f"second {kind}= line in one media description")
                text[kind] = value
            if kind == "c":
                connection = Connection.parse(value)
            elif kind == "b":
                bandwidths.append(Bandwidth.parse(value))
            elif kind == "a":
                attributes.append(_attribute(value))
    return MediaDescription(
        media, port, proto, formats, port_count=port_count, information=text.get("i"),
        connection=connection, bandwidths=tuple(bandwidths), encryption_key=text.get("k"),
        attributes=tuple(attributes),
    )  # fmt: skip


def _media_line(value: str) -> tuple[str, int, int | None, str, tuple[str, ...]]:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError("m= line needs media, port, proto and at least one format")
    media, port_spec, proto, *formats = parts
    port = _PORT.fullmatch(port_spec)
    if not _TOKEN.fullmatch(media):
        raise SdpError(f"m= media type {media!r} is not a token")
    if port is None or int(port[1]) > 65535:
        raise SdpError(f"m= port {port_spec!r} is not <port>[/<count>] with port 0-65535")
    if not _PROTO.fullmatch(proto):
        raise SdpError(f"m= proto {proto!r} is not a token")
    if "RTP/" in proto.upper():
        for fmt in formats:
            if not _DIGITS.fullmatch(fmt) or int(fmt) > 127:
                raise SdpError(f"m= format {fmt!r} is not an RTP payload type (0-127)")
    count = int(port[2]) if port[2] is not None else None
    return media, int(port[1]), count, proto, tuple(formats)


def _attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not _TOKEN.fullmatch(name):
        raise SdpError(f"attribute name {name!r} is not a token")
    return (name, rest if colon else None)
