"""RTCP (RFC 3550 §6) and per-source reception statistics (RFC 3550 A.1, A.3, A.8).

Packets
    :class:`SenderReport`, :class:`ReceiverReport`, :class:`SourceDescription`
    and :class:`Goodbye` are frozen dataclasses with ``parse()`` (one packet,
    its common header included) and ``__bytes__``; any other packet type
    (APP, feedback, XR) is kept whole as :class:`RtcpUnknown` so it can be
    passed on untouched.  :func:`parse_compound` splits a datagram by the
    length fields; :func:`build_report` and :func:`build_bye` make the
    compound packets a session sends (RFC 3550 §6.1: a report first, then
    SDES with the CNAME).  Padding is accepted on any packet of a compound
    and never produced.

Reception statistics
    :class:`ReceptionStats` follows one source's sequence numbers as A.1
    does: the 16-bit sequence is extended across wraps, a jump of 3000 or
    more (or back by 100 or more) is a stray packet unless the next one
    follows it, which restarts the count without losing totals; the
    first packet is kept on probation until the second follows it.  Unlike
    A.1 duplicates are recognised (within the last 128 sequence numbers)
    and not counted as received, so loss is never negative.  Interarrival
    jitter is A.8's estimator, kept in timestamp units and reported in ms.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import ParseReason, RtpParseError, RtpUsageError
from .packet import seq_diff, ts_diff

__all__ = [
    "Goodbye",
    "ReceiverReport",
    "ReceptionSnapshot",
    "ReceptionStats",
    "ReportBlock",
    "RtcpPacket",
    "RtcpType",
    "RtcpUnknown",
    "SdesChunk",
    "SdesType",
    "SenderInfo",
    "SenderReport",
    "SourceDescription",
    "build_bye",
    "build_report",
    "ntp_middle",
    "ntp_timestamp",
    "parse_compound",
    "round_trip_time",
]


class RtcpType(enum.IntEnum):
    """RTCP packet types (RFC 3550 §12.1)."""

    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204


class SdesType(enum.IntEnum):
    """SDES item types (RFC 3550 §12.2)."""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


_COMMON = struct.Struct("!BBH")  # V/P/count, packet type, length in 32-bit words minus one
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!QIII")
_REPORT_BLOCK = struct.Struct("!IIIIII")  # ssrc, fraction<<24 | lost, highest, jitter, lsr, dlsr
_MAX_COUNT = 31
_NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def _error(message: str, reason: ParseReason = ParseReason.LENGTH) -> RtpParseError:
    return RtpParseError(message, reason)


def _require(what: str, *fields: tuple[str, int, int]) -> None:
    """Raise :class:`RtpUsageError` naming the first field that does not fit its bits."""
    for name, value, bits in fields:
        if not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise RtpUsageError(f"{what} {name} {value!r} is not an integer in 0..{(1 << bits) - 1}")


def _header(packet_type: int, count: int, body_length: int) -> bytes:
    if body_length & 3:
        raise RtpUsageError(f"RTCP packet body of {body_length} bytes is not a whole number of 32-bit words")
    if count > _MAX_COUNT:
        raise RtpUsageError(f"RTCP packet cannot carry {count} items (at most 31)")
    return _COMMON.pack(0x80 | count, packet_type, body_length >> 2)


def _check_header(data: bytes, expected_type: int | None) -> tuple[int, int, bytes]:
    """``(count, packet_type, body)`` of one packet whose bytes are exactly ``data``."""
    if len(data) < 4:
        raise _error(f"RTCP packet of {len(data)} bytes is shorter than the 4-byte header", ParseReason.SHORT)
    first, packet_type, words = _COMMON.unpack_from(data)
    if first >> 6 != 2:
        raise _error(f"RTCP version {first >> 6} is not 2", ParseReason.VERSION)
    if expected_type is not None and packet_type != expected_type:
        raise _error(f"RTCP packet type {packet_type} is not {expected_type}", ParseReason.TYPE)
    size = (words + 1) * 4
    if size != len(data):
        raise _error(f"RTCP length field gives {size} bytes, packet has {len(data)}")
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or padding > size - 4:
            raise _error(f"RTCP padding count {padding} is invalid in a {size}-byte packet", ParseReason.PADDING)
        end -= padding
    return first & 0x1F, packet_type, bytes(data[4:end])


# --------------------------------------------------------------------------- packets


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (RFC 3550 §6.4.1).

    ``fraction_lost`` is in 1/256 units; ``cumulative_lost`` is signed
    24-bit; ``lsr`` the middle 32 bits of the last SR's NTP timestamp and
    ``dlsr`` the delay since it in 1/65536 s.
    """

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        """The 24-byte block at ``offset``.  Raises :class:`RtpParseError` if it is cut short."""
        if len(data) - offset < 24:
            raise _error(f"RTCP report block at byte {offset} is cut short at {len(data) - offset} bytes")
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        return cls(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        """The 24-byte block.  Raises :class:`RtpUsageError` for a field out of range."""
        _require(
            "report block",
            ("SSRC", self.ssrc, 32),
            ("fraction lost", self.fraction_lost, 8),
            ("highest sequence", self.highest_sequence, 32),
            ("jitter", self.jitter, 32),
            ("LSR", self.lsr, 32),
            ("DLSR", self.dlsr, 32),
        )
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise RtpUsageError(f"report block cumulative loss {self.cumulative_lost} is not a signed 24-bit integer")
        return _REPORT_BLOCK.pack(
            self.ssrc,
            self.fraction_lost << 24 | self.cumulative_lost & 0xFFFFFF,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """The sender information of an SR: NTP time (64-bit fixed point), RTP time, counts."""

    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int


def _report_blocks(body: bytes, offset: int, count: int) -> tuple[tuple[ReportBlock, ...], bytes]:
    end = offset + 24 * count
    if end > len(body):
        raise _error(f"RTCP report count {count} needs {end + 4} bytes, packet has {len(body) + 4}")
    blocks = tuple(ReportBlock.parse(body, offset + 24 * index) for index in range(count))
    return blocks, body[end:]


def _pack_blocks(reports: Sequence[ReportBlock]) -> bytes:
    return b"".join(bytes(report) for report in reports)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (RFC 3550 §6.4.1); ``extension`` is any profile-specific extension, raw."""

    ssrc: int
    sender_info: SenderInfo
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> SenderReport:
        """Parse one SR spanning ``data``.  Raises :class:`RtpParseError`."""
        count, _, body = _check_header(data, RtcpType.SR)
        if len(body) < 24:
            raise _error(f"RTCP SR of {len(body) + 4} bytes is shorter than 28", ParseReason.SHORT)
        (ssrc,) = _SSRC.unpack_from(body)
        info = SenderInfo(*_SENDER_INFO.unpack_from(body, 4))
        reports, extension = _report_blocks(body, 24, count)
        return cls(ssrc, info, reports, extension)

    def __bytes__(self) -> bytes:
        info = self.sender_info
        _require(
            "SR",
            ("SSRC", self.ssrc, 32),
            ("NTP timestamp", info.ntp_timestamp, 64),
            ("RTP timestamp", info.rtp_timestamp, 32),
            ("packet count", info.packet_count, 32),
            ("octet count", info.octet_count, 32),
        )
        body = _SSRC.pack(self.ssrc) + _SENDER_INFO.pack(
            info.ntp_timestamp, info.rtp_timestamp, info.packet_count, info.octet_count
        )
        body += _pack_blocks(self.reports) + self.extension
        return _header(RtcpType.SR, len(self.reports), len(body)) + body


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (RFC 3550 §6.4.2); ``extension`` is any profile-specific extension, raw."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> ReceiverReport:
        """Parse one RR spanning ``data``.  Raises :class:`RtpParseError`."""
        count, _, body = _check_header(data, RtcpType.RR)
        if len(body) < 4:
            raise _error(f"RTCP RR of {len(body) + 4} bytes is shorter than 8", ParseReason.SHORT)
        (ssrc,) = _SSRC.unpack_from(body)
        reports, extension = _report_blocks(body, 4, count)
        return cls(ssrc, reports, extension)

    def __bytes__(self) -> bytes:
        _require("RR", ("SSRC", self.ssrc, 32))
        body = _SSRC.pack(self.ssrc)
        body += _pack_blocks(self.reports) + self.extension
        return _header(RtcpType.RR, len(self.reports), len(body)) + body


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The SDES items of one source: ``(item type, value)`` pairs in wire order."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @property
    def cname(self) -> str | None:
        """The CNAME item as text (undecodable bytes replaced), or ``None``."""
        for kind, value in self.items:
            if kind == SdesType.CNAME:
                return value.decode("utf-8", "replace")
        return None

    def __bytes__(self) -> bytes:
        _require("SDES chunk", ("SSRC", self.ssrc, 32))
        parts = [_SSRC.pack(self.ssrc)]
        for kind, value in self.items:
            if not 1 <= kind <= 255 or len(value) > 255:
                raise RtpUsageError(f"SDES item type {kind} with {len(value)} bytes cannot be encoded")
            parts.append(bytes((kind, len(value))) + value)
        size = sum(map(len, parts))
        # At least one null octet ends the item list, then nulls up to the next 32-bit boundary.
        parts.append(bytes(4 - size % 4))
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (RFC 3550 §6.5)."""

    chunks: tuple[SdesChunk, ...] = ()

    @classmethod
    def parse(cls, data: bytes) -> SourceDescription:
        """Parse one SDES packet spanning ``data``.  Raises :class:`RtpParseError`."""
        count, _, body = _check_header(data, RtcpType.SDES)
        chunks = []
        position = 0
        for index in range(count):
            if position + 4 > len(body):
                raise _error(f"SDES chunk {index + 1} of {count} starts past the packet's end")
            (ssrc,) = _SSRC.unpack_from(body, position)
            position += 4
            items = []
            while True:
                if position >= len(body):
                    raise _error(f"SDES chunk {index + 1} has no end of its item list")
                kind = body[position]
                if kind == SdesType.END:
                    position = (position + 4) & ~3  # skip the null octets to the 32-bit boundary
                    break
                if position + 2 > len(body) or position + 2 + body[position + 1] > len(body):
                    raise _error(f"SDES item of type {kind} in chunk {index + 1} runs past the packet")
                length = body[position + 1]
                items.append((kind, body[position + 2 : position + 2 + length]))
                position += 2 + length
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))

    def __bytes__(self) -> bytes:
        body = b"".join(bytes(chunk) for chunk in self.chunks)
        return _header(RtcpType.SDES, len(self.chunks), len(body)) + body


@dataclass(frozen=True, slots=True)
class Goodbye:
    """BYE (RFC 3550 §6.6); ``reason`` is the optional reason text, raw."""

    sources: tuple[int, ...]
    reason: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Goodbye:
        """Parse one BYE spanning ``data``.  Raises :class:`RtpParseError`."""
        count, _, body = _check_header(data, RtcpType.BYE)
        end = 4 * count
        if end > len(body):
            raise _error(f"BYE source count {count} needs {end + 4} bytes, packet has {len(body) + 4}")
        sources = struct.unpack_from(f"!{count}I", body)
        reason = b""
        if end < len(body):
            length = body[end]
            if end + 1 + length > len(body):
                raise _error(f"BYE reason of {length} bytes runs past the packet")
            reason = body[end + 1 : end + 1 + length]
        return cls(sources, reason)

    def __bytes__(self) -> bytes:
        if len(self.reason) > 255:
            raise RtpUsageError(f"BYE reason of {len(self.reason)} bytes is over 255")
        _require("BYE", *(("source", source, 32) for source in self.sources))
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            text = bytes((len(self.reason),)) + self.reason
            body += text + bytes(-len(text) % 4)
        return _header(RtcpType.BYE, len(self.sources), len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """An RTCP packet of a type not interpreted here, kept byte for byte (padding removed)."""

    packet_type: int
    count: int
    body: bytes

    @classmethod
    def parse(cls, data: bytes) -> RtcpUnknown:
        """Parse one packet spanning ``data``.  Raises :class:`RtpParseError`."""
        count, packet_type, body = _check_header(data, None)
        return cls(packet_type, count, body)

    def __bytes__(self) -> bytes:
        if not 0 <= self.packet_type <= 255:
            raise RtpUsageError(f"RTCP packet type {self.packet_type} is not in 0..255")
        return _header(self.packet_type, self.count, len(self.body)) + self.body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | RtcpUnknown

_PARSERS: dict[int, Callable[[bytes], RtcpPacket]] = {
    RtcpType.SR: SenderReport.parse,
    RtcpType.RR: ReceiverReport.parse,
    RtcpType.SDES: SourceDescription.parse,
    RtcpType.BYE: Goodbye.parse,
}


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Every packet of an RTCP datagram, in order.

    Non-compound (RFC 5506 reduced-size) datagrams are accepted.  Raises
    :class:`RtpParseError` when a packet is malformed or the length fields
    do not add up to the datagram.
    """
    packets: list[RtcpPacket] = []
    position = 0
    size = len(data)
    if size == 0:
        raise _error("empty RTCP datagram", ParseReason.SHORT)
    while position < size:
        if size - position < 4:
            raise _error(f"{size - position} bytes after the last RTCP packet", ParseReason.SHORT)
        first, packet_type, words = _COMMON.unpack_from(data, position)
        if first >> 6 != 2:
            raise _error(f"RTCP version {first >> 6} is not 2 (packet at byte {position})", ParseReason.VERSION)
        end = position + (words + 1) * 4
        if end > size:
            raise _error(f"RTCP packet at byte {position} claims {end - position} bytes, {size - position} remain")
        parser = _PARSERS.get(packet_type, RtcpUnknown.parse)
        packets.append(parser(data[position:end]))
        position = end
    return packets


def build_report(ssrc: int, cname: str, sender_info: SenderInfo | None, report_blocks: Iterable[ReportBlock]) -> bytes:
    """A compound RTCP report: SR (or RR without ``sender_info``), then SDES with the CNAME.

    Beyond 31 report blocks further RR packets carry the rest (RFC 3550 §6.4.2).
    """
    blocks = tuple(report_blocks)
    first, rest = blocks[:_MAX_COUNT], blocks[_MAX_COUNT:]
    packets: list[RtcpPacket] = [
        SenderReport(ssrc, sender_info, first) if sender_info is not None else ReceiverReport(ssrc, first)
    ]
    for start in range(0, len(rest), _MAX_COUNT):
        packets.append(ReceiverReport(ssrc, rest[start : start + _MAX_COUNT]))
    packets.append(_cname_packet(ssrc, cname))
    return b"".join(bytes(packet) for packet in packets)


def build_bye(ssrc: int, cname: str, reason: bytes = b"") -> bytes:
    """A compound RTCP BYE: an empty RR, SDES with the CNAME, then BYE (RFC 3550 §6.1)."""
    return bytes(ReceiverReport(ssrc)) + bytes(_cname_packet(ssrc, cname)) + bytes(Goodbye((ssrc,), reason))


def _cname_packet(ssrc: int, cname: str) -> SourceDescription:
    return SourceDescription((SdesChunk(ssrc, ((SdesType.CNAME, cname.encode("utf-8")),)),))


# --------------------------------------------------------------------------- time


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point since 1900) of a Unix time."""
    seconds = int(unix_time // 1)
    fraction = int((unix_time - seconds) * 4294967296.0)
    return ((seconds + _NTP_EPOCH_OFFSET) & 0xFFFFFFFF) << 32 | fraction


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp, the LSR of RFC 3550 §6.4.1."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_time(block: ReportBlock, arrival_ntp: int) -> float | None:
    """Round trip in seconds from a report about our stream received at ``arrival_ntp``.

    RFC 3550 §6.4.1: arrival - LSR - DLSR, in 1/65536 s.  ``None`` when the
    peer has not yet received an SR from us (LSR 0).
    """
    if block.lsr == 0:
        return None
    units = (ntp_middle(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if units >= 0x80000000:  # a clock step or a bogus report: no meaningful answer
        return None
    return units / 65536.0


# --------------------------------------------------------------------------- reception statistics

MAX_DROPOUT = 3000  # RFC 3550 A.1
MAX_MISORDER = 100
_DUPLICATE_WINDOW = 128  # sequence numbers behind the highest that are checked for duplicates
_WINDOW_MASK = (1 << _DUPLICATE_WINDOW) - 1


@dataclass(frozen=True, slots=True)
class ReceptionSnapshot:
    """What a call record keeps of one received stream."""

    received: int
    expected: int
    lost: int
    loss_percent: float
    jitter_ms: float
    max_jitter_ms: float
    duplicates: int
    reordered: int


class ReceptionStats:
    """Reception statistics of one source (sans-I/O; ``arrival`` times are the caller's clock).

    ``ssrc`` is the source's SSRC as put in report blocks; it may be set
    once the first packet has shown it.  Feed every RTP packet of the source to :meth:`update`; ask
    :meth:`report_block` when sending an RTCP report and :meth:`snapshot`
    for the call record.
    """

    __slots__ = (
        "_bad_sequence",
        "_base",
        "_clock_rate",
        "_expected_before",
        "_expected_prior",
        "_last_arrival",
        "_last_timestamp",
        "_lsr",
        "_max",
        "_probation",
        "_received_prior",
        "_seen",
        "_sr_arrival",
        "duplicates",
        "jitter",
        "max_jitter",
        "received",
        "reordered",
        "ssrc",
    )

    def __init__(self, ssrc: int = 0) -> None:
        self.ssrc = ssrc
        self.received = 0  # distinct packets, duplicates excluded
        self.duplicates = 0
        self.reordered = 0  # packets that arrived after a higher sequence number
        self.jitter = 0.0  # A.8 estimate, timestamp units
        self.max_jitter = 0.0
        self._clock_rate = 8000
        self._max: int | None = None  # extended highest sequence number
        self._base = 0  # extended first sequence number of the current run
        self._expected_before = 0  # packets expected in runs before a restart
        self._probation = False
        self._bad_sequence = -1
        self._seen = 0  # bit i: extended sequence _max - i received
        self._last_arrival = 0.0
        self._last_timestamp: int | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._lsr = 0
        self._sr_arrival = 0.0

    def update(
        self, sequence: int, rtp_timestamp: int, arrival: float, clock_rate: int = 8000, timed: bool = True
    ) -> bool:
        """Account for one RTP packet; ``False`` if it is a duplicate or a stray jump.

        ``arrival`` is in seconds.  Pass ``timed=False`` for packets whose
        timestamp is not their sampling instant (RFC 4733 event updates
        repeat the event's start): they count for loss but not for jitter.
        """
        self._clock_rate = clock_rate
        highest = self._max
        if highest is None:
            self._start(sequence)
            self._probation = True
        else:
            delta = seq_diff(sequence, highest)
            if self._probation:
                if delta != 1:  # the first packet had no follower: start again from this one
                    self.received = 0
                    self._start(sequence)
                    return self._count(rtp_timestamp, arrival, timed)
                self._probation = False
            if 0 < delta < MAX_DROPOUT:
                self._max = highest + delta
                self._seen = (self._seen << delta | 1) & _WINDOW_MASK
            elif delta == 0:
                self.duplicates += 1
                return False
            elif -MAX_MISORDER < delta < 0:
                behind = -delta
                if behind < _DUPLICATE_WINDOW:
                    bit = 1 << behind
                    if self._seen & bit:
                        self.duplicates += 1
                        return False
                    self._seen |= bit
                self._base = min(self._base, highest + delta)
                self.reordered += 1
            elif sequence == self._bad_sequence:
                # Two packets in a row after a big jump: the source restarted (A.1).
                self._expected_before += highest - self._base + 1
                self._start(sequence)
            else:
                self._bad_sequence = (sequence + 1) & 0xFFFF
                return False
        return self._count(rtp_timestamp, arrival, timed)

    def _start(self, sequence: int) -> None:
        self._max = self._base = sequence
        self._seen = 1
        self._bad_sequence = -1
        self._last_timestamp = None

    def _count(self, rtp_timestamp: int, arrival: float, timed: bool) -> bool:
        self.received += 1
        if timed:
            last = self._last_timestamp
            if last is not None:
                # A.8: D = (Rj - Ri) - (Sj - Si), arrival converted to timestamp units.
                transit_change = (arrival - self._last_arrival) * self._clock_rate - ts_diff(rtp_timestamp, last)
                self.jitter += (abs(transit_change) - self.jitter) / 16.0
                self.max_jitter = max(self.max_jitter, self.jitter)
            self._last_arrival = arrival
            self._last_timestamp = rtp_timestamp
        return True

    @property
    def extended_highest(self) -> int:
        """Extended highest sequence number received (cycles << 16 | sequence), 32 bits."""
        return (self._max or 0) & 0xFFFFFFFF

    @property
    def expected(self) -> int:
        """Packets expected: the span of sequence numbers seen, across restarts."""
        if self._max is None:
            return 0
        return self._expected_before + self._max - self._base + 1

    @property
    def lost(self) -> int:
        """Packets expected but not received (never negative: duplicates are not counted)."""
        return max(self.expected - self.received, 0)

    def sender_report_received(self, ntp: int, arrival: float) -> None:
        """Note an SR from this source (its 64-bit NTP time) for LSR/DLSR in our reports."""
        self._lsr = ntp_middle(ntp)
        self._sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for this source, starting a new fraction-lost interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        dlsr = 0
        if self._lsr:
            dlsr = min(max(int((now - self._sr_arrival) * 65536), 0), 0xFFFFFFFF)
        return ReportBlock(
            self.ssrc,
            min(fraction, 255),
            min(self.lost, 0x7FFFFF),
            self.extended_highest,
            min(int(self.jitter), 0xFFFFFFFF),
            self._lsr,
            dlsr,
        )

    def snapshot(self) -> ReceptionSnapshot:
        """Totals for the call record."""
        expected = self.expected
        lost = self.lost
        to_ms = 1000.0 / self._clock_rate
        return ReceptionSnapshot(
            received=self.received,
            expected=expected,
            lost=lost,
            loss_percent=100.0 * lost / expected if expected else 0.0,
            jitter_ms=self.jitter * to_ms,
            max_jitter_ms=self.max_jitter * to_ms,
            duplicates=self.duplicates,
            reordered=self.reordered,
        )
