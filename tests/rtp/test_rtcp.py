"""Tests of :mod:`cosmo.rtp.rtcp`: RFC 3550 §6 packets and the A.1/A.3/A.8 reception statistics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosmo.rtp.errors import ParseReason, RtpParseError, RtpUsageError
from cosmo.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    ReceptionSnapshot,
    ReceptionStats,
    ReportBlock,
    RtcpPacket,
    RtcpUnknown,
    SdesChunk,
    SdesType,
    SenderInfo,
    SenderReport,
    SourceDescription,
    build_bye,
    build_report,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
    round_trip_time,
)

# --- byte vectors built by hand from RFC 3550 §6.4-6.6 ------------------------------------------

# RR, RC=1, length 7 words; block: 25 % lost (64/256), 5 lost in all, highest 1:16 (one
# wrap), jitter 32, LSR 0x12345678, DLSR one second (65536).
RR = bytes.fromhex("81c90007 11223344 55667788 40000005 00010010 00000020 12345678 00010000")
RR_VALUE = ReceiverReport(0x11223344, (ReportBlock(0x55667788, 64, 5, 0x10010, 32, 0x12345678, 0x10000),))
# SR, RC=0, length 6: NTP 0xe8fe6f80_80000000 (2023-11-14 22:13:20.5 UTC), RTP 8000, 50 packets, 8000 octets.
SR = bytes.fromhex("80c80006 01020304 e8fe6f80 80000000 00001f40 00000032 00001f40")
SR_VALUE = SenderReport(0x01020304, SenderInfo(0xE8FE6F8080000000, 8000, 50, 8000))
# SDES, SC=1: CNAME "user@host" (9 octets) then one null octet to the 32-bit boundary.
SDES = bytes.fromhex("81ca0004 01020304 0109 75736572 40686f73 74 00")
SDES_VALUE = SourceDescription((SdesChunk(0x01020304, ((SdesType.CNAME, b"user@host"),)),))
# BYE, SC=1, reason "hangup": length octet 6, 6 octets, one zero to the boundary.
BYE = bytes.fromhex("81cb0003 01020304 06 68616e67 7570 00")
BYE_VALUE = Goodbye((0x01020304,), b"hangup")
# A transport-layer feedback packet (RTPFB, RFC 4585), not interpreted: kept whole.
RTPFB = bytes.fromhex("81cd0003 01020304 55667788 00050000")
RTPFB_VALUE = RtcpUnknown(205, 1, bytes.fromhex("01020304 55667788 00050000"))


@pytest.mark.parametrize(
    ("data", "value"),
    [(RR, RR_VALUE), (SR, SR_VALUE), (SDES, SDES_VALUE), (BYE, BYE_VALUE), (RTPFB, RTPFB_VALUE)],
)
def test_vectors_parse_and_serialise(data: bytes, value: RtcpPacket) -> None:
    assert type(value).parse(data) == value
    assert bytes(value) == data
    assert parse_compound(data) == [value]


def test_compound_report() -> None:
    assert parse_compound(SR + RR + SDES + BYE) == [SR_VALUE, RR_VALUE, SDES_VALUE, BYE_VALUE]


def test_negative_cumulative_loss() -> None:
    block = ReportBlock.parse(bytes.fromhex("00000001 00ffffff 00000000 00000000 00000000 00000000"))
    assert block.cumulative_lost == -1
    assert bytes(block)[4:8] == bytes.fromhex("00ffffff")


def test_padding_on_the_last_packet_is_removed() -> None:
    padded_bye = bytes.fromhex("a1cb0002 01020304 00000004")
    assert parse_compound(RR + padded_bye) == [RR_VALUE, Goodbye((0x01020304,))]


def test_sdes_with_several_items_and_chunks() -> None:
    data = bytes.fromhex(
        "82ca0006"
        " 00000001 010161 06027a7a 00"  # CNAME "a", TOOL "zz", one null to the boundary
        " 00000002 0103626262 000000"  # CNAME "bbb", three nulls
    )
    packet = SourceDescription.parse(data)
    assert packet == SourceDescription(
        (SdesChunk(1, ((SdesType.CNAME, b"a"), (SdesType.TOOL, b"zz"))), SdesChunk(2, ((SdesType.CNAME, b"bbb"),)))
    )
    assert bytes(packet) == data
    assert packet.chunks[0].cname == "a"
    assert SdesChunk(9).cname is None


def test_sdes_chunk_on_a_boundary_gets_four_nulls() -> None:
    chunk = SdesChunk(1, ((SdesType.CNAME, b"ab"),))  # 4 + 2 + 2 = 8: a whole null word follows
    assert bytes(chunk) == bytes.fromhex("00000001 0102 6162 00000000")
    assert SourceDescription.parse(bytes(SourceDescription((chunk,)))) == SourceDescription((chunk,))


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b"", ParseReason.SHORT, "empty RTCP datagram"),
        (RR + b"\x81\xc9", ParseReason.SHORT, "2 bytes after the last RTCP packet"),
        (b"\x41" + RR[1:], ParseReason.VERSION, "RTCP version 1 is not 2 (packet at byte 0)"),
        (RR[:-4], ParseReason.LENGTH, "RTCP packet at byte 0 claims 32 bytes, 28 remain"),
        (
            bytes.fromhex("82c90007") + RR[4:],
            ParseReason.LENGTH,
            "RTCP report count 2 needs 56 bytes, packet has 32",
        ),
        (bytes.fromhex("80c80001 01020304"), ParseReason.SHORT, "RTCP SR of 8 bytes is shorter than 28"),
        (bytes.fromhex("80c90000"), ParseReason.SHORT, "RTCP RR of 4 bytes is shorter than 8"),
        (
            bytes.fromhex("81ca0002 01020304 0109 7573"),
            ParseReason.LENGTH,
            "SDES item of type 1 in chunk 1 runs past the packet",
        ),
        (
            bytes.fromhex("81ca0002 01020304 0102 7573"),
            ParseReason.LENGTH,
            "SDES chunk 1 has no end of its item list",
        ),
        (bytes.fromhex("82ca0001 01020304"), ParseReason.LENGTH, "SDES chunk 1 has no end of its item list"),
        (
            bytes.fromhex("82ca0002 01020304 00000000"),
            ParseReason.LENGTH,
            "SDES chunk 2 of 2 starts past the packet's end",
        ),
        (bytes.fromhex("82cb0001 01020304"), ParseReason.LENGTH, "BYE source count 2 needs 12 bytes, packet has 8"),
        (
            bytes.fromhex("81cb0002 01020304 09616263"),
            ParseReason.LENGTH,
            "BYE reason of 9 bytes runs past the packet",
        ),
        (
            bytes.fromhex("a1cb0002 01020304 00000000"),
            ParseReason.PADDING,
            "RTCP padding count 0 is invalid in a 12-byte packet",
        ),
        (
            bytes.fromhex("a1cb0002 01020304 0000000c"),
            ParseReason.PADDING,
            "RTCP padding count 12 is invalid in a 12-byte packet",
        ),
    ],
)
def test_malformed_datagrams(data: bytes, reason: ParseReason, message: str) -> None:
    with pytest.raises(RtpParseError) as caught:
        parse_compound(data)
    assert caught.value.reason == reason
    assert str(caught.value) == message


def test_parsing_one_type_as_another() -> None:
    with pytest.raises(RtpParseError) as caught:
        SenderReport.parse(RR)
    assert caught.value.reason == ParseReason.TYPE
    assert str(caught.value) == "RTCP packet type 201 is not 200"
    with pytest.raises(RtpParseError) as caught:
        ReceiverReport.parse(RR + b"\x00\x00\x00\x00")
    assert str(caught.value) == "RTCP length field gives 32 bytes, packet has 36"


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (ReportBlock(1, fraction_lost=256), "report block fraction lost 256 is not an integer in 0..255"),
        (
            ReportBlock(1, cumulative_lost=0x800000),
            "report block cumulative loss 8388608 is not a signed 24-bit integer",
        ),
        (ReportBlock(2**32), "report block SSRC 4294967296 is not an integer in 0..4294967295"),
        (
            SenderReport(1, SenderInfo(2**64, 0, 0, 0)),
            "SR NTP timestamp 18446744073709551616 is not an integer in 0..18446744073709551615",
        ),
        (ReceiverReport(-1), "RR SSRC -1 is not an integer in 0..4294967295"),
        (ReceiverReport(1, tuple(ReportBlock(n) for n in range(32))), "RTCP packet cannot carry 32 items (at most 31)"),
        (ReceiverReport(1, extension=b"abc"), "RTCP packet body of 7 bytes is not a whole number of 32-bit words"),
        (Goodbye((2**32,)), "BYE source 4294967296 is not an integer in 0..4294967295"),
        (Goodbye((1,), b"x" * 256), "BYE reason of 256 bytes is over 255"),
        (SdesChunk(1, ((1, b"x" * 256),)), "SDES item type 1 with 256 bytes cannot be encoded"),
        (SdesChunk(1, ((0, b"x"),)), "SDES item type 0 with 1 bytes cannot be encoded"),
        (RtcpUnknown(256, 0, b""), "RTCP packet type 256 is not in 0..255"),
    ],
)
def test_serialising_impossible_fields(packet: object, message: str) -> None:
    with pytest.raises(RtpUsageError) as caught:
        bytes(packet)  # type: ignore[call-overload]
    assert str(caught.value) == message


# --- building reports -------------------------------------------------------------------------------


def test_build_receiver_report() -> None:
    data = build_report(0x01020304, "user@host", None, [RR_VALUE.reports[0]])
    assert data == bytes.fromhex("81c90007 01020304") + RR[8:] + SDES


def test_build_sender_report() -> None:
    data = build_report(0x01020304, "user@host", SR_VALUE.sender_info, [])
    assert data == SR + SDES


def test_build_report_with_more_than_31_blocks() -> None:
    blocks = [ReportBlock(n) for n in range(40)]
    packets = parse_compound(build_report(7, "c", SR_VALUE.sender_info, blocks))
    assert [type(p) for p in packets] == [SenderReport, ReceiverReport, SourceDescription]
    assert packets[0].reports + packets[1].reports == tuple(blocks)  # type: ignore[union-attr]


def test_build_bye() -> None:
    assert build_bye(0x01020304, "user@host", b"hangup") == bytes.fromhex("80c90001 01020304") + SDES + BYE


# --- time ---------------------------------------------------------------------------------------------


def test_ntp_timestamps() -> None:
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1_700_000_000.5) == 0xE8FE6F80_80000000
    assert ntp_middle(0xE8FE6F80_80000000) == 0x6F808000


def test_round_trip_time() -> None:
    # We sent an SR at NTP middle 0x6F808000; the peer held it 0.25 s; its RR arrives 0.75 s after.
    block = ReportBlock(1, lsr=0x6F808000, dlsr=0x4000)
    arrival = 0xE8FE6F80_80000000 + (3 << 30)  # 0.75 s later
    assert round_trip_time(block, arrival) == pytest.approx(0.5)
    assert round_trip_time(ReportBlock(1), arrival) is None
    assert round_trip_time(ReportBlock(1, lsr=0x6F808000, dlsr=0x40000), arrival) is None  # negative


# --- reception statistics -------------------------------------------------------------------------------


def _feed(stats: ReceptionStats, sequences: list[int], start: float = 0.0) -> None:
    for index, sequence in enumerate(sequences):
        stats.update(sequence, (sequence * 160) & 0xFFFFFFFF, start + index * 0.02)


def test_in_order_stream() -> None:
    stats = ReceptionStats(0xABC)
    _feed(stats, list(range(1000, 1100)))
    snapshot = stats.snapshot()
    assert (snapshot.received, snapshot.expected, snapshot.lost, snapshot.loss_percent) == (100, 100, 0, 0.0)
    assert (snapshot.duplicates, snapshot.reordered) == (0, 0)
    assert snapshot.jitter_ms == pytest.approx(0.0, abs=1e-9)
    assert stats.extended_highest == 1099


def test_loss_with_gaps() -> None:
    stats = ReceptionStats(1)
    sequences = [s for s in range(100) if s not in (10, 20, 21, 22)]
    _feed(stats, sequences)
    snapshot = stats.snapshot()
    assert (snapshot.received, snapshot.expected, snapshot.lost) == (96, 100, 4)
    assert snapshot.loss_percent == pytest.approx(4.0)
    block = stats.report_block(now=2.0)
    assert (block.ssrc, block.fraction_lost, block.cumulative_lost, block.highest_sequence) == (1, 10, 4, 99)
    # fraction = (4 << 8) // 100 = 10


def test_wrap_at_65535() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [65530, 65531, 65532, 65534, 65535, 0, 1, 3, 4])
    assert stats.extended_highest == 0x10004
    assert (stats.expected, stats.received, stats.lost) == (11, 9, 2)
    assert stats.report_block(0.0).highest_sequence == 65536 + 4


def test_several_wraps() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [(100 + n) & 0xFFFF for n in range(3 * 65536)])
    assert stats.extended_highest == 3 * 65536 + 99
    assert stats.lost == 0 and stats.received == 3 * 65536


def test_reordering_and_duplicates() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [1, 2, 4, 3, 5, 5, 3, 6, 0])
    # 0 arrives after 6: a late packet older than the first one seen, which widens the span.
    snapshot = stats.snapshot()
    assert (snapshot.received, snapshot.expected, snapshot.lost) == (7, 7, 0)
    assert (snapshot.duplicates, snapshot.reordered) == (2, 2)


def test_late_packet_across_the_wrap() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [65534, 65535, 1, 0, 2])
    assert (stats.expected, stats.received, stats.reordered, stats.lost) == (5, 5, 1, 0)


def test_probation_restarts_on_a_lone_first_packet() -> None:
    stats = ReceptionStats(1)
    assert stats.update(500, 0, 0.0)
    assert stats.update(9000, 160, 0.02)  # does not follow 500: 500 is forgotten
    assert stats.update(9001, 320, 0.04)
    assert (stats.expected, stats.received) == (2, 2)


def test_a_stray_jump_is_ignored() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [1, 2, 3])
    assert stats.update(40000, 0, 0.1) is False
    assert stats.update(4, 640, 0.12) is True
    assert (stats.expected, stats.received, stats.lost) == (4, 4, 0)


def test_a_restarted_source_keeps_its_totals() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [1, 2, 3, 5])  # one lost
    assert stats.update(30000, 0, 0.1) is False  # a jump: held back
    assert stats.update(30001, 160, 0.12) is True  # and confirmed: a restart (A.1)
    assert stats.update(30002, 320, 0.14) is True
    assert (stats.expected, stats.received, stats.lost) == (5 + 2, 4 + 2, 1)


def test_a_jump_backwards_beyond_misorder_is_a_stray() -> None:
    stats = ReceptionStats(1)
    _feed(stats, list(range(1000, 1200)))
    assert stats.update(1000 - 200, 0, 5.0) is False
    assert stats.reordered == 0 and stats.received == 200


def test_jitter_against_a_hand_computed_sequence() -> None:
    # 20 ms packets (160 units at 8 kHz) arriving at 0, 20, 45, 60, 80 ms:
    #   D = 0, +40, -40, 0 units;  J = 0, 40/16 = 2.5, 2.5 + (40 - 2.5)/16 = 4.84375,
    #   4.84375 * 15/16 = 4.541015625
    stats = ReceptionStats(1)
    for index, arrival in enumerate([0.000, 0.020, 0.045, 0.060, 0.080]):
        stats.update(index, 1600 + 160 * index, arrival)
    assert stats.jitter == pytest.approx(4.541015625)
    assert stats.max_jitter == pytest.approx(4.84375)
    snapshot = stats.snapshot()
    assert snapshot.jitter_ms == pytest.approx(4.541015625 / 8)
    assert snapshot.max_jitter_ms == pytest.approx(4.84375 / 8)
    assert stats.report_block(0.1).jitter == 4


def test_jitter_across_a_timestamp_wrap() -> None:
    stats = ReceptionStats(1)
    for index in range(50):
        stats.update(index, (2**32 - 800 + 160 * index) & 0xFFFFFFFF, index * 0.02)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_wideband_clock() -> None:
    stats = ReceptionStats(1)
    stats.update(0, 0, 0.0, clock_rate=48000)
    stats.update(1, 960, 0.030, clock_rate=48000)  # 10 ms late: D = 480
    assert stats.jitter == pytest.approx(30.0)
    assert stats.snapshot().jitter_ms == pytest.approx(30.0 / 48)


def test_untimed_packets_count_for_loss_only() -> None:
    stats = ReceptionStats(1)
    stats.update(0, 0, 0.0)
    for index in range(1, 6):  # telephone-event updates: one timestamp, 20 ms apart
        stats.update(index, 160, index * 0.02, timed=False)
    stats.update(6, 960, 0.12)
    assert stats.jitter == 0.0
    assert stats.received == 7


def test_fraction_lost_per_interval() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [s for s in range(100) if s % 4 != 2])  # a quarter lost
    assert stats.report_block(1.0).fraction_lost == 64
    _feed(stats, list(range(100, 200)), start=2.0)
    block = stats.report_block(3.0)
    assert (block.fraction_lost, block.cumulative_lost) == (0, 25)
    assert stats.report_block(4.0).fraction_lost == 0  # nothing new


def test_lsr_and_dlsr() -> None:
    stats = ReceptionStats(1)
    _feed(stats, [1, 2])
    assert (stats.report_block(0.0).lsr, stats.report_block(0.0).dlsr) == (0, 0)
    stats.sender_report_received(0xE8FE6F80_80000000, arrival=10.0)
    block = stats.report_block(10.5)
    assert (block.lsr, block.dlsr) == (0x6F808000, 32768)


def test_empty_stats() -> None:
    stats = ReceptionStats(1)
    assert stats.snapshot() == ReceptionSnapshot(0, 0, 0, 0.0, 0.0, 0.0, 0, 0)
    assert stats.report_block(0.0) == ReportBlock(1)


@given(st.lists(st.integers(0, 65535), max_size=300), st.integers(0, 65535))
def test_statistics_stay_consistent(steps: list[int], start: int) -> None:
    stats = ReceptionStats(1)
    sequence = start
    for index, step in enumerate(steps):
        sequence = (sequence + step % 7 - 2) & 0xFFFF  # forward, duplicate, back a little
        stats.update(sequence, sequence * 160 & 0xFFFFFFFF, index * 0.02)
    snapshot = stats.snapshot()
    assert snapshot.lost >= 0 and snapshot.received <= max(snapshot.expected, 1)
    assert 0.0 <= snapshot.loss_percent <= 100.0
    block = stats.report_block(100.0)
    assert 0 <= block.fraction_lost <= 255
    ReportBlock.parse(bytes(block))


# --- properties --------------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
blocks = st.builds(ReportBlock, u32, st.integers(0, 255), st.integers(-0x800000, 0x7FFFFF), u32, u32, u32, u32)
words = st.binary(max_size=12).map(lambda data: data[: len(data) // 4 * 4])
rtcp_packets = st.one_of(
    st.builds(
        SenderReport,
        u32,
        st.builds(SenderInfo, st.integers(0, 2**64 - 1), u32, u32, u32),
        st.lists(blocks, max_size=3).map(tuple),
        words,
    ),
    st.builds(ReceiverReport, u32, st.lists(blocks, max_size=3).map(tuple), words),
    st.builds(
        SourceDescription,
        st.lists(
            st.builds(
                SdesChunk,
                u32,
                st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=20)), max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Goodbye, st.lists(u32, max_size=4).map(tuple), st.binary(max_size=20)),
    st.builds(RtcpUnknown, st.integers(204, 255), st.integers(0, 31), words),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_compound_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_compound(b"".join(bytes(packet) for packet in packets)) == packets


@given(st.binary(max_size=120))
def test_random_bytes_parse_or_raise_our_error(data: bytes) -> None:
    try:
        parse_compound(data)
    except RtpParseError:
        pass


@given(st.integers(200, 204), st.integers(0, 31), st.binary(max_size=100))
def test_random_bodies_parse_or_raise_our_error(packet_type: int, count: int, body: bytes) -> None:
    body = body[: len(body) // 4 * 4]
    data = bytes((0x80 | count, packet_type)) + (len(body) // 4).to_bytes(2, "big") + body
    try:
        parse_compound(data)
    except RtpParseError:
        pass
