"""An RTP session: one media stream of a call leg (RFC 3550, RFC 4961, RFC 4733).

Theory of operation
-------------------
A :class:`RtpSession` owns an even/odd UDP port pair.  It sends what its
single *source* gives it (a prompt player, a relay from another leg, nothing)
and hands what it receives to its *sinks* (a relay to another leg, a
recorder, a DTMF or speech detector).

* **Symmetric RTP** (RFC 4961): the first valid packet fixes where the peer
  really is (it may sit behind NAT and differ from its SDP); later packets
  from elsewhere are dropped and counted.  A new SDP from the peer
  (re-INVITE) un-latches.
* **Our own stream** keeps one SSRC, a continuous sequence and a timestamp
  that advances 160 per 20 ms, whatever source feeds it, so a change of
  source (prompt → relay → hold music) never looks like a new stream to the
  peer.
* **Bad input** (short, wrong version, unknown payload type, wrong source)
  is dropped and counted per reason in :class:`RtpStats`; nothing raises.
* **DTMF** arrives as RFC 4733 events (de-duplicated by the receiver core),
  or, when the negotiated SDP has no telephone-event, as tones in the audio
  (:class:`~cosmo.rtp.inband.InbandDtmfListener`); both reach ``dtmf_sinks``.
* **Reception statistics** (RFC 3550 A.1/A.8) follow the peer's audio
  source.  Its telephone-events share the audio's SSRC and sequence numbers
  (RFC 4733 §2.1), so they are counted too (else every digit would look like
  lost packets) but leave jitter alone: their timestamp is the event's
  start, not their sampling instant.  Events from another SSRC are a
  separate stream and stay out.
* **RTCP** (RFC 3550 §6): an :class:`~cosmo.rtp.reports.RtcpReporter`
  sends SR/RR reports about every 5 s to the peer's RTCP port (``a=rtcp``,
  else RTP port + 1; answered to where the peer's RTCP comes from) and a BYE
  at close; the peer's SRs and reports feed LSR/DLSR and the round trip.
* **Liveness**: ``last_received`` lets the engine end calls whose RTP
  stopped (not while the peer is on hold).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .dtmf import DtmfDigit, Rfc4733Receiver
from .errors import RtpParseError, RtpUsageError
from .inband import InbandDtmfListener
from .packet import HEADER, pack_header, peek
from .reports import RtcpReporter, SenderCounts
from .rtcp import ReceptionStats

log = logging.getLogger(__name__)

# The per-packet paths below run 50 times a second per stream: module-level
# aliases save an attribute lookup each, and the header is packed straight from
# the struct (payload types are checked once, in configure()).
_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from
_monotonic = time.monotonic

AudioSink = Callable[[bytes, int, int], None]  # (payload, payload type, rtp timestamp)
DtmfSink = Callable[[DtmfDigit], None]


@dataclass(slots=True)
class RtpStats:
    """Counters of one session, for the call's record and for tests."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    payload_bytes_out: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    round_trip_ms: float | None = None
    bad: dict[str, int] = field(default_factory=dict)  # reason -> count
    unknown_payload_type: int = 0
    wrong_source: int = 0
    dtmf_digits: int = 0

    def count_bad(self, reason: str) -> None:
        """Count one dropped packet."""
        self.bad[reason] = self.bad.get(reason, 0) + 1

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rtcp_in": self.rtcp_in,
            "rtcp_out": self.rtcp_out,
            "round_trip_ms": self.round_trip_ms,
            "bad": dict(self.bad),
            "unknown_payload_type": self.unknown_payload_type,
            "wrong_source": self.wrong_source,
            "dtmf_digits": self.dtmf_digits,
        }


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.session.rtcp_received(data, addr, latch=True)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        log.debug("RTCP %s: %s", self.session.port + 1, exc)


class RtpSession(asyncio.DatagramProtocol):
    """One RTP endpoint; see the module docstring."""

    def __init__(self, host: str, port: int, rtp_sock: socket.socket, rtcp_sock: socket.socket,
                 *, on_close: Callable[[RtpSession], None] | None = None) -> None:
        self.host = host
        self.port = port
        self._rtp_sock = rtp_sock
        self._rtcp_sock = rtcp_sock
        self._on_close = on_close
        self.transport: asyncio.DatagramTransport | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self.stats = RtpStats()
        self.reception = ReceptionStats()
        # Negotiated parameters (set by configure()).
        self.remote: tuple[str, int] | None = None
        self.payload_type = 0  # what we send and expect for audio
        self.codec = "PCMU"
        self.event_payload_type: int | None = None
        self.rtcp_remote: tuple[str, int] | None = None
        self._rtcp_latched = False
        self.sends = True  # whether the negotiated direction lets us send
        self.on_hold = False  # the peer asked for no media (sendonly/inactive)
        self._latched = False
        # Our outgoing stream.
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._marker_next = True
        # Receiving.
        self.remote_ssrc: int | None = None
        self._audio_ssrc: int | None = None  # the source the reception statistics follow
        self.last_received = time.monotonic()
        self.audio_sinks: list[AudioSink] = []
        self.dtmf_sinks: list[DtmfSink] = []
        self._dtmf = Rfc4733Receiver()
        self._inband: InbandDtmfListener | None = None
        self.rtcp = RtcpReporter(self.ssrc, f"cosmo-{self.ssrc:08x}@{host}", self.reception)
        self.closed = False

    # ---- lifecycle -------------------------------------------------------
    async def open(self) -> None:
        """Start receiving on the bound sockets."""
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=self._rtp_sock)
        self._rtcp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _RtcpProtocol(self), sock=self._rtcp_sock
        )

    def close(self) -> None:
        """Send an RTCP BYE, stop and free the ports (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self.stats.packets_out or self.stats.packets_in:
            self._send_rtcp(self.rtcp.goodbye())
        if self.transport is not None:
            self.transport.close()
        else:
            self._rtp_sock.close()
        if self._rtcp_transport is not None:
            self._rtcp_transport.close()
        else:
            self._rtcp_sock.close()
        self.audio_sinks.clear()
        self.dtmf_sinks.clear()
        if self._on_close is not None:
            self._on_close(self)

    def configure(self, remote_host: str, remote_port: int, *, payload_type: int, codec: str,
                  event_payload_type: int | None, sends: bool = True, receives: bool = True,
                  rtcp_port: int | None = None) -> None:
        """Apply a negotiated SDP (initial, or a re-INVITE's).

        ``rtcp_port`` is the peer's RTCP port (its ``a=rtcp``); by default
        the RTP port + 1 (RFC 3550 §11).  A held address (``0.0.0.0``, port
        0) gets no RTCP.
        """
        for pt in (payload_type, event_payload_type):
            if pt is not None and not 0 <= pt <= 127:
                raise RtpUsageError(f"RTP payload type {pt} is not in 0..127")
        new_remote = (remote_host, remote_port)
        moved = new_remote != self.remote
        if moved:
            self.remote = new_remote
            self._latched = False  # the peer moved: latch again on its next packet
            self._rtcp_latched = False
        reachable = remote_port != 0 and remote_host not in ("0.0.0.0", "::")
        new_rtcp = (remote_host, rtcp_port if rtcp_port is not None else remote_port + 1) if reachable else None
        if new_rtcp is None:
            self.rtcp_remote = None
        elif not self._rtcp_latched or self.rtcp_remote is None:
            self.rtcp_remote = new_rtcp
        if codec != self.codec:
            self._marker_next = True
            if self._inband is not None:
                self._inband.reset()
        if event_payload_type is None:
            # No telephone-event negotiated: listen for the keys in the audio.
            if self._inband is None:
                self._inband = InbandDtmfListener()
        else:
            self._inband = None
        self.payload_type = payload_type
        self.codec = codec
        self.event_payload_type = event_payload_type
        self.sends = sends and reachable
        # RFC 3264 §8.4: a peer that will not send to us is on hold; RTP silence is expected.
        self.on_hold = not receives
        self.last_received = time.monotonic()
        self.rtcp.start(self.last_received)

    # ---- sending ---------------------------------------------------------
    def send_audio(self, payload: bytes, samples: int = 160) -> None:
        """Send one audio frame of our stream (advances sequence and timestamp)."""
        self._send(self.payload_type, payload, samples)

    def skip(self, samples: int = 160) -> None:
        """Advance the timestamp without sending (silence suppression, hold)."""
        self._ts = (self._ts + samples) & 0xFFFFFFFF
        self._marker_next = True

    def send_event(self, payload: bytes, *, marker: bool, timestamp: int | None = None) -> None:
        """Send one RFC 4733 telephone-event packet (timestamp fixed per event)."""
        if self.event_payload_type is None or not self.sends or self.transport is None or self.remote is None:
            return
        ts = self._ts if timestamp is None else timestamp
        data = pack_header(self.event_payload_type, self._seq, ts, self.ssrc, marker) + payload
        self._seq = (self._seq + 1) & 0xFFFF
        self.transport.sendto(data, self.remote)
        self.stats.packets_out += 1
        self.stats.bytes_out += len(data)
        self.stats.payload_bytes_out += len(payload)

    @property
    def timestamp(self) -> int:
        """The RTP timestamp the next frame will carry."""
        return self._ts

    def _send(self, payload_type: int, payload: bytes, samples: int) -> None:
        remote = self.remote
        transport = self.transport
        ts = self._ts
        if self.sends and transport is not None and remote is not None:
            seq = self._seq
            if self._marker_next:
                self._marker_next = False
                payload_type |= 0x80
            data = _pack_header(0x80, payload_type, seq, ts, self.ssrc) + payload
            self._seq = (seq + 1) & 0xFFFF
            transport.sendto(data, remote)
            stats = self.stats
            stats.packets_out += 1
            stats.bytes_out += len(data)
            stats.payload_bytes_out += len(payload)
        self._ts = (ts + samples) & 0xFFFFFFFF

    # ---- receiving ---------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        stats = self.stats
        if len(data) < 12:
            stats.count_bad("malformed")
            return
        first, second, seq, ts, ssrc = _unpack_header(data)
        pt = second & 0x7F
        if 64 <= pt <= 95:  # RFC 5761 muxed RTCP
            self.rtcp_received(data, addr, latch=False)
            return
        if first == 0x80:  # the common case: no CSRC, no extension, no padding
            header_len = 12
        else:
            header = peek(data)
            if header is None:
                stats.count_bad("malformed")
                return
            header_len = header[5]
        remote = self.remote
        if not self._latched:
            # RFC 4961 symmetric RTP: answer to where the peer really is.
            self.remote = (addr[0], addr[1])
            self._latched = True
        elif remote is None or addr[1] != remote[1] or addr[0] != remote[0]:
            stats.wrong_source += 1
            return
        stats.packets_in += 1
        stats.bytes_in += len(data)
        now = self.last_received = _monotonic()
        self.remote_ssrc = ssrc
        if pt == self.payload_type:
            if ssrc != self._audio_ssrc:
                self._audio_ssrc = self.reception.ssrc = ssrc
            self.reception.update(seq, ts, now)
            payload = data[header_len:]
            for sink in self.audio_sinks:
                sink(payload, pt, ts)
            if self._inband is not None:
                for digit in self._inband.feed(payload, self.codec):
                    self._deliver_digit(digit)
        elif pt == self.event_payload_type:
            if ssrc == self._audio_ssrc:
                self.reception.update(seq, ts, now, timed=False)
            for digit in self._dtmf.feed(data[header_len:], ts, seq, now):
                self._deliver_digit(digit)
        elif pt == 13 or pt == 19:  # comfort noise (RFC 3389): silence, not an error
            if ssrc == self._audio_ssrc:
                self.reception.update(seq, ts, now)
        else:
            stats.unknown_payload_type += 1

    # ---- RTCP -------------------------------------------------------------
    def poll_rtcp(self, now: float) -> None:
        """Send an RTCP report if one is due (called from the clock, ``now`` monotonic)."""
        if self.closed or self.rtcp_remote is None or not self.rtcp.due(now):
            return
        sent = SenderCounts(self.stats.packets_out, self.stats.payload_bytes_out, self._ts)
        self._send_rtcp(self.rtcp.report(now, time.time(), sent))

    def rtcp_received(self, data: bytes, addr: tuple[str, int], *, latch: bool) -> None:
        """One RTCP datagram from the peer (on the RTCP port, or muxed on the RTP port)."""
        stats = self.stats
        stats.rtcp_in += 1
        if latch and not self._rtcp_latched and self.rtcp_remote is not None:
            # RFC 4961 symmetric RTCP: report to where the peer's reports come from.
            self.rtcp_remote = (addr[0], addr[1])
            self._rtcp_latched = True
        try:
            self.rtcp.received(data, time.monotonic(), time.time())
        except RtpParseError as exc:
            stats.count_bad(f"rtcp-{exc.reason}")
            return
        if self.rtcp.round_trip is not None:
            stats.round_trip_ms = round(self.rtcp.round_trip * 1000, 1)

    def _send_rtcp(self, data: bytes) -> None:
        transport = self._rtcp_transport
        if transport is None or self.rtcp_remote is None or transport.is_closing():
            return
        transport.sendto(data, self.rtcp_remote)
        self.stats.rtcp_out += 1

    def poll_dtmf(self, now: float) -> None:
        """Report a DTMF event whose end packets were lost (called from the clock)."""
        for digit in self._dtmf.poll(now):
            self._deliver_digit(digit)

    def _deliver_digit(self, digit: DtmfDigit) -> None:
        self.stats.dtmf_digits += 1
        for sink in list(self.dtmf_sinks):
            try:
                sink(digit)
            except Exception:
                log.exception("DTMF sink failed")

    def inject_digit(self, digit: DtmfDigit) -> None:
        """A digit that arrived another way (SIP INFO, in-band detection)."""
        self._deliver_digit(digit)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        log.debug("RTP %s: %s", self.port, exc)
