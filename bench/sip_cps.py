#!/usr/bin/env python3
"""SIP calls per second through a B2BUA on one core: Cosmo and Sippy's b2bua_simple.

For each system the same work is run: SIPp UAC → B2BUA → SIPp UAS over UDP on
127.0.0.1, INVITE → 200 → ACK → BYE, signalling only (SDP is carried, no RTP).
Each rate step places ``rate × seconds`` calls; a step passes when every call
succeeds at both ends, nothing was retransmitted, no message came after its
call or unexpected (a provisional response after the 200 excepted), and calls
were answered at no less than 95 % of the rate asked.  The steps stop at the
first failing rate.  Reported per system: the highest passing rate, the p50/p99
time from INVITE sent to 200 received at that rate, and the ratio Cosmo/Sippy.

Both B2BUAs run pinned to CPU 1 (``taskset -c 1``); SIPp's UAC and UAS and this
script run on CPU 0.  After every Cosmo step the script waits until
``/api/sip/stats`` shows no call, session or transaction left (bounded by
max(64*T1, T4) plus one second) and reports how long that took; the same pause
is taken after Sippy steps.  INVITE → 200 times come from kernel timestamps of
the caller's packets on ``lo`` when the script may open a packet socket, else
from SIPp (4 ms resolution).

    python bench/sip_cps.py [--rates 100,200,...] [--seconds 10] [--repeat 1]
                            [--only cosmo|sippy] [--json out.json] [--t1 0.5]
                            [--profile DIR] [--keep] [--no-pin]

Needs ``sipp`` (Debian sip-tester) and, for the Sippy side, the ``sippy``
package (its ``b2bua_simple`` script next to this Python or on PATH).
``--profile DIR`` records each step of each B2BUA with ``py-spy`` (when
installed) and prints the busiest functions.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from benchlib import LOOPBACK, BenchError, free_port, pinned, read, stop

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
UAC_SCENARIO = BENCH / "uac_cps.xml"
UAS_SCENARIO = REPO / "tests" / "sipp" / "uas.xml"
DEMO_CONFIG = REPO / "config" / "cosmo.yaml"
TOKEN = "demo-admin-token"

DEFAULT_RATES = (100, 200, 300, 400, 450, 500, 550, 600, 700, 800, 1000, 1200, 1500, 2000)
B2BUA_CPU = 1
PEER_CPU = 0
MIN_RATE_RATIO = 0.95
# Messages Cosmo receives per call when nothing is retransmitted: INVITE, ACK and
# BYE from the caller; 100, 180, 200 (INVITE) and 200 (BYE) from the callee.
COSMO_MESSAGES_PER_CALL = 7
SYSTEMS = ("cosmo", "sippy")
COSMO_T4 = 5.0  # Cosmo's T4 in the bench configuration (RFC 3261's default)
SIPPY_T1 = 0.5  # Sippy's retransmission interval (sippy.SipTransactionManager), fixed


# --------------------------------------------------------------------------- processes


def udp_bound(port: int) -> bool:
    """True when something holds UDP 127.0.0.1:``port``."""
    needle = f"0100007F:{port:04X}"
    return needle in Path("/proc/net/udp").read_text()


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped on 127.0.0.1:``port`` (full receive buffer), all sockets summed."""
    needle = f"0100007F:{port:04X}"
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 12 and fields[1] == needle:
            total += int(fields[-1])
    return total


def wait_until(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}:\n{read(log)[-3000:]}")
        if predicate():
            return
        time.sleep(0.05)
    raise BenchError(f"{what} not ready within {timeout} s:\n{read(log)[-3000:]}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- B2BUAs


@dataclass
class B2bua:
    """A running B2BUA: its process, SIP port, log, and (Cosmo) its HTTP port."""

    name: str
    proc: subprocess.Popen[bytes]
    sip_port: int
    log: Path
    http_port: int | None = None

    def stats(self) -> dict[str, Any] | None:
        """``GET /api/sip/stats`` (Cosmo only)."""
        if self.http_port is None:
            return None
        request = urllib.request.Request(f"http://{LOOPBACK}:{self.http_port}/api/sip/stats")
        request.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(request, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def stop(self) -> None:
        stop(self.proc, signal.SIGTERM, grace=10.0)


def start_cosmo(workdir: Path, uas_port: int, t1: float, cpu: int | None) -> B2bua:
    """``cosmo serve`` as a transit B2BUA: 9NNN from 127.0.0.1 → trunk ``carrier`` (the UAS)."""
    settings: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text())
    sip_port = free_port()
    http_port = free_port()
    settings["data_dir"] = str(workdir / "cosmo-data")
    settings["log_level"] = "WARNING"
    settings["sip"]["listen"] = [{"transport": "udp", "host": LOOPBACK, "port": sip_port}]
    settings["sip"]["t1"] = t1
    settings["sip"]["t2"] = max(4.0, t1)
    settings["sip"]["t4"] = COSMO_T4
    settings["http"] = {"host": LOOPBACK, "port": http_port}
    for trunk in settings["trunks"]:
        if trunk["name"] == "demo":
            trunk["inbound"]["sources"] = [f"{LOOPBACK}/32"]
            trunk["inbound"]["transit"] = True
    settings["trunks"].append({
        "name": "carrier",
        "inbound": {"sources": []},
        "outbound": {"host": LOOPBACK, "port": uas_port, "transport": "udp"},
        "register": {"enabled": False},
        # Signalling only, like Sippy's b2bua_simple: the SDP passes through.
        "media": "bypass",
    })
    settings["routes"] = [{"pattern": r"^9(\d+)$", "trunk": "carrier", "strip": 1, "prefix": ""}]
    config = workdir / "cosmo.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    log = workdir / "cosmo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMO_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            pinned(cpu, [sys.executable, "-m", "cosmo.cli", "serve", "--config", str(config)]),
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )
    b2bua = B2bua("cosmo", proc, sip_port, log, http_port=http_port)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/healthz", timeout=1) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    try:
        wait_until(healthy, 60, "cosmo serve", proc, log)
    except BaseException:
        b2bua.stop()
        raise
    return b2bua


def b2bua_simple_path() -> str | None:
    """Sippy's ``b2bua_simple`` console script: next to this Python, else on PATH."""
    local = Path(sys.executable).parent / "b2bua_simple"
    if local.exists():
        return str(local)
    return shutil.which("b2bua_simple")


def start_sippy(workdir: Path, uas_port: int, cpu: int | None) -> B2bua:
    """Sippy's ``b2bua_simple`` in the foreground, every call to the UAS (``-n``), log level WARN."""
    script = b2bua_simple_path()
    if script is None:
        raise BenchError("b2bua_simple not found: pip install sippy")
    sip_port = free_port()
    log = workdir / "sippy.log"
    env = dict(os.environ, SIPLOG_LVL="WARN", SIPLOG_BEND="stderr")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            pinned(cpu, [script, "-f", "-l", LOOPBACK, "-p", str(sip_port), "-n", f"{LOOPBACK}:{uas_port}"]),
            env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )
    b2bua = B2bua("sippy", proc, sip_port, log)
    try:
        wait_until(lambda: udp_bound(sip_port), 30, "b2bua_simple", proc, log)
    except BaseException:
        b2bua.stop()
        raise
    return b2bua


# --------------------------------------------------------------------------- SIPp


def sipp_args(scenario: Path, workdir: Path, name: str, port: int, calls: int, timeout: float) -> list[str]:
    return [
        "-sf", str(scenario), "-t", "u1",
        "-i", LOOPBACK, "-bind_local", "-p", str(port),
        "-mi", LOOPBACK, "-mp", str(free_port(4)),
        "-ci", LOOPBACK, "-cp", str(free_port()),
        "-m", str(calls), "-timeout", f"{int(timeout)}s", "-timeout_error",
        "-recv_timeout", "10000", "-nostdin",
        "-trace_stat", "-stf", str(workdir / f"{name}.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / f"{name}-errors.log"),
        "-trace_screen", "-screen_file", str(workdir / f"{name}-screen.log"),
    ]


def last_stats(path: Path) -> dict[str, str]:
    """The last line of a SIPp ``-trace_stat`` CSV, by column name."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=";") if row]
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}


def counter(stats: dict[str, str], name: str) -> int:
    value = stats.get(name, "")
    return int(value) if value.strip().isdigit() else 0


_ARROW = re.compile(r"-{3,}>|<-{3,}")
_RTD = re.compile(r"^[BE]-RTD\d+$")


def screen_retransmissions(path: Path) -> int:
    """Sum of the Retrans column of the last scenario screen SIPp wrote (sent and received).

    Rows read "INVITE ---------->  B-RTD1 150  0 ..." for a client scenario and
    "----------> INVITE  150  0 ..." for a server one.
    """
    text = read(path)
    start = text.rfind("Scenario Screen")
    if start < 0:
        return 0
    total = 0
    for line in text[start:].split("Statistics Screen", 1)[0].splitlines():
        parts = _ARROW.split(line, maxsplit=1)
        if len(parts) != 2:
            continue
        tokens = parts[1].split()
        if not parts[0].strip():
            tokens = tokens[1:]  # the message name follows the arrow
        numbers = [t for t in tokens if not _RTD.match(t)]
        if len(numbers) >= 2 and numbers[1].isdigit():
            total += int(numbers[1])
    return total


_UNEXPECTED = re.compile(r"unexpected message for Call-Id '[^']*'[^\n]*?received '([^\r\n']*)", re.IGNORECASE)


def unexpected_messages(path: Path) -> tuple[int, int]:
    """(provisional, other) responses SIPp reported as unexpected in its error log.

    A provisional response that arrives after the final one (the B2BUA sent
    them from several threads, or the network reordered them) is ignored by a
    UAC (RFC 3261 §17.1.1.2, RFC 6026 §7.2); the caller's scenario is run with
    ``-default_behaviors all,-abortunexp`` so that SIPp goes on with the call.
    """
    provisional = other = 0
    for match in _UNEXPECTED.finditer(read(path)):
        if re.match(r"SIP/2\.0 1\d\d ", match.group(1)):
            provisional += 1
        else:
            other += 1
    return provisional, other


def rtt_samples(workdir: Path) -> list[tuple[float, float]]:
    """(ms since SIPp started, INVITE→200 ms) per call, from ``-trace_rtt``."""
    samples = []
    for path in workdir.glob("*_rtt.csv"):
        with path.open(newline="") as handle:
            for row in csv.reader(handle, delimiter=";"):
                if len(row) >= 3 and row[2].strip() == "1":
                    try:
                        samples.append((float(row[0]), float(row[1])))
                    except ValueError:
                        continue
    samples.sort()
    return samples


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


# --------------------------------------------------------------------------- capture

# SIPp stamps its response times with the clock of its event loop: 4 ms steps on
# a 250 Hz kernel, too coarse for a p50.  When the script may open a packet
# socket (root or CAP_NET_RAW) it takes the INVITE→200 times from the kernel's
# receive timestamps of the caller's packets on the loopback interface instead.

_ETH_P_IP = 0x0800
_SO_ATTACH_FILTER = 26
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_CALL_ID = re.compile(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE)
_CSEQ_INVITE = re.compile(rb"\r\n(?:cseq)[ \t]*:[ \t]*\d+[ \t]+INVITE\b", re.IGNORECASE)


def _port_filter(port: int) -> bytes:
    """Classic BPF: IPv4 UDP packets received on the interface (not the outgoing copy) from or to ``port``."""
    ld_w_abs, ld_h_ind, ld_b_abs, ldx_b_msh, jeq_k, ret_k = 0x20, 0x48, 0x30, 0xB1, 0x15, 0x06
    pkttype = (-0x1000 + 4) & 0xFFFFFFFF  # SKF_AD_OFF + SKF_AD_PKTTYPE
    program = [
        (ld_w_abs, 0, 0, pkttype),
        (jeq_k, 0, 8, 0),            # PACKET_HOST
        (ld_b_abs, 0, 0, 9),
        (jeq_k, 0, 6, 17),           # UDP
        (ldx_b_msh, 0, 0, 0),        # X = IP header length
        (ld_h_ind, 0, 0, 0),
        (jeq_k, 2, 0, port),         # source port
        (ld_h_ind, 0, 0, 2),
        (jeq_k, 0, 1, port),         # destination port
        (ret_k, 0, 0, 0x40000),
        (ret_k, 0, 0, 0),
    ]
    return b"".join(struct.pack("HBBI", *insn) for insn in program)


class Capture:
    """Kernel timestamps of the INVITEs a UDP port sends and of the 2xx to INVITE it receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.invites: dict[bytes, float] = {}
        self.answers: dict[bytes, float] = {}
        self.drops = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> bool:
        """Open the packet socket; False when not permitted (no CAP_NET_RAW)."""
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_IP))
        except (PermissionError, OSError, AttributeError):
            return False
        code = _port_filter(self.port)
        self._program = ctypes.create_string_buffer(code)
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER,
                        struct.pack("HL", len(code) // 8, ctypes.addressof(self._program)))
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 32 * 1024 * 1024)
        sock.bind(("lo", _ETH_P_IP))
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        assert self._sock is not None
        port = self.port
        while not self._stop.is_set():
            try:
                data, ancillary, _, _ = self._sock.recvmsg(65535, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            header = (data[0] & 0x0F) * 4
            source, destination = struct.unpack_from("!HH", data, header)
            payload = data[header + 8:]
            if source == port and payload.startswith(b"INVITE "):
                table = self.invites
            elif destination == port and payload.startswith(b"SIP/2.0 2") and _CSEQ_INVITE.search(payload):
                table = self.answers
            else:
                continue
            match = _CALL_ID.search(payload)
            if match is None:
                continue
            stamp = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack_from("qq", value)
                    stamp = seconds + nanoseconds / 1e9
            table.setdefault(match.group(1).strip(), stamp)

    def stop(self) -> list[tuple[float, float]]:
        """(time of the 2xx, INVITE→2xx ms) per answered call, in order."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                stats = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
                self.drops = struct.unpack("II", stats)[1]
            self._sock.close()
        samples = [(answered, (answered - self.invites[call_id]) * 1000.0)
                   for call_id, answered in self.answers.items() if call_id in self.invites]
        samples.sort()
        return samples


# --------------------------------------------------------------------------- one step


@dataclass
class Step:
    """The outcome of one run at one rate."""

    system: str
    rate: float
    calls: int
    successful: int = 0
    failed: int = 0
    uas_successful: int = 0
    uas_failed: int = 0
    retransmissions: int = 0
    late_messages: int = 0
    late_provisionals: int = 0
    unexpected: int = 0
    achieved: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    timing: str = "sipp"
    sipp_p50_ms: float | None = None
    sipp_p99_ms: float | None = None
    capture_drops: int = 0
    cpu_percent: float | None = None
    udp_drops: int = 0
    idle_s: float | None = None
    leftover: dict[str, int] = field(default_factory=dict)
    extra_messages: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def run_step(b2bua: B2bua, uas_port: int, rate: float, seconds: float, settle: float, workdir: Path,
             profile_dir: Path | None) -> Step:
    """Place ``rate × seconds`` calls at ``rate`` through ``b2bua`` and judge the step.

    Cosmo must be idle ``settle`` seconds after the last call; both systems rest
    that long before the next step.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    calls = max(1, round(rate * seconds))
    step = Step(b2bua.name, rate, calls)
    timeout = seconds * 3 + 30
    limit = max(50, int(rate))
    uac_port = free_port()
    before = b2bua.stats()
    drops_before = udp_drops(b2bua.sip_port)
    peer_cpu = PEER_CPU if CPU_PINNING else None
    capture = Capture(uac_port)
    capturing = capture.start()
    uas = uac = spy = None
    try:
        with (workdir / "uas-stderr.log").open("wb") as err:
            uas = subprocess.Popen(
                pinned(peer_cpu, ["sipp", *sipp_args(UAS_SCENARIO, workdir, "uas", uas_port, calls, timeout + 10)]),
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        wait_until(lambda: udp_bound(uas_port), 10, "sipp uas", uas, workdir / "uas-stderr.log")
        if profile_dir is not None:
            spy = start_profile(b2bua, rate, seconds, profile_dir)
        cpu_before, began = cpu_seconds(b2bua.proc.pid), time.monotonic()
        with (workdir / "uac-stderr.log").open("wb") as err:
            uac = subprocess.Popen(
                pinned(peer_cpu, [
                    "sipp", f"{LOOPBACK}:{b2bua.sip_port}",
                    *sipp_args(UAC_SCENARIO, workdir, "uac", uac_port, calls, timeout),
                    "-s", "91000", "-r", f"{rate:g}", "-l", str(limit), "-d", "0",
                    "-trace_rtt", "-rtt_freq", "1", "-default_behaviors", "all,-abortunexp",
                ]),
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        # The B2BUA's CPU share while the calls are placed (not while late ones time out).
        with contextlib.suppress(subprocess.TimeoutExpired):
            uac.wait(timeout=seconds)
        cpu_after, placed = cpu_seconds(b2bua.proc.pid), time.monotonic()
        if cpu_before is not None and cpu_after is not None and placed > began:
            step.cpu_percent = 100.0 * (cpu_after - cpu_before) / (placed - began)
        try:
            uac.wait(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            step.problems.append("sipp uac did not end by its -timeout")
        ended = time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):
            uas.wait(timeout=3)
        step.udp_drops = udp_drops(b2bua.sip_port) - drops_before
    finally:
        stop(uac, signal.SIGUSR1, grace=3.0)
        stop(uas, signal.SIGUSR1, grace=3.0)
        stop(spy, signal.SIGINT, grace=10.0)
        captured = capture.stop() if capturing else []

    uac_stats = last_stats(workdir / "uac.csv")
    uas_stats = last_stats(workdir / "uas.csv")
    step.successful = counter(uac_stats, "SuccessfulCall(C)")
    step.failed = max(counter(uac_stats, "FailedCall(C)"), calls - step.successful)
    step.uas_successful = counter(uas_stats, "SuccessfulCall(C)")
    step.uas_failed = counter(uas_stats, "FailedCall(C)")
    step.retransmissions = (
        max(counter(uac_stats, "Retransmissions(C)"), screen_retransmissions(workdir / "uac-screen.log"))
        + max(counter(uas_stats, "Retransmissions(C)"), screen_retransmissions(workdir / "uas-screen.log"))
    )
    step.late_messages = sum(counter(stats, name) for stats in (uac_stats, uas_stats)
                             for name in ("DeadCallMsgs(C)", "OutOfCallMsgs(C)"))
    for name in ("uac", "uas"):
        provisional, other = unexpected_messages(workdir / f"{name}-errors.log")
        step.late_provisionals += provisional
        step.unexpected += other
    sipp_samples = rtt_samples(workdir)
    sipp_times = [ms for _, ms in sipp_samples]
    step.sipp_p50_ms = percentile(sipp_times, 50)
    step.sipp_p99_ms = percentile(sipp_times, 99)
    # (seconds, ms) per answered call, from the capture when it saw every call.
    if capturing and len(captured) >= len(sipp_samples):
        samples = captured
        step.timing = "capture"
        step.capture_drops = capture.drops
    else:
        samples = [(t / 1000.0, ms) for t, ms in sipp_samples]
    times = [ms for _, ms in samples]
    step.p50_ms = percentile(times, 50)
    step.p99_ms = percentile(times, 99)
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        step.achieved = (len(samples) - 1) / (samples[-1][0] - samples[0][0])
    elif len(samples) == 1:
        step.achieved = rate

    if uac is not None and uac.returncode != 0:
        step.problems.append(f"sipp uac exit {uac.returncode}")
    if step.failed:
        step.problems.append(f"{step.failed} failed calls")
    if step.uas_successful < calls or step.uas_failed:
        step.problems.append(f"uas: {step.uas_successful} ok, {step.uas_failed} failed of {calls}")
    if step.retransmissions:
        step.problems.append(f"{step.retransmissions} retransmissions")
    if step.unexpected:
        step.problems.append(f"{step.unexpected} unexpected messages")
    if step.late_messages:
        step.problems.append(f"{step.late_messages} messages after their call")
    if len(samples) < calls:
        step.problems.append(f"{len(samples)} INVITE→200 times for {calls} calls")
    if step.achieved < MIN_RATE_RATIO * rate:
        step.problems.append(f"achieved {step.achieved:.0f}/s < {MIN_RATE_RATIO:.0%} of {rate:g}/s")

    deadline = ended + settle
    if b2bua.http_port is not None:
        keys = ("calls", "sessions", "client_transactions", "server_transactions")
        while True:
            last = b2bua.stats() or {}
            if not any(last.get(k) for k in keys):
                step.idle_s = time.monotonic() - ended
                break
            if time.monotonic() > deadline:
                step.leftover = {k: int(last.get(k) or 0) for k in keys if last.get(k)}
                step.problems.append(f"not idle {settle:.1f} s after the step: {step.leftover}")
                break
            time.sleep(0.1)
        if before is not None:
            step.extra_messages = int(last["messages_in"]) - int(before["messages_in"]) \
                - COSMO_MESSAGES_PER_CALL * calls
    # Both systems get the same pause before the next step.
    time.sleep(max(0.0, deadline - time.monotonic()))
    if b2bua.proc.poll() is not None:
        step.problems.append(f"{b2bua.name} exited with {b2bua.proc.returncode}")
    return step


# --------------------------------------------------------------------------- profiling


def py_spy_path() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_profile(b2bua: B2bua, rate: float, seconds: float, profile_dir: Path) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` (raw collapsed stacks) of the B2BUA for the step, on the peers' CPU."""
    exe = py_spy_path()
    if exe is None:
        return None
    profile_dir.mkdir(parents=True, exist_ok=True)
    out = profile_dir / f"{b2bua.name}-{rate:g}cps.txt"
    with (profile_dir / f"{b2bua.name}-{rate:g}cps.err").open("wb") as err:
        return subprocess.Popen(
            pinned(PEER_CPU if CPU_PINNING else None, [
                exe, "record", "--pid", str(b2bua.proc.pid), "--format", "raw", "--rate", "200",
                "--nonblocking", "--threads", "--duration", str(int(seconds) + 2), "--output", str(out),
            ]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )


_LINE = re.compile(r"(\([^()]*?):\d+\)$")


def hot_spots(path: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """(function, self %, total %) of the busiest functions in a py-spy raw profile (lines merged)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in read(path).splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE.sub(r"\1)", f) for f in stack.split(";")
                  if f and not f.startswith("thread (") and not f.startswith("process ")]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return []
    return [(name, 100.0 * n / samples, 100.0 * total[name] / samples) for name, n in own.most_common(top)]


# --------------------------------------------------------------------------- a system's run


@dataclass
class SystemResult:
    system: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    best_rate: float = 0.0
    best_p50_ms: float | None = None
    best_p99_ms: float | None = None
    first_failure: str | None = None
    error: str | None = None


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def run_system(system: str, rates: list[float], seconds: float, repeat: int, t1: float, settle: float,
               workdir: Path, profile_dir: Path | None) -> SystemResult:
    result = SystemResult(system)
    workdir.mkdir(parents=True, exist_ok=True)
    uas_port = free_port()
    cpu = B2BUA_CPU if CPU_PINNING else None
    b2bua = start_cosmo(workdir, uas_port, t1, cpu) if system == "cosmo" else start_sippy(workdir, uas_port, cpu)
    print(f"{system}: B2BUA pid {b2bua.proc.pid} on {LOOPBACK}:{b2bua.sip_port}, UAS on {LOOPBACK}:{uas_port}",
          flush=True)
    try:
        for rate in rates:
            runs = [run_step(b2bua, uas_port, rate, seconds, settle, workdir / f"{rate:g}cps-{i + 1}",
                             profile_dir if i == 0 else None)
                    for i in range(repeat)]
            passed = all(r.passed for r in runs)
            if repeat == 1:
                problems = list(runs[0].problems)
            else:
                problems = [f"run {i + 1}: " + ", ".join(r.problems) for i, r in enumerate(runs) if r.problems]
            p50, p99 = median([r.p50_ms for r in runs]), median([r.p99_ms for r in runs])
            summary: dict[str, Any] = {
                "rate": rate,
                "calls": runs[0].calls,
                "repeats": repeat,
                "passed": passed,
                "achieved": median([r.achieved for r in runs]),
                "p50_ms": p50,
                "p99_ms": p99,
                "timing": "capture" if all(r.timing == "capture" for r in runs) else "sipp",
                "sipp_p50_ms": median([r.sipp_p50_ms for r in runs]),
                "sipp_p99_ms": median([r.sipp_p99_ms for r in runs]),
                "failed": sum(r.failed for r in runs),
                "retransmissions": sum(r.retransmissions for r in runs),
                "late_provisionals": sum(r.late_provisionals for r in runs),
                "cpu_percent": median([r.cpu_percent for r in runs]),
                "udp_drops": sum(r.udp_drops for r in runs),
                "idle_s": median([r.idle_s for r in runs]) if system == "cosmo" else None,
                "extra_messages_in": sum(r.extra_messages or 0 for r in runs) if system == "cosmo" else None,
                "problems": problems,
                "runs": [asdict(r) for r in runs],
            }
            result.steps.append(summary)
            print(format_step(system, summary), flush=True)
            if not passed:
                result.first_failure = f"{rate:g}/s: " + "; ".join(problems)
                break
            result.best_rate = rate
            result.best_p50_ms = p50
            result.best_p99_ms = p99
    finally:
        b2bua.stop()
    return result


# --------------------------------------------------------------------------- output


def fmt_ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_step(system: str, s: dict[str, Any]) -> str:
    extras = "" if s["cpu_percent"] is None else f"  B2BUA CPU {s['cpu_percent']:.0f} %"
    if s["idle_s"] is not None:
        extras += f"  idle after {s['idle_s']:.1f} s"
    if s["extra_messages_in"] is not None:
        extras += f"  extra msgs in {s['extra_messages_in']}"
    if s["udp_drops"]:
        extras += f"  UDP drops at the B2BUA {s['udp_drops']}"
    if s["late_provisionals"]:
        extras += f"  1xx after 200: {s['late_provisionals']}"
    verdict = "ok" if s["passed"] else "FAIL: " + "; ".join(s["problems"])
    return (f"  {system:<6} {s['rate']:>6g}/s  achieved {s['achieved']:7.1f}/s  calls {s['calls']:>6}  "
            f"failed {s['failed']:>4}  retrans {s['retransmissions']:>4}  "
            f"INVITE→200 p50 {fmt_ms(s['p50_ms']):>6} p99 {fmt_ms(s['p99_ms']):>7} ms "
            f"(SIPp: {fmt_ms(s['sipp_p50_ms'], 0)}/{fmt_ms(s['sipp_p99_ms'], 0)}){extras}  {verdict}")


def print_report(results: dict[str, SystemResult], args: argparse.Namespace, t1: float) -> None:
    print()
    pin = (f"each B2BUA pinned to CPU {B2BUA_CPU} (taskset -c {B2BUA_CPU}); SIPp UAC+UAS and this script on "
           f"CPU {PEER_CPU}" if CPU_PINNING else "no CPU pinning (--no-pin)")
    print(f"SIP calls/s through a B2BUA on one core — {pin}")
    print(f"UDP on {LOOPBACK}; INVITE→200→ACK→BYE, no RTP; {args.seconds:g} s of calls per step, "
          f"{args.repeat} run(s) per step (medians); Cosmo T1 = {t1:g} s, Sippy T1 = {SIPPY_T1:g} s")
    timings = {s["timing"] for r in results.values() for s in r.steps}
    if timings == {"capture"}:
        print("INVITE→200: kernel receive timestamps of the caller's packets on lo (SIPp's own figures, "
              "in 4 ms clock steps, are in the JSON)")
    else:
        print("INVITE→200: SIPp's response times (resolution: its event-loop clock, 4 ms steps here)")
    print()
    header = f"{'system':<8}{'max calls/s':>12}{'p50 ms':>9}{'p99 ms':>9}   first failing step"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        if r.error:
            print(f"{name:<8}{'-':>12}{'-':>9}{'-':>9}   error: {r.error}")
            continue
        failure = r.first_failure or "none (raise --rates)"
        print(f"{name:<8}{r.best_rate:>12g}{fmt_ms(r.best_p50_ms):>9}{fmt_ms(r.best_p99_ms):>9}   {failure}")
    cosmo, sippy = results.get("cosmo"), results.get("sippy")
    if cosmo and sippy and not cosmo.error and not sippy.error and sippy.best_rate:
        print()
        note = "" if cosmo.first_failure and sippy.first_failure else \
            " (not both at their limit: a system passed every rate asked)"
        print(f"ratio Cosmo/Sippy, max calls/s: {cosmo.best_rate / sippy.best_rate:.2f}{note}")


def parse_rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive numbers, e.g. 50,100,200")
    return sorted(rates)


CPU_PINNING = True


def main(argv: list[str] | None = None) -> int:
    global CPU_PINNING
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=parse_rates, default=list(DEFAULT_RATES),
                        help="calls/s steps, comma-separated (default " + ",".join(map(str, DEFAULT_RATES)) + ")")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of calls per step (default 10)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; medians are reported (default 1)")
    parser.add_argument("--only", choices=SYSTEMS, help="run one system only")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--t1", type=float, default=0.5,
                        help="Cosmo's SIP T1 in seconds (default 0.5, Sippy's and RFC 3261's; transactions "
                             "end within 64*T1, which every step waits for; 0.1 makes steps 26 s shorter)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record each B2BUA step with py-spy into DIR and print the hottest functions")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, SIPp CSVs)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.seconds <= 0:
        parser.error("--repeat must be >= 1 and --seconds > 0")

    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    CPU_PINNING = not args.no_pin
    if CPU_PINNING:
        cpus = os.sched_getaffinity(0)
        if not {B2BUA_CPU, PEER_CPU} <= cpus or shutil.which("taskset") is None:
            print(f"needs CPUs {PEER_CPU} and {B2BUA_CPU} and taskset (have CPUs {sorted(cpus)}); "
                  "use --no-pin to run unpinned", file=sys.stderr)
            return 2
        os.sched_setaffinity(0, {PEER_CPU})
    systems = [args.only] if args.only else list(SYSTEMS)
    if "sippy" in systems and b2bua_simple_path() is None:
        if args.only == "sippy":
            print("b2bua_simple not found: pip install sippy", file=sys.stderr)
            return 2
        print("b2bua_simple not found (pip install sippy): running Cosmo only", file=sys.stderr)
        systems.remove("sippy")

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Cosmo's transactions end within 64*T1 (T4 for non-INVITE clients); both systems rest that long.
    settle = max(64 * args.t1, COSMO_T4) + 1.0
    workdir = Path(tempfile.mkdtemp(prefix="sip-cps-"))
    results: dict[str, SystemResult] = {}
    started = time.monotonic()
    try:
        for system in systems:
            try:
                results[system] = run_system(system, args.rates, args.seconds, args.repeat, args.t1, settle,
                                             workdir / system, args.profile)
            except BenchError as exc:
                results[system] = SystemResult(system, error=str(exc).splitlines()[0])
                print(f"{system}: {exc}", file=sys.stderr)
        print_report(results, args, args.t1)
        if args.profile is not None:
            print_profiles(results, args.profile)
        print(f"\ntotal {time.monotonic() - started:.0f} s" + (f"; work directory {workdir}" if args.keep else ""))
        if args.json is not None:
            args.json.write_text(json.dumps({
                "cpu_pinning": CPU_PINNING, "b2bua_cpu": B2BUA_CPU, "peer_cpu": PEER_CPU,
                "seconds": args.seconds, "repeat": args.repeat, "rates": args.rates,
                "cosmo_t1": args.t1, "sippy_t1": SIPPY_T1,
                "results": {name: asdict(r) for name, r in results.items()},
            }, indent=2))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if results and not any(r.error for r in results.values()) else 1


def print_profiles(results: dict[str, SystemResult], profile_dir: Path) -> None:
    """The hottest functions of each system at the last rate it passed and the one it failed."""
    for name, r in results.items():
        rates = [s["rate"] for s in r.steps][-2:]
        for rate in rates:
            path = profile_dir / f"{name}-{rate:g}cps.txt"
            spots = hot_spots(path)
            if not spots:
                continue
            print(f"\n{name} at {rate:g}/s — py-spy, {path}: self % / total %")
            for function, own, total in spots:
                print(f"  {own:5.1f} {total:5.1f}  {function}")


if __name__ == "__main__":
    sys.exit(main())
