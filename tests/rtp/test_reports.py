"""Tests of :mod:`cosmo.rtp.reports`: when an RTP session reports, and what its reports say."""

from __future__ import annotations

import pytest

from cosmo.rtp.errors import RtpParseError
from cosmo.rtp.reports import RtcpReporter, SenderCounts
from cosmo.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    ReceptionStats,
    ReportBlock,
    SenderInfo,
    SenderReport,
    SourceDescription,
    build_report,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
)

OURS = 0x11111111
THEIRS = 0x22222222
WALL = 1_700_000_000.0


def reporter(rng: float = 0.5) -> RtcpReporter:
    return RtcpReporter(OURS, "cosmo@127.0.0.1", ReceptionStats(), rng=lambda: rng)


def test_first_report_after_half_an_interval_then_every_interval_jittered() -> None:
    r = reporter(rng=0.5)  # factor 1.0
    assert not r.due(100.0)  # not started
    r.start(100.0)
    r.start(101.0)  # idempotent
    assert not r.due(102.4) and r.due(102.5)
    r.report(102.5, WALL, SenderCounts(0, 0, 0))
    assert not r.due(107.4) and r.due(107.5)
    r.rng = lambda: 0.0  # factor 0.5
    r.report(107.5, WALL, SenderCounts(0, 0, 0))
    assert r.next_at == 110.0
    r.rng = lambda: 0.999  # factor just under 1.5
    r.report(110.0, WALL, SenderCounts(0, 0, 0))
    assert r.next_at == pytest.approx(117.495)


def test_receiver_report_before_anything_was_heard_or_sent() -> None:
    r = reporter()
    packets = parse_compound(r.report(1.0, WALL, SenderCounts(0, 0, 1234)))
    assert packets == [
        ReceiverReport(OURS),
        SourceDescription(packets[1].chunks),  # type: ignore[union-attr]
    ]
    assert packets[1].chunks[0].cname == "cosmo@127.0.0.1"  # type: ignore[union-attr]


def test_sender_report_while_sending_with_a_block_about_the_peer() -> None:
    r = reporter()
    r.reception.ssrc = THEIRS
    for seq in (10, 11, 13):  # 12 lost
        r.reception.update(seq, seq * 160, seq * 0.02)
    packets = parse_compound(r.report(5.0, WALL, SenderCounts(250, 40000, 99999)))
    sr = packets[0]
    assert isinstance(sr, SenderReport)
    assert sr.ssrc == OURS
    assert sr.sender_info == SenderInfo(ntp_timestamp(WALL), 99999, 250, 40000)
    (block,) = sr.reports
    assert (block.ssrc, block.cumulative_lost, block.highest_sequence, block.fraction_lost) == (THEIRS, 1, 13, 64)
    # Nothing sent since: an RR.
    assert isinstance(parse_compound(r.report(10.0, WALL, SenderCounts(250, 40000, 99999)))[0], ReceiverReport)


def test_peer_sender_report_gives_lsr_and_dlsr() -> None:
    r = reporter()
    r.reception.ssrc = THEIRS
    r.reception.update(1, 160, 0.0)
    their_ntp = ntp_timestamp(WALL - 3)
    r.received(build_report(THEIRS, "peer", SenderInfo(their_ntp, 160, 1, 160), []), 20.0, WALL)
    (block,) = parse_compound(r.report(21.5, WALL, SenderCounts(0, 0, 0)))[0].reports  # type: ignore[union-attr]
    assert block.lsr == ntp_middle(their_ntp)
    assert block.dlsr == int(1.5 * 65536)


def test_round_trip_from_the_peer_report_about_our_stream() -> None:
    r = reporter()
    sent_at = WALL - 10
    # The peer got our SR at sent_at + 0.05, held it 0.5 s, its report reaches us 0.05 s later.
    block = ReportBlock(OURS, lsr=ntp_middle(ntp_timestamp(sent_at)), dlsr=int(0.5 * 65536))
    other = ReportBlock(0x33333333, lsr=1, dlsr=1)
    r.received(bytes(ReceiverReport(THEIRS, (other, block))), 0.0, sent_at + 0.6)
    assert r.round_trip == pytest.approx(0.1, abs=0.001)


def test_goodbye_and_malformed_input() -> None:
    r = reporter()
    packets = parse_compound(r.goodbye(b"hangup"))
    assert packets[-1] == Goodbye((OURS,), b"hangup")
    with pytest.raises(RtpParseError):
        r.received(b"\x80\xc9\x00\x05", 0.0, WALL)
