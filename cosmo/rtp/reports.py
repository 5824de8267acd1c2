"""RTCP reporting of one RTP session (RFC 3550 §6), sans-I/O.

Theory of operation
-------------------
An :class:`RtcpReporter` decides *when* a session reports and *what* the
report says; the session only moves the bytes.  Every call takes the
caller's clocks: ``now`` (monotonic seconds, for scheduling and the
delay since the peer's last SR) and ``wall`` (Unix time, for NTP
timestamps).

* **When** (RFC 3550 §6.2, two-party case): every ``interval`` seconds
  (5 s), each time multiplied by a random factor in [0.5, 1.5] so that
  calls started together do not report together; the first report comes
  after half an interval (§6.2: the initial minimum is halved).
* **What** (§6.4): an SR when we sent RTP since the last report (sender
  information: NTP and RTP time of the same instant, packet and octet
  counts), else an RR; one report block about the peer's stream once it
  has been heard (loss, extended highest sequence, jitter, LSR/DLSR from
  :class:`~cosmo.rtp.rtcp.ReceptionStats`); then SDES with our CNAME
  (§6.1: every compound packet carries it).
* **Heard** (:meth:`received`): the peer's SR gives the LSR/DLSR of our
  next report; a report block about our stream gives the round-trip time
  (§6.4.1).  Malformed RTCP raises :class:`~cosmo.rtp.errors.RtpParseError`
  for the session to count.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .rtcp import (
    ReceiverReport,
    ReceptionStats,
    RtcpPacket,
    SenderInfo,
    SenderReport,
    build_bye,
    build_report,
    ntp_timestamp,
    parse_compound,
    round_trip_time,
)

__all__ = ["RTCP_INTERVAL", "RtcpReporter", "SenderCounts"]

RTCP_INTERVAL = 5.0
"""RFC 3550 §6.2: the recommended minimum between reports, seconds."""


@dataclass(frozen=True, slots=True)
class SenderCounts:
    """What our stream sent so far: RTP packets, payload octets, and the next RTP timestamp."""

    packets: int
    octets: int
    rtp_timestamp: int


class RtcpReporter:
    """See the module docstring.

    ``reception`` is the statistics of the peer's stream (the session sets
    its ``ssrc`` once the peer was heard); ``rng`` returns floats in [0, 1)
    and may be replaced to make the schedule deterministic.
    """

    def __init__(
        self,
        ssrc: int,
        cname: str,
        reception: ReceptionStats,
        *,
        interval: float = RTCP_INTERVAL,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.ssrc = ssrc
        self.cname = cname
        self.reception = reception
        self.interval = interval
        self.rng = rng
        self.next_at: float | None = None
        self.reports_sent = 0
        self.round_trip: float | None = None  # seconds, from the peer's last report about us
        self._packets_at_last_report = 0

    def start(self, now: float) -> None:
        """Schedule the first report (idempotent)."""
        if self.next_at is None:
            self.next_at = now + self._jittered(self.interval / 2)

    def due(self, now: float) -> bool:
        """Whether a report should go out now."""
        return self.next_at is not None and now >= self.next_at

    def report(self, now: float, wall: float, sent: SenderCounts) -> bytes:
        """The compound report to send now; schedules the next one."""
        reception = self.reception
        blocks = []
        if reception.received:
            blocks.append(reception.report_block(now))
        sender: SenderInfo | None = None
        if sent.packets > self._packets_at_last_report:
            sender = SenderInfo(ntp_timestamp(wall), sent.rtp_timestamp, sent.packets & 0xFFFFFFFF,
                                sent.octets & 0xFFFFFFFF)
        self._packets_at_last_report = sent.packets
        self.next_at = now + self._jittered(self.interval)
        self.reports_sent += 1
        return build_report(self.ssrc, self.cname, sender, blocks)

    def goodbye(self, reason: bytes = b"") -> bytes:
        """The compound BYE to send when the stream ends (RFC 3550 §6.6)."""
        return build_bye(self.ssrc, self.cname, reason)

    def received(self, data: bytes, now: float, wall: float) -> list[RtcpPacket]:
        """Take in one RTCP datagram from the peer; returns its packets.

        Raises :class:`~cosmo.rtp.errors.RtpParseError` when it is malformed.
        """
        packets = parse_compound(data)
        arrival = ntp_timestamp(wall)
        for packet in packets:
            if isinstance(packet, SenderReport):
                self.reception.sender_report_received(packet.sender_info.ntp_timestamp, now)
                blocks = packet.reports
            elif isinstance(packet, ReceiverReport):
                blocks = packet.reports
            else:
                continue
            for block in blocks:
                if block.ssrc == self.ssrc:
                    rtt = round_trip_time(block, arrival)
                    if rtt is not None:
                        self.round_trip = rtt
        return packets

    def _jittered(self, interval: float) -> float:
        return interval * (0.5 + self.rng())
