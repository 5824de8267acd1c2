"""RTP data packets (RFC 3550 §5.1).

Two ways in, for two kinds of reader:

* :meth:`RtpPacket.parse` checks every rule of RFC 3550 §5.1 and A.1 that
  the bytes alone can show (version, CSRC list, header extension, padding)
  and returns a full :class:`RtpPacket`; ``parse(bytes(p)) == p``.
* :func:`peek` is the relay's path: one ``struct`` call, the same framing
  checks, no object built, ``None`` for anything that is not plainly RTP.

The wrap-aware helpers :func:`seq_diff` and :func:`ts_diff` give the signed
distance between 16-bit sequence numbers and 32-bit timestamps, and
:func:`is_rtcp` tells RTCP from RTP on a muxed port (RFC 5761 §4).

Fixed header (RFC 3550 §5.1)::

     0                   1                   2                   3
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
    |            contributing source (CSRC) identifiers (0-15)      |
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import ParseReason, RtpParseError, RtpUsageError

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "RtpPacket",
    "is_rtcp",
    "pack_header",
    "peek",
    "seq_diff",
    "ts_diff",
]

HEADER = struct.Struct("!BBHII")
"""The 12-byte fixed header: V/P/X/CC, M/PT, sequence, timestamp, SSRC."""
HEADER_SIZE = HEADER.size

_unpack_header = HEADER.unpack_from
_pack_header = HEADER.pack
_EXTENSION_HEADER = struct.Struct("!HH")  # profile-defined bits, length in 32-bit words
_unpack_extension_header = _EXTENSION_HEADER.unpack_from
# One precompiled struct per CSRC count, so parsing a mixer's packet builds no format string.
_CSRC_LISTS = tuple(struct.Struct(f"!{count}I") for count in range(16))

_VERSION_BITS = 0x80  # V=2 in the top two bits of the first octet
_PADDING_BIT = 0x20
_EXTENSION_BIT = 0x10
_MARKER_BIT = 0x80


@dataclass(slots=True)
class RtpPacket:
    """One RTP data packet.

    ``padding`` is the number of padding octets at the end of the packet,
    the count octet included (0: no padding, P bit clear).
    ``extension_profile`` is ``None`` when the packet carries no header
    extension (X bit clear); otherwise ``extension`` holds the extension's
    data words (a multiple of 4 bytes) without the 4-byte extension header.
    The packet is mutable so a relay can rewrite sequence, timestamp and
    SSRC in place before serialising it again.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP datagram.

        Raises :class:`RtpParseError` with reason ``short`` (under 12 bytes),
        ``version`` (not version 2), ``csrc`` or ``extension`` (the CSRC list
        or header extension runs past the data) or ``padding`` (a padding
        count of zero or one that runs into the header).
        """
        size = len(data)
        if size < 12:
            raise RtpParseError(
                f"RTP packet of {size} bytes is shorter than the 12-byte fixed header", ParseReason.SHORT
            )
        first, second, sequence, timestamp, ssrc = _unpack_header(data)
        if first & 0xC0 != _VERSION_BITS:
            raise RtpParseError(f"RTP version {first >> 6} is not 2", ParseReason.VERSION)
        position = 12
        csrc: tuple[int, ...] = ()
        count = first & 0x0F
        if count:
            position += count << 2
            if position > size:
                raise RtpParseError(
                    f"RTP CSRC count {count} needs {position} header bytes, packet has {size}",
                    ParseReason.CSRC,
                )
            csrc = _CSRC_LISTS[count].unpack_from(data, 12)
        profile: int | None = None
        extension = b""
        if first & _EXTENSION_BIT:
            if position + 4 > size:
                raise RtpParseError(
                    f"RTP header extension header at byte {position} runs past the {size}-byte packet",
                    ParseReason.EXTENSION,
                )
            profile, words = _unpack_extension_header(data, position)
            start = position + 4
            position = start + (words << 2)
            if position > size:
                raise RtpParseError(
                    f"RTP header extension of {words} words ends at byte {position}, packet has {size}",
                    ParseReason.EXTENSION,
                )
            extension = bytes(data[start:position])
        end = size
        padding = 0
        if first & _PADDING_BIT:
            padding = data[-1]
            if padding == 0 or padding > size - position:
                raise RtpParseError(
                    f"RTP padding count {padding} is invalid: {size - position} bytes follow the header",
                    ParseReason.PADDING,
                )
            end = size - padding
        return cls(
            second & 0x7F,
            sequence,
            timestamp,
            ssrc,
            bytes(data[position:end]),
            second >= _MARKER_BIT,
            csrc,
            profile,
            extension,
            padding,
        )

    def __bytes__(self) -> bytes:
        """The packet on the wire; padding octets are zeros ending in their count.

        Raises :class:`RtpUsageError` for a field that does not fit its bits.
        """
        payload_type = self.payload_type
        if not 0 <= payload_type <= 127:
            raise RtpUsageError(f"RTP payload type {payload_type} is not in 0..127")
        csrc = self.csrc
        count = len(csrc)
        if count > 15:
            raise RtpUsageError(f"RTP packet cannot carry {count} CSRCs (at most 15)")
        first = _VERSION_BITS | count
        second = payload_type | _MARKER_BIT if self.marker else payload_type
        profile = self.extension_profile
        padding = self.padding
        try:
            if not (count or padding) and profile is None and not self.extension:
                return _pack_header(first, second, self.sequence, self.timestamp, self.ssrc) + self.payload
            parts = [b""]
            if count:
                parts.append(_CSRC_LISTS[count].pack(*csrc))
            if profile is None:
                if self.extension:
                    raise RtpUsageError("RTP header extension data given without an extension profile")
            else:
                extension = self.extension
                if len(extension) & 3:
                    raise RtpUsageError(
                        f"RTP header extension of {len(extension)} bytes is not a whole number of 32-bit words"
                    )
                parts.append(_EXTENSION_HEADER.pack(profile, len(extension) >> 2))
                parts.append(extension)
                first |= _EXTENSION_BIT
            parts.append(self.payload)
            if padding:
                if not 1 <= padding <= 255:
                    raise RtpUsageError(f"RTP padding of {padding} bytes is not in 1..255")
                parts.append(bytes(padding - 1) + bytes((padding,)))
                first |= _PADDING_BIT
            parts[0] = _pack_header(first, second, self.sequence, self.timestamp, self.ssrc)
        except struct.error:
            raise _out_of_range(
                ("sequence number", self.sequence, 16),
                ("timestamp", self.timestamp, 32),
                ("SSRC", self.ssrc, 32),
                *(("CSRC", source, 32) for source in csrc),
                ("extension profile", profile or 0, 16),
            ) from None
        return b"".join(parts)


def pack_header(payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool = False) -> bytes:
    """The 12-byte fixed header of a version-2 packet with no CSRC, extension or padding.

    Raises :class:`RtpUsageError` for a field that does not fit its bits.
    """
    if payload_type > 127 or payload_type < 0:
        raise RtpUsageError(f"RTP payload type {payload_type} is not in 0..127")
    try:
        return _pack_header(0x80, payload_type | 0x80 if marker else payload_type, sequence, timestamp, ssrc)
    except struct.error:
        raise _out_of_range(
            ("sequence number", sequence, 16), ("timestamp", timestamp, 32), ("SSRC", ssrc, 32)
        ) from None


def _out_of_range(*fields: tuple[str, int, int]) -> RtpUsageError:
    """The error naming the first field that does not fit its bits (only reached once packing failed)."""
    for name, value, bits in fields:
        if not isinstance(value, int) or not 0 <= value < 1 << bits:
            return RtpUsageError(f"RTP {name} {value!r} is not an integer in 0..{(1 << bits) - 1}")
    return RtpUsageError("RTP header field out of range")


def peek(data: bytes) -> tuple[int, bool, int, int, int, int] | None:
    """``(payload_type, marker, sequence, timestamp, ssrc, header_len)``, or ``None``.

    The relay's fast path: framing is checked as :meth:`RtpPacket.parse`
    checks it (length, version, CSRC list, extension) but nothing is built.
    ``header_len`` is where the payload starts.  Padding is not removed: a
    packet with the P bit set (``data[0] & 0x20``) ends in
    ``data[-1]`` padding octets.
    """
    size = len(data)
    if size < 12:
        return None
    first, second, sequence, timestamp, ssrc = _unpack_header(data)
    if first & 0xC0 != 0x80:
        return None
    header_len = 12 + ((first & 0x0F) << 2)
    if first & 0x10:
        if header_len + 4 > size:
            return None
        header_len += 4 + (_unpack_extension_header(data, header_len)[1] << 2)
    if header_len > size:
        return None
    return second & 0x7F, second >= 0x80, sequence, timestamp, ssrc, header_len


def seq_diff(a: int, b: int) -> int:
    """``a - b`` for 16-bit sequence numbers, wrap-aware, in -32768..32767.

    ``seq_diff(0, 65535) == 1``: 0 follows 65535.
    """
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_diff(a: int, b: int) -> int:
    """``a - b`` for 32-bit RTP timestamps, wrap-aware, in -2**31..2**31-1."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on an RTP/RTCP-muxed port is RTCP (RFC 5761 §4).

    RTCP packet types 192-223 sit where RTP's marker and payload type are;
    with the marker bit masked they read as payload types 64-95, which a
    muxed RTP stream must not use.
    """
    return len(data) >= 2 and 64 <= (data[1] & 0x7F) <= 95
