"""Tests of :mod:`cosmo.rtp.session`: reception statistics with telephone-events,
in-band DTMF when no telephone-event was negotiated, and RTCP reports on real
loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from cosmo.rtp.dtmf import DtmfDigit, Rfc4733Sender
from cosmo.rtp.engine import MediaEngine
from cosmo.rtp.g711 import ulaw_encode
from cosmo.rtp.packet import pack_header
from cosmo.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    SenderInfo,
    SenderReport,
    build_report,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
)
from cosmo.rtp.session import RtpSession
from tests.audio import dtmf_tone

PEER_SSRC = 0x0BADCAFE
PEER = ("127.0.0.1", 40000)


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    media = MediaEngine("127.0.0.1", 42000, 42998)
    yield media
    media.close()


def configure(session: RtpSession, *, events: int | None = 101, rtcp_port: int | None = None,
              peer: tuple[str, int] = PEER) -> None:
    session.configure(peer[0], peer[1], payload_type=0, codec="PCMU", event_payload_type=events,
                      rtcp_port=rtcp_port)


def audio(seq: int, ts: int, payload: bytes = b"\xff" * 160, ssrc: int = PEER_SSRC) -> bytes:
    return pack_header(0, seq, ts, ssrc) + payload


async def test_telephone_events_of_the_audio_source_count_as_received(engine: MediaEngine) -> None:
    session = await engine.open_session()
    configure(session)
    digits: list[DtmfDigit] = []
    session.dtmf_sinks.append(digits.append)
    seq = 100
    for index in range(5):
        session.datagram_received(audio(seq, index * 160), PEER)
        seq += 1
    # A digit in the same stream (RFC 4733 §2.1): same SSRC, the next sequence numbers.
    for payload, marker, ts in Rfc4733Sender().packets("7", 5 * 160, duration_ms=60):
        session.datagram_received(pack_header(101, seq, ts, PEER_SSRC, marker) + payload, PEER)
        seq += 1
    event_packets = seq - 105
    # A stray event stream of another source is decoded but stays out of the statistics.
    for payload, marker, ts in Rfc4733Sender().packets("8", 50_000, duration_ms=60):
        session.datagram_received(pack_header(101, 7, ts, 0x12345678, marker) + payload, PEER)
    for index in range(3):
        session.datagram_received(audio(seq, (8 + index) * 160), PEER)
        seq += 1
    snapshot = session.reception.snapshot()
    assert (snapshot.received, snapshot.expected, snapshot.lost) == (8 + event_packets, 8 + event_packets, 0)
    assert session.reception.ssrc == PEER_SSRC
    assert [d.digit for d in digits] == ["7", "8"]


async def test_inband_digits_reach_the_dtmf_sinks_without_telephone_event(engine: MediaEngine) -> None:
    keys = np.concatenate([np.zeros(800), dtmf_tone("4", 0.1, amplitude=0.4), np.zeros(800),
                           dtmf_tone("#", 0.1, amplitude=0.4), np.zeros(800)])
    payload = ulaw_encode(np.round(keys * 32767).astype(np.int16))
    heard: dict[bool, list[DtmfDigit]] = {}
    for negotiated in (False, True):
        session = await engine.open_session()
        configure(session, events=101 if negotiated else None)
        heard[negotiated] = []
        session.dtmf_sinks.append(heard[negotiated].append)
        for index, start in enumerate(range(0, len(payload) - 159, 160)):
            session.datagram_received(audio(index, index * 160, payload[start:start + 160]), PEER)
        session.close()
    assert [(d.digit, d.source) for d in heard[False]] == [("4", "inband"), ("#", "inband")]
    assert heard[True] == []  # with telephone-event negotiated, tones in the audio are just audio


def peer_sockets() -> tuple[socket.socket, socket.socket]:
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtcp.bind(("127.0.0.1", 0))
    rtcp.settimeout(5.0)
    return rtp, rtcp


async def receive(sock: socket.socket) -> bytes:
    data, _ = await asyncio.to_thread(sock.recvfrom, 2048)
    return data


async def test_rtcp_reports_go_to_the_peer_rtcp_port_and_its_sr_is_taken_in(engine: MediaEngine) -> None:
    peer_rtp, peer_rtcp = peer_sockets()
    try:
        session = await engine.open_session()
        configure(session, peer=("127.0.0.1", peer_rtp.getsockname()[1]), rtcp_port=peer_rtcp.getsockname()[1])
        assert session.rtcp_remote == ("127.0.0.1", peer_rtcp.getsockname()[1])
        session.send_audio(b"\xff" * 160)
        peer_rtp.sendto(audio(1, 160), ("127.0.0.1", session.port))
        peer_rtp.sendto(audio(2, 320), ("127.0.0.1", session.port))
        # The peer's SR arrives at our RTCP port.
        their_ntp = ntp_timestamp(time.time())
        peer_rtcp.sendto(build_report(PEER_SSRC, "peer", SenderInfo(their_ntp, 320, 2, 320), []),
                         ("127.0.0.1", session.port + 1))
        for _ in range(200):
            if session.stats.rtcp_in and session.reception.received == 2:
                break
            await asyncio.sleep(0.01)
        assert session.stats.rtcp_in == 1 and session.reception.received == 2
        session.rtcp.next_at = 0.0  # due now
        session.poll_rtcp(time.monotonic())
        packets = parse_compound(await receive(peer_rtcp))
        sr = packets[0]
        assert isinstance(sr, SenderReport) and sr.ssrc == session.ssrc
        assert (sr.sender_info.packet_count, sr.sender_info.octet_count) == (1, 160)
        (block,) = sr.reports
        assert (block.ssrc, block.highest_sequence, block.cumulative_lost) == (PEER_SSRC, 2, 0)
        assert block.lsr == ntp_middle(their_ntp)
        assert session.stats.rtcp_out == 1
        # Not due again at once.
        session.poll_rtcp(time.monotonic())
        assert session.stats.rtcp_out == 1
        # Closing says goodbye.
        session.close()
        packets = parse_compound(await receive(peer_rtcp))
        assert isinstance(packets[0], ReceiverReport) and packets[-1] == Goodbye((session.ssrc,))
    finally:
        peer_rtp.close()
        peer_rtcp.close()


async def test_rtcp_port_defaults_to_rtp_port_plus_one_and_held_addresses_get_none(engine: MediaEngine) -> None:
    session = await engine.open_session()
    configure(session)
    assert session.rtcp_remote == (PEER[0], PEER[1] + 1)
    session.configure("0.0.0.0", PEER[1], payload_type=0, codec="PCMU", event_payload_type=101)
    assert session.rtcp_remote is None and not session.sends
    session.rtcp.next_at = 0.0
    session.poll_rtcp(time.monotonic())
    assert session.stats.rtcp_out == 0


async def test_malformed_rtcp_is_counted_not_raised(engine: MediaEngine) -> None:
    session = await engine.open_session()
    configure(session)
    session.rtcp_received(b"\x80\xc9\x00\x05", PEER, latch=True)
    session.rtcp_received(b"\x40\xc9\x00\x00", PEER, latch=True)
    assert session.stats.rtcp_in == 2
    assert session.stats.bad == {"rtcp-length": 1, "rtcp-version": 1}
