"""Tests of :mod:`cosmo.rtp.packet`: RFC 3550 §5.1 framing, the relay fast path, wrap arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosmo.rtp.errors import ParseReason, RtpError, RtpParseError, RtpUsageError
from cosmo.rtp.packet import (
    HEADER,
    RtpPacket,
    is_rtcp,
    pack_header,
    peek,
    seq_diff,
    ts_diff,
)

# --- byte vectors built by hand from RFC 3550 §5.1 -----------------------------------------

# V=2 P=0 X=0 CC=0 | M=0 PT=0 | seq 1 | ts 160 | SSRC 0xdeadbeef | 4 bytes of µ-law silence
PCMU = bytes.fromhex("80 00 0001 000000a0 deadbeef ffffffff")
# M=1 PT=101 (a telephone-event start): second octet 0x80 | 101 = 0xe5
EVENT_START = bytes.fromhex("80 e5 1234 00001f40 00000001 05 0a 00a0")
# CC=2: two CSRCs follow the SSRC
MIXED = bytes.fromhex("82 08 ffff ffffffff 00000002 00000011 00000022 d5d5")
# X=1: profile 0xBEDE (RFC 8285 one-byte form), length 1 word, then the word
EXTENDED = bytes.fromhex("90 00 0002 00000000 00000003 bede 0001 10ff0000 7f")
# P=1: payload "ab" then 3 padding octets, the last holding the count
PADDED = bytes.fromhex("a0 08 0003 00000000 00000004 6162 0000 03")
# Everything: P, X, CC=1, marker, PT 96
FULL = bytes.fromhex("b1 e0 fffe 89abcdef 01020304 0a0b0c0d 1000 0002 11111111 22222222 99 00 02")


def test_parse_plain_pcmu() -> None:
    assert RtpPacket.parse(PCMU) == RtpPacket(0, 1, 160, 0xDEADBEEF, b"\xff" * 4)


def test_parse_marker_and_dynamic_payload_type() -> None:
    packet = RtpPacket.parse(EVENT_START)
    assert (packet.payload_type, packet.marker, packet.sequence, packet.timestamp) == (101, True, 0x1234, 8000)
    assert packet.payload == bytes.fromhex("050a00a0")


def test_parse_csrc_list() -> None:
    packet = RtpPacket.parse(MIXED)
    assert packet.csrc == (0x11, 0x22)
    assert (packet.payload_type, packet.sequence, packet.timestamp, packet.payload) == (
        8,
        65535,
        2**32 - 1,
        b"\xd5\xd5",
    )


def test_parse_header_extension() -> None:
    packet = RtpPacket.parse(EXTENDED)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension == bytes.fromhex("10ff0000")
    assert packet.payload == b"\x7f"


def test_parse_padding() -> None:
    packet = RtpPacket.parse(PADDED)
    assert packet.payload == b"ab"
    assert packet.padding == 3


def test_parse_everything_at_once() -> None:
    assert RtpPacket.parse(FULL) == RtpPacket(
        payload_type=96,
        sequence=0xFFFE,
        timestamp=0x89ABCDEF,
        ssrc=0x01020304,
        payload=b"\x99",
        marker=True,
        csrc=(0x0A0B0C0D,),
        extension_profile=0x1000,
        extension=bytes.fromhex("1111111122222222"),
        padding=2,
    )


@pytest.mark.parametrize("data", [PCMU, EVENT_START, MIXED, EXTENDED, PADDED, FULL])
def test_serialise_reproduces_the_vectors(data: bytes) -> None:
    assert bytes(RtpPacket.parse(data)) == data


def test_padding_of_only_the_count_octet() -> None:
    data = bytes.fromhex("a0 00 0000 00000000 00000000 01")
    assert RtpPacket.parse(data) == RtpPacket(0, 0, 0, 0, b"", padding=1)
    assert bytes(RtpPacket.parse(data)) == data


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b"", ParseReason.SHORT, "RTP packet of 0 bytes is shorter than the 12-byte fixed header"),
        (PCMU[:11], ParseReason.SHORT, "RTP packet of 11 bytes is shorter than the 12-byte fixed header"),
        (b"\x40" + PCMU[1:], ParseReason.VERSION, "RTP version 1 is not 2"),
        (b"\x00" + PCMU[1:], ParseReason.VERSION, "RTP version 0 is not 2"),
        (MIXED[:19], ParseReason.CSRC, "RTP CSRC count 2 needs 20 header bytes, packet has 19"),
        (
            b"\x8f" + PCMU[1:],
            ParseReason.CSRC,
            "RTP CSRC count 15 needs 72 header bytes, packet has 16",
        ),
        (
            EXTENDED[:14],
            ParseReason.EXTENSION,
            "RTP header extension header at byte 12 runs past the 14-byte packet",
        ),
        (
            EXTENDED[:19],
            ParseReason.EXTENSION,
            "RTP header extension of 1 words ends at byte 20, packet has 19",
        ),
        (
            PADDED[:-1] + b"\x00",
            ParseReason.PADDING,
            "RTP padding count 0 is invalid: 5 bytes follow the header",
        ),
        (
            PADDED[:-1] + b"\x06",
            ParseReason.PADDING,
            "RTP padding count 6 is invalid: 5 bytes follow the header",
        ),
        (
            bytes.fromhex("a0 00 0000 00000000 00000000"),
            ParseReason.PADDING,
            "RTP padding count 0 is invalid: 0 bytes follow the header",
        ),
    ],
)
def test_malformed_packets(data: bytes, reason: ParseReason, message: str) -> None:
    with pytest.raises(RtpParseError) as caught:
        RtpPacket.parse(data)
    assert caught.value.reason == reason
    assert str(caught.value) == message
    assert peek(data) is None or reason == ParseReason.PADDING


def test_reason_is_a_stable_string_for_counters() -> None:
    assert ParseReason.CSRC.value == "csrc" and str(ParseReason.CSRC) == "csrc"
    assert isinstance(RtpParseError("x", ParseReason.SHORT), RtpError)


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (RtpPacket(128, 0, 0, 0), "RTP payload type 128 is not in 0..127"),
        (RtpPacket(0, 65536, 0, 0), "RTP sequence number 65536 is not an integer in 0..65535"),
        (RtpPacket(0, 0, 2**32, 0), "RTP timestamp 4294967296 is not an integer in 0..4294967295"),
        (RtpPacket(0, 0, 0, -1), "RTP SSRC -1 is not an integer in 0..4294967295"),
        (RtpPacket(0, 0, 0, 0, csrc=(1, 2**32)), "RTP CSRC 4294967296 is not an integer in 0..4294967295"),
        (
            RtpPacket(0, 0, 0, 0, extension_profile=65536),
            "RTP extension profile 65536 is not an integer in 0..65535",
        ),
        (RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))), "RTP packet cannot carry 16 CSRCs (at most 15)"),
        (
            RtpPacket(0, 0, 0, 0, extension_profile=1, extension=b"abc"),
            "RTP header extension of 3 bytes is not a whole number of 32-bit words",
        ),
        (
            RtpPacket(0, 0, 0, 0, extension=b"abcd"),
            "RTP header extension data given without an extension profile",
        ),
        (RtpPacket(0, 0, 0, 0, padding=256), "RTP padding of 256 bytes is not in 1..255"),
    ],
)
def test_serialising_impossible_fields(packet: RtpPacket, message: str) -> None:
    with pytest.raises(RtpUsageError) as caught:
        bytes(packet)
    assert str(caught.value) == message


# --- fast path -------------------------------------------------------------------------------


def test_pack_header_matches_the_full_serialiser() -> None:
    assert pack_header(0, 1, 160, 0xDEADBEEF) == PCMU[:12]
    assert pack_header(101, 0x1234, 8000, 1, marker=True) == EVENT_START[:12]
    assert HEADER.size == 12


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((128, 0, 0, 0), "RTP payload type 128 is not in 0..127"),
        ((-1, 0, 0, 0), "RTP payload type -1 is not in 0..127"),
        ((0, -1, 0, 0), "RTP sequence number -1 is not an integer in 0..65535"),
        ((0, 0, 1.5, 0), "RTP timestamp 1.5 is not an integer in 0..4294967295"),
    ],
)
def test_pack_header_refuses_what_does_not_fit(arguments: tuple[int, int, float, int], message: str) -> None:
    with pytest.raises(RtpUsageError) as caught:
        pack_header(*arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_peek() -> None:
    assert peek(PCMU) == (0, False, 1, 160, 0xDEADBEEF, 12)
    assert peek(EVENT_START) == (101, True, 0x1234, 8000, 1, 12)
    assert peek(MIXED) == (8, False, 65535, 2**32 - 1, 2, 20)
    assert peek(EXTENDED) == (0, False, 2, 0, 3, 20)
    assert peek(PADDED) == (8, False, 3, 0, 4, 12)  # padding left for the caller
    assert peek(FULL) == (96, True, 0xFFFE, 0x89ABCDEF, 0x01020304, 28)


# --- wrap arithmetic and demultiplexing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "difference"),
    [(5, 5, 0), (6, 5, 1), (5, 6, -1), (0, 65535, 1), (65535, 0, -1), (32767, 0, 32767), (32768, 0, -32768)],
)
def test_seq_diff(a: int, b: int, difference: int) -> None:
    assert seq_diff(a, b) == difference


def test_ts_diff_wraps_at_32_bits() -> None:
    assert ts_diff(80, 2**32 - 80) == 160
    assert ts_diff(2**32 - 80, 80) == -160
    assert ts_diff(2**31 - 1, 0) == 2**31 - 1


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_seq_diff_inverts_addition(a: int, b: int) -> None:
    assert (b + seq_diff(a, b)) & 0xFFFF == a
    assert -32768 <= seq_diff(a, b) <= 32767


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_ts_diff_inverts_addition(a: int, b: int) -> None:
    assert (b + ts_diff(a, b)) & 0xFFFFFFFF == a


@pytest.mark.parametrize(
    ("second_octet", "rtcp"),
    [
        (200, True),  # SR
        (201, True),  # RR
        (206, True),  # PSFB
        (207, True),  # XR
        (192, True),
        (223, True),
        (0, False),  # PCMU
        (0x80 | 8, False),  # PCMA with marker
        (101, False),  # telephone-event
        (0x80 | 101, False),
        (0x80 | 127, False),
        (0x80 | 63, False),
        (0x80 | 96, False),
    ],
)
def test_is_rtcp(second_octet: int, rtcp: bool) -> None:
    assert is_rtcp(bytes((0x80, second_octet, 0, 1))) is rtcp


def test_is_rtcp_on_a_runt() -> None:
    assert is_rtcp(b"\x80") is False


# --- properties ---------------------------------------------------------------------------------

packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 65535),
    timestamp=st.integers(0, 2**32 - 1),
    ssrc=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
    extension_profile=st.none() | st.integers(0, 65535),
    extension=st.just(b""),
    padding=st.integers(0, 255),
).flatmap(
    lambda p: (
        st.binary(max_size=8).map(lambda words: _with_extension(p, words))
        if p.extension_profile is not None
        else st.just(p)
    )
)


def _with_extension(packet: RtpPacket, data: bytes) -> RtpPacket:
    packet.extension = data[: len(data) // 4 * 4]
    return packet


@given(packets)
def test_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet


@given(packets)
def test_peek_agrees_with_parse(packet: RtpPacket) -> None:
    data = bytes(packet)
    found = peek(data)
    assert found is not None
    payload_type, marker, sequence, timestamp, ssrc, header_len = found
    assert (payload_type, marker, sequence, timestamp, ssrc) == (
        packet.payload_type,
        packet.marker,
        packet.sequence,
        packet.timestamp,
        packet.ssrc,
    )
    end = len(data) - packet.padding
    assert data[header_len:end] == packet.payload


@given(st.binary(max_size=80))
def test_random_bytes_parse_or_raise_our_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError as error:
        assert (peek(data) is None) is (error.reason != ParseReason.PADDING)
    else:
        assert peek(data) is not None
        assert RtpPacket.parse(bytes(packet)) == packet


@given(st.binary(min_size=12, max_size=80))
def test_random_version_2_bytes(data: bytes) -> None:
    data = bytes((0x80 | data[0] & 0x3F,)) + data[1:]
    try:
        RtpPacket.parse(data)
    except RtpParseError as error:
        assert error.reason in {ParseReason.CSRC, ParseReason.EXTENSION, ParseReason.PADDING}
