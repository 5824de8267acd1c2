#!/usr/bin/env python3
"""The load generator of bench/media_calls.py: SIP callers (and, for bridges, the callee) with RTP.

One process, one event loop (uvloop when installed), run by media_calls.py on
the other CPU than Cosmo.  It places ``--calls`` calls to Cosmo over UDP:

* ``prompt``: to a configured number; Cosmo answers and plays the welcome
  prompt, then loops music on hold.  The caller sends 20 ms audio too (as a
  phone does; without it Cosmo's RTP timeout would end the call).
* ``bridge``: to a number that Cosmo routes out through a trunk whose peer is
  this process's own UAS; Cosmo anchors the media and relays it between the
  two legs.  Both legs send 20 ms audio.

Every leg sends from the port it receives on (symmetric RTP, RFC 4961).  The
streams' send instants are spread over 20 one-millisecond slots, as phones'
clocks are, so Cosmo is not handed one burst per 20 ms.  Every payload starts
with the sending leg's number and a frame counter, which lets the receiver
tell Cosmo's relay delay.

What Cosmo sends is timed by the kernel (``SO_TIMESTAMPNS``), so this
process's own scheduling does not show as Cosmo's jitter.  During the
measuring window, per received packet: the deviation of its inter-arrival
time from 20 ms (consecutive sequence numbers only), sequence gaps, and in
bridges the relay delay; per stream: frames missing from its time span (the
clock skipped ticks: the sequence stays continuous, the audio has a hole).
The generator's own send lateness is reported so a reader can tell whether
the load was clean.

Protocol with the parent, one JSON object per line on stdout:
``{"event": "established", ...}`` once every call is up,
``{"event": "window", "phase": "start"}`` and ``... "end"}`` around the
measuring window, and ``{"event": "result", ...}`` after the hang-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import time
from array import array
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
FRAME = 0.020  # seconds of audio per packet (ptime 20)
SAMPLES = 160  # PCMU samples per frame at 8 kHz
SLOTS = 20  # send phases, one per millisecond of the frame
T1 = 0.5  # RFC 3261 §17.1.1.1
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_RTP = struct.Struct("!BBHII")
_MARK = struct.Struct("!II")  # leg number, frame counter: the first 8 payload bytes
_TIMESPEC = struct.Struct("qq")
_SILENCE = b"\xff" * (SAMPLES - _MARK.size)  # µ-law silence after the mark
_COMPACT = {"i": "call-id", "v": "via", "f": "from", "t": "to", "m": "contact", "l": "content-length",
            "c": "content-type"}


class PeerError(Exception):
    """The generator cannot go on (a socket, a port, Cosmo refusing calls)."""


# --------------------------------------------------------------------------- SIP text


@dataclass
class SipMessage:
    """A received SIP message, as much as the generator needs."""

    first: str
    headers: dict[str, list[str]]
    body: bytes

    @property
    def is_response(self) -> bool:
        return self.first.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first.split(" ", 2)[1])

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0]

    def get(self, name: str) -> str:
        values = self.headers.get(name)
        return values[0] if values else ""

    @property
    def cseq_method(self) -> str:
        return self.get("cseq").split()[-1].upper()


def parse_sip(data: bytes) -> SipMessage | None:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    if not lines or not lines[0]:
        return None
    return SipMessage(lines[0], headers, body)


def sdp_address(body: bytes) -> tuple[str, int] | None:
    """The audio address of an SDP body: (c= host, m=audio port)."""
    host = None
    port = None
    for line in body.decode("ascii", "replace").splitlines():
        if line.startswith("c=IN IP4 "):
            host = line[9:].strip()
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    return (host, port) if host is not None and port is not None else None


def sdp_body(session_id: int, port: int) -> bytes:
    return (
        f"v=0\r\no=- {session_id} 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    ).encode()


def sip_text(first: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [first, *(f"{name}: {value}" for name, value in headers)]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def contact_uri(value: str) -> str:
    start, end = value.find("<"), value.find(">")
    return value[start + 1:end] if 0 <= start < end else value.split(";")[0].strip()


def uri_address(uri: str) -> tuple[str, int]:
    hostport = uri.split("@", 1)[-1].split(";", 1)[0]
    host, _, port = hostport.partition(":")
    return host, int(port or 5060)


def new_branch() -> str:
    return f"z9hG4bK{random.getrandbits(64):016x}"


# --------------------------------------------------------------------------- RTP legs


@dataclass(eq=False)
class Leg:
    """One RTP stream of the generator: a socket, what it sends, what it received."""

    number: int
    sock: socket.socket
    rtcp_sock: socket.socket
    port: int
    remote: tuple[str, int] | None = None
    sending: bool = False
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = field(default_factory=lambda: random.getrandbits(16))
    ts: int = field(default_factory=lambda: random.getrandbits(32))
    counter: int = 0
    sent_at: list[float] = field(default_factory=lambda: [0.0] * 256)  # by counter & 0xFF
    # Reception, over the measuring window.
    last_seq: int | None = None
    last_time: float = 0.0
    first_time: float = 0.0
    received: int = 0
    lost: int = 0
    reordered: int = 0
    received_total: int = 0
    last_delay: float | None = None  # relay delay of the last relayed payload
    last_mark: int | None = None  # the far leg's frame counter in the last relayed payload
    relay_lost: int = 0  # far-leg frames that never came through Cosmo


class Rtp:
    """Every leg's sending (slotted over 20 ms) and receiving (kernel-timestamped)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port_base: int) -> None:
        self.loop = loop
        self.legs: list[Leg] = []
        self.slots: list[list[Leg]] = [[] for _ in range(SLOTS)]
        self.next_port = port_base
        self.measuring = False
        self.deviations = array("d")  # |inter-arrival - 20 ms|, seconds
        self.delays = array("d")  # relay delay, seconds (bridges)
        self.added = array("d")  # change of relay delay between consecutive frames (bridges)
        self.send_lateness = array("d")
        self.send_errors = 0
        self.holes: list[tuple[float, int, float]] = []  # (s into the window, leg, ms): late frames
        self.window_start = 0.0
        self._start = 0.0
        self._k = 0
        self._handle: asyncio.TimerHandle | None = None
        self._by_number: dict[int, Leg] = {}

    def open_leg(self) -> Leg:
        for _ in range(2000):
            port = self.next_port
            self.next_port += 2
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp.bind((LOOPBACK, port))
                rtcp.bind((LOOPBACK, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            leg = Leg(len(self.legs), rtp, rtcp, port)
            self.legs.append(leg)
            self._by_number[leg.number] = leg
            self.slots[leg.number % SLOTS].append(leg)
            return leg
        raise PeerError("no free RTP port pair for the generator")

    def start(self) -> None:
        self._start = self.loop.time()
        self._k = 0
        self._handle = self.loop.call_at(self._start + FRAME / SLOTS, self._tick)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        for leg in self.legs:
            leg.sock.close()
            leg.rtcp_sock.close()

    def reset_reception(self) -> None:
        self.deviations = array("d")
        self.delays = array("d")
        self.added = array("d")
        self.send_lateness = array("d")
        self.holes = []
        self.window_start = time.time()
        for leg in self.legs:
            leg.last_seq = None
            leg.received = leg.lost = leg.reordered = leg.relay_lost = 0
            leg.last_mark = leg.last_delay = None

    def _tick(self) -> None:
        loop = self.loop
        self._k += 1
        deadline = self._start + self._k * FRAME / SLOTS
        now = loop.time()
        if self.measuring:
            self.send_lateness.append(now - deadline)
        wall = time.time()
        pack = _RTP.pack
        mark = _MARK.pack
        slot = self.slots[self._k % SLOTS]
        for leg in slot:
            if not leg.sending or leg.remote is None:
                continue
            counter = leg.counter
            data = pack(0x80, 0, leg.seq, leg.ts, leg.ssrc) + mark(leg.number, counter) + _SILENCE
            leg.sent_at[counter & 0xFF] = wall
            leg.counter = counter + 1
            leg.seq = (leg.seq + 1) & 0xFFFF
            leg.ts = (leg.ts + SAMPLES) & 0xFFFFFFFF
            try:
                leg.sock.sendto(data, leg.remote)
            except OSError:
                self.send_errors += 1
        # Reading is spread over the slots too: a twentieth of the sockets per tick, after
        # the sends, so reading never holds a send back.  The kernel timestamps each
        # packet on arrival; reading it up to 20 ms later changes nothing measured.
        for leg in slot:
            self._drain(leg)
        # Late ticks run at once and stay on the grid (the same rule as Cosmo's clock).
        self._handle = loop.call_at(max(self._start + (self._k + 1) * FRAME / SLOTS, now), self._tick)

    def _drain(self, leg: Leg) -> None:
        sock = leg.sock
        unpack_ts = _TIMESPEC.unpack
        while True:
            try:
                data, ancillary, _flags, _addr = sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(data) < 12 or 64 <= (data[1] & 0x7F) <= 95:
                continue  # not RTP (muxed RTCP)
            leg.received_total += 1
            if not self.measuring:
                continue
            stamp = 0.0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = unpack_ts(value)
                    stamp = seconds + nanoseconds * 1e-9
            if data[1] & 0x7F != 0:
                continue  # telephone-event or comfort noise: not a 20 ms audio frame
            seq = (data[2] << 8) | data[3]
            last = leg.last_seq
            if last is None:
                leg.first_time = stamp
            else:
                gap = ((seq - last + 0x8000) & 0xFFFF) - 0x8000
                if gap <= 0:
                    leg.reordered += 1
                    continue
                if gap == 1:
                    interval = stamp - leg.last_time
                    self.deviations.append(abs(interval - FRAME))
                    if interval > 1.5 * FRAME and len(self.holes) < 500:
                        self.holes.append((round(stamp - self.window_start, 3), leg.number, round(interval * 1000, 1)))
                else:
                    leg.lost += gap - 1
            leg.last_seq = seq
            leg.last_time = stamp
            leg.received += 1
            if len(data) >= 20:
                number, counter = _MARK.unpack_from(data, 12)
                source = self._by_number.get(number)
                if source is not None and source is not leg and counter < source.counter:
                    delay = stamp - source.sent_at[counter & 0xFF]
                    self.delays.append(delay)
                    last_mark = leg.last_mark
                    if last_mark is not None:
                        if counter > last_mark + 1:
                            leg.relay_lost += counter - last_mark - 1
                        elif counter == last_mark + 1 and leg.last_delay is not None:
                            # What Cosmo added to the sender's own timing: the change of relay delay.
                            self.added.append(abs(delay - leg.last_delay))
                    leg.last_mark = counter
                    leg.last_delay = delay


# --------------------------------------------------------------------------- SIP dialogs


@dataclass(eq=False)
class Dialog:
    """One SIP dialog of the generator (a caller's call, or a call its UAS answered)."""

    call_id: str
    leg: Leg
    local_tag: str
    from_value: str = ""
    to_value: str = ""
    remote_target: str = ""
    cseq: int = 1
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    failed: int | None = None
    answer: bytes = b""  # our 200 to INVITE (UAS), for retransmitted INVITEs
    partner: Dialog | None = None


class SipPeer(asyncio.DatagramProtocol):
    """A UDP SIP endpoint: the callers' (UAC) or the callee's (UAS)."""

    def __init__(self, generator: Generator, role: str) -> None:
        self.generator = generator
        self.role = role
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.dialogs: dict[str, Dialog] = {}
        self.waiting: dict[tuple[str, str], asyncio.Future[SipMessage]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    def via(self, branch: str) -> str:
        return f"SIP/2.0/UDP {LOOPBACK}:{self.port};branch={branch};rport"

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_sip(data)
        if message is None:
            return
        if message.is_response:
            key = (message.get("call-id"), message.cseq_method)
            waiter = self.waiting.get(key)
            if message.status >= 200 and waiter is not None and not waiter.done():
                waiter.set_result(message)
            elif message.status >= 200 and message.cseq_method == "INVITE" and waiter is None:
                self._ack(message, addr)  # a retransmitted 2xx: its ACK was lost
            return
        self.generator.request(self, message, addr)

    def _ack(self, response: SipMessage, addr: tuple[str, int]) -> None:
        dialog = self.dialogs.get(response.get("call-id"))
        if dialog is None or not 200 <= response.status < 300:
            return
        target = dialog.remote_target or contact_uri(response.get("contact"))
        self.send(sip_text(f"ACK {target} SIP/2.0", [
            ("Via", self.via(new_branch())), ("Max-Forwards", "70"), ("From", dialog.from_value),
            ("To", response.get("to")), ("Call-ID", dialog.call_id), ("CSeq", f"{response.get('cseq').split()[0]} ACK"),
        ]), uri_address(target))

    async def transaction(self, call_id: str, method: str, data: bytes, addr: tuple[str, int],
                          timeout: float = 64 * T1) -> SipMessage | None:
        """Send a request and retransmit it (RFC 3261 §17.1) until a final response."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[SipMessage] = loop.create_future()
        self.waiting[(call_id, method)] = waiter
        interval = T1
        deadline = loop.time() + timeout
        try:
            while True:
                self.send(data, addr)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    return await asyncio.wait_for(asyncio.shield(waiter), min(interval, remaining))
                except TimeoutError:
                    interval = min(interval * 2, 4.0)
        finally:
            self.waiting.pop((call_id, method), None)


class Generator:
    """Places the calls, answers Cosmo's outbound legs, measures the media."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.cosmo = (LOOPBACK, args.cosmo_port)
        self.rtp = Rtp(self.loop, args.rtp_base)
        self.uac: SipPeer | None = None
        self.uas: SipPeer | None = None
        self.callers: list[Dialog] = []
        self.unexpected_byes = 0
        self.setup_failures: dict[str, int] = {}

    async def open(self) -> None:
        self.uac = await self._endpoint("uac", self.args.uac_port)
        if self.args.mode == "bridge":
            self.uas = await self._endpoint("uas", self.args.uas_port)

    async def _endpoint(self, role: str, port: int) -> SipPeer:
        transport, peer = await self.loop.create_datagram_endpoint(
            lambda: SipPeer(self, role), local_addr=(LOOPBACK, port))
        peer.connection_made(transport)  # uvloop calls it only on the next iteration
        return peer

    # ---- requests from Cosmo ---------------------------------------------------
    def request(self, peer: SipPeer, message: SipMessage, addr: tuple[str, int]) -> None:
        method = message.method
        call_id = message.get("call-id")
        dialog = peer.dialogs.get(call_id)
        if method == "ACK":
            if dialog is not None:
                dialog.confirmed.set()
                dialog.leg.sending = True
            return
        if method == "INVITE" and peer.role == "uas":
            if dialog is None:
                dialog = self._answer(peer, message)
            elif dialog.answer and not dialog.confirmed.is_set():
                peer.send(dialog.answer, addr)
                return
            else:
                dialog.answer = b""  # a re-INVITE: answered below with our SDP again
            if not dialog.answer:
                dialog.answer = self._response(message, 200, dialog, sdp_body(dialog.leg.port, dialog.leg.port))
            self._reply_to(peer, message, dialog.answer, addr)
            return
        if method == "BYE" and dialog is not None:
            if peer.role == "uac" and not dialog.ended.is_set():
                self.unexpected_byes += 1  # Cosmo hung up a caller (RTP timeout, shutdown)
            dialog.leg.sending = False
            dialog.ended.set()
        if method == "CANCEL" and dialog is not None:
            dialog.leg.sending = False
            dialog.ended.set()
        self._reply_to(peer, message, self._response(message, 200, dialog, b""), addr)

    def _reply_to(self, peer: SipPeer, request: SipMessage, data: bytes, addr: tuple[str, int]) -> None:
        peer.send(data, addr)  # RFC 3581: answer where the request came from

    def _answer(self, peer: SipPeer, invite: SipMessage) -> Dialog:
        leg = self.rtp.open_leg()
        dialog = Dialog(invite.get("call-id"), leg, f"{random.getrandbits(48):012x}")
        dialog.from_value = invite.get("to")
        dialog.to_value = invite.get("from")
        dialog.remote_target = contact_uri(invite.get("contact"))
        leg.remote = sdp_address(invite.body)
        peer.dialogs[dialog.call_id] = dialog
        return dialog

    def _response(self, request: SipMessage, status: int, dialog: Dialog | None, body: bytes) -> bytes:
        to = request.get("to")
        if dialog is not None and ";tag=" not in to:
            to = f"{to};tag={dialog.local_tag}"
        headers = [("Via", v) for v in request.headers.get("via", [])]
        headers += [("From", request.get("from")), ("To", to), ("Call-ID", request.get("call-id")),
                    ("CSeq", request.get("cseq"))]
        if dialog is not None and body:
            port = self.uas.port if self.uas is not None else 0
            headers.append(("Contact", f"<sip:callee@{LOOPBACK}:{port}>"))
        reason = "OK" if status == 200 else "Error"
        return sip_text(f"SIP/2.0 {status} {reason}", headers, body)

    # ---- calls we place --------------------------------------------------------
    async def place(self, index: int) -> Dialog | None:
        assert self.uac is not None
        leg = self.rtp.open_leg()
        call_id = f"media-{index}-{random.getrandbits(48):012x}@{LOOPBACK}"
        tag = f"{random.getrandbits(48):012x}"
        number = self.args.number
        dialog = Dialog(call_id, leg, tag)
        dialog.from_value = f"<sip:load{index}@{LOOPBACK}>;tag={tag}"
        self.uac.dialogs[call_id] = dialog
        uri = f"sip:{number}@{LOOPBACK}:{self.cosmo[1]}"
        invite = sip_text(f"INVITE {uri} SIP/2.0", [
            ("Via", self.uac.via(new_branch())), ("Max-Forwards", "70"), ("From", dialog.from_value),
            ("To", f"<sip:{number}@{LOOPBACK}>"), ("Call-ID", call_id), ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:load{index}@{LOOPBACK}:{self.uac.port}>"),
        ], sdp_body(index, leg.port))
        response = await self.uac.transaction(call_id, "INVITE", invite, self.cosmo)
        if response is None or not 200 <= response.status < 300:
            reason = "timeout" if response is None else str(response.status)
            self.setup_failures[reason] = self.setup_failures.get(reason, 0) + 1
            dialog.failed = response.status if response is not None else 408
            return None
        dialog.to_value = response.get("to")
        dialog.remote_target = contact_uri(response.get("contact")) or uri
        leg.remote = sdp_address(response.body)
        self.uac._ack(response, self.cosmo)
        dialog.confirmed.set()
        leg.sending = True
        self.callers.append(dialog)
        return dialog

    async def hang_up(self, dialog: Dialog) -> bool:
        assert self.uac is not None
        dialog.leg.sending = False
        if dialog.ended.is_set():
            return True
        dialog.ended.set()
        dialog.cseq += 1
        bye = sip_text(f"BYE {dialog.remote_target} SIP/2.0", [
            ("Via", self.uac.via(new_branch())), ("Max-Forwards", "70"), ("From", dialog.from_value),
            ("To", dialog.to_value), ("Call-ID", dialog.call_id), ("CSeq", f"{dialog.cseq} BYE"),
        ])
        response = await self.uac.transaction(dialog.call_id, "BYE", bye, uri_address(dialog.remote_target))
        return response is not None and response.status < 300

    async def run(self) -> dict[str, object]:
        args = self.args
        await self.open()
        self.rtp.start()
        started = time.monotonic()
        tasks: list[asyncio.Task[Dialog | None]] = []
        for index in range(args.calls):
            tasks.append(asyncio.ensure_future(self.place(index)))
            await asyncio.sleep(max(0.0, started + (index + 1) / args.rate - time.monotonic()))
        await asyncio.gather(*tasks)
        established = len(self.callers)
        bridged = 0
        if self.uas is not None:
            # Every caller's B-leg must have been answered and confirmed by Cosmo's ACK.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                bridged = sum(1 for d in self.uas.dialogs.values() if d.confirmed.is_set())
                if bridged >= established:
                    break
                await asyncio.sleep(0.1)
        emit({"event": "established", "calls": established, "bridged": bridged,
              "setup_s": round(time.monotonic() - started, 2), "failures": self.setup_failures})
        await asyncio.sleep(args.settle)
        self.rtp.reset_reception()
        self.rtp.measuring = True
        window_start = time.time()
        emit({"event": "window", "phase": "start"})
        await asyncio.sleep(args.seconds)
        self.rtp.measuring = False
        window = time.time() - window_start
        emit({"event": "window", "phase": "end"})
        result = self.summarise(window)
        result["unexpected_byes"] = self.unexpected_byes
        hang_ups = []
        started = time.monotonic()
        for index, dialog in enumerate(self.callers):
            hang_ups.append(asyncio.ensure_future(self.hang_up(dialog)))
            await asyncio.sleep(max(0.0, started + (index + 1) / args.rate / 2 - time.monotonic()))
        ok = await asyncio.gather(*hang_ups)
        if self.uas is not None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not all(d.ended.is_set() for d in self.uas.dialogs.values()):
                await asyncio.sleep(0.1)
            result["uas_not_ended"] = sum(1 for d in self.uas.dialogs.values() if not d.ended.is_set())
        result["bye_failures"] = sum(1 for good in ok if not good)
        result["established"] = established
        result["bridged"] = bridged
        result["setup_failures"] = self.setup_failures
        self.rtp.close()
        return result

    def summarise(self, window: float) -> dict[str, object]:
        rtp = self.rtp
        streams = [leg for leg in rtp.legs if leg.remote is not None and leg.sending]
        silent = sum(1 for leg in streams if leg.received == 0)
        lost = sum(leg.lost for leg in rtp.legs)
        missing = 0
        for leg in rtp.legs:
            if leg.received >= 2:
                expected = round((leg.last_time - leg.first_time) / FRAME) + 1
                missing += max(0, expected - leg.received - leg.lost)
        received = sum(leg.received for leg in rtp.legs)
        return {
            "event": "result",
            "window_s": round(window, 3),
            "streams": len(streams),
            "silent_streams": silent,
            "received": received,
            "expected": round(len(streams) * window / FRAME),
            "lost": lost,
            "missing": missing,
            "reordered": sum(leg.reordered for leg in rtp.legs),
            "relay_lost": sum(leg.relay_lost for leg in rtp.legs),
            "jitter_ms": quantiles(rtp.deviations),
            "relay_delay_ms": quantiles(rtp.delays),
            "added_jitter_ms": quantiles(rtp.added),
            "send_lateness_ms": quantiles(rtp.send_lateness),
            "send_errors": rtp.send_errors,
            "late_frames": rtp.holes,
        }


def quantiles(values: array) -> dict[str, float] | None:
    """p50, p99, p99.9 and max of ``values`` (seconds) in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    count = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(count - 1, max(0, int(-(-count * q // 100)) - 1))] * 1000, 3)

    return {"count": count, "p50": at(50), "p99": at(99), "p999": at(99.9), "max": round(ordered[-1] * 1000, 3)}


def emit(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> int:
    generator = Generator(args)
    try:
        result = await generator.run()
    except PeerError as exc:
        emit({"event": "error", "error": str(exc)})
        return 1
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("prompt", "bridge"), required=True)
    parser.add_argument("--cosmo-port", type=int, required=True, help="Cosmo's SIP UDP port on 127.0.0.1")
    parser.add_argument("--number", required=True, help="the number dialled")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--rate", type=float, default=50.0, help="calls set up (and hung up) per second")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the last call and the window")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the measuring window")
    parser.add_argument("--uac-port", type=int, required=True)
    parser.add_argument("--uas-port", type=int, default=0, help="the callee's SIP port (bridge)")
    parser.add_argument("--rtp-base", type=int, default=40000, help="first RTP port of the generator (even)")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(args))
    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
