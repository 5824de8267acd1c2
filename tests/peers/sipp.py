"""SIPp runs for tests: scenarios from ``tests/sipp``, bound to 127.0.0.1.

Every run has ``-m`` (number of calls) and ``-timeout`` (global time limit),
so SIPp always ends by itself; ``stop()`` and the time-outs here end it by
PID when it does not.  Each run gets its own directory for the statistics
CSV (``-trace_stat``), the error log (``-trace_err``) and the final screen
(``-trace_screen``), and free ports for SIP (``-p``), RTP (``-mp``, which
binds mp and mp+2) and the control socket (``-cp``).

Exit codes (SIPp manual): 0 all calls succeeded, 1 at least one failed,
97 ended by command or global timeout, 99 ended without any call,
255 (-1) fatal error, 254 (-2) fatal error binding a socket.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import shutil
import signal
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.peers.common import (
    LOOPBACK,
    PeerError,
    free_port,
    free_port_block,
    stop_process,
)

log = logging.getLogger(__name__)

SIPP = "sipp"
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "sipp"
TRANSPORTS = ("u1", "un", "t1", "tn")

EXIT_ALL_SUCCESSFUL = 0
EXIT_SOME_FAILED = 1
EXIT_BY_COMMAND_OR_TIMEOUT = 97
EXIT_NO_CALLS = 99


@dataclass(frozen=True, slots=True)
class SippResult:
    """Outcome of one SIPp run.

    ``successful``/``failed``/``created`` are the cumulative counters of
    the last statistics line (None when SIPp wrote none, e.g. it failed to
    start); ``stats`` keeps that whole line by column name.
    """

    returncode: int
    successful: int | None
    failed: int | None
    created: int | None
    stats: dict[str, str]
    stderr: str
    errors: str
    screen: str
    workdir: Path
    args: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.returncode == EXIT_ALL_SUCCESSFUL

    def describe(self) -> str:
        """A summary for assertion messages."""
        return (
            f"sipp exit {self.returncode}: successful={self.successful} failed={self.failed} "
            f"created={self.created}\nargs: {' '.join(self.args)}\nstderr:\n{self.stderr[-2000:]}\n"
            f"errors:\n{self.errors[-3000:]}"
        )


def scenario_path(scenario: str | os.PathLike[str]) -> Path:
    """``"uac_call"`` or ``"uac_call.xml"`` → tests/sipp/uac_call.xml; paths pass through."""
    path = Path(scenario)
    if path.is_absolute() or path.exists():
        return path
    name = path.name if path.suffix == ".xml" else f"{path.name}.xml"
    found = SCENARIO_DIR / name
    if not found.exists():
        raise PeerError(f"no SIPp scenario {found}")
    return found


def _common_args(
    scenario: Path,
    workdir: Path,
    *,
    transport: str,
    local_port: int,
    media_port: int,
    control_port: int,
    calls: int,
    timeout: float,
) -> list[str]:
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
    return [
        "-sf",
        str(scenario),
        "-t",
        transport,
        "-i",
        LOOPBACK,
        "-bind_local",
        "-p",
        str(local_port),
        "-mi",
        LOOPBACK,
        "-mp",
        str(media_port),
        "-ci",
        LOOPBACK,
        "-cp",
        str(control_port),
        "-m",
        str(calls),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(workdir / "stats.csv"),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(workdir / "errors.log"),
        "-trace_screen",
        "-screen_file",
        str(workdir / "screen.log"),
    ]


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _parse_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def _counter(stats: dict[str, str], name: str) -> int | None:
    value = stats.get(name)
    return int(value) if value not in (None, "") else None


def _result(returncode: int, workdir: Path, stderr: str, args: Sequence[str]) -> SippResult:
    stats = _parse_stats(workdir / "stats.csv")
    return SippResult(
        returncode=returncode,
        successful=_counter(stats, "SuccessfulCall(C)"),
        failed=_counter(stats, "FailedCall(C)"),
        created=_counter(stats, "TotalCallCreated"),
        stats=stats,
        stderr=stderr,
        errors=_read(workdir / "errors.log"),
        screen=_read(workdir / "screen.log"),
        workdir=workdir,
        args=tuple(args),
    )


def _require_sipp() -> None:
    if shutil.which(SIPP) is None:
        raise PeerError("sipp is not installed (Debian package sip-tester)")


async def run_sipp(
    scenario: str | os.PathLike[str],
    target: str,
    *,
    calls: int = 1,
    rate: float = 10.0,
    limit: int | None = None,
    transport: str = "u1",
    service: str | None = None,
    auth: tuple[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
    local_port: int = 0,
    workdir: str | os.PathLike[str] | None = None,
) -> SippResult:
    """Run a UAC scenario against ``target`` ("127.0.0.1:5060") to the end.

    Parameters:
        scenario: a file of tests/sipp by name ("uac_call") or any path.
        calls: ``-m``, calls to place before SIPp ends.
        rate: ``-r``, calls per second.
        limit: ``-l``, most simultaneous calls.
        transport: ``-t``: u1, un, t1 or tn.
        service: ``-s``, the user part dialled, e.g. "+15550100" or "1001".
        auth: ``(user, password)`` for ``-au``/``-ap`` digest answers.
        extra_args: more SIPp arguments, e.g. ("-d", "2000").
        timeout: SIPp's ``-timeout``; the process is killed 10 s later.
        local_port: ``-p``; 0 picks a free port.
        workdir: where the logs go; by default a temporary directory that
            is removed after a successful run and kept after a failed one
            (``SippResult.workdir``).
    """
    _require_sipp()
    path = scenario_path(scenario)
    run_dir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"sipp-{path.stem}-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [target]
    args += _common_args(
        path,
        run_dir,
        transport=transport,
        local_port=local_port or free_port("both"),
        media_port=free_port_block(4),
        control_port=free_port("udp"),
        calls=calls,
        timeout=timeout,
    )
    args += ["-r", f"{rate:g}"]
    if limit is not None:
        args += ["-l", str(limit)]
    if service is not None:
        args += ["-s", service]
    if auth is not None:
        args += ["-au", auth[0], "-ap", auth[1]]
    args += list(extra_args)
    log.debug("sipp %s", " ".join(args))
    proc = await asyncio.create_subprocess_exec(
        SIPP,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(run_dir),
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout + 10.0)
    except TimeoutError:
        await stop_process(proc, grace=2.0, sig=signal.SIGKILL)
        stderr = b"(killed: did not end by its own -timeout)"
    except asyncio.CancelledError:
        await stop_process(proc, grace=2.0, sig=signal.SIGKILL)
        raise
    assert proc.returncode is not None
    result = _result(proc.returncode, run_dir, stderr.decode(errors="replace"), args)
    if workdir is None and result.ok:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


class SippUas:
    """A SIPp server scenario running in the background; see start_sipp_uas."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        port: int,
        workdir: Path,
        args: Sequence[str],
        stderr_path: Path,
        *,
        own_workdir: bool = False,
    ) -> None:
        self.proc = proc
        self.port = port
        self.workdir = workdir
        self._own_workdir = own_workdir
        self.args = tuple(args)
        self._stderr_path = stderr_path
        self._result: SippResult | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def uri(self, user: str = "service", transport: str = "udp") -> str:
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"sip:{user}@{LOOPBACK}:{self.port}{suffix}"

    async def wait(self, timeout: float) -> SippResult:
        """Wait until SIPp ends by itself (-m calls done or -timeout)."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise PeerError(f"sipp uas (pid {self.pid}) still running after {timeout} s") from None
        return self.result()

    async def stop(self, grace: float = 3.0) -> SippResult:
        """End it: SIGUSR1 (finish calls in progress, then quit), SIGKILL after ``grace``."""
        await stop_process(self.proc, grace=grace, sig=signal.SIGUSR1)
        return self.result()

    def result(self) -> SippResult:
        """The outcome, once SIPp has ended (read once, then kept)."""
        if self.proc.returncode is None:
            raise PeerError(f"sipp uas (pid {self.pid}) is still running")
        if self._result is None:
            self._result = _result(self.proc.returncode, self.workdir, _read(self._stderr_path), self.args)
            if self._own_workdir and self._result.ok:
                shutil.rmtree(self.workdir, ignore_errors=True)
        return self._result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_sipp_uas(
    scenario: str | os.PathLike[str],
    port: int = 0,
    *,
    calls: int = 1,
    transport: str = "u1",
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
    workdir: str | os.PathLike[str] | None = None,
    ready_timeout: float = 5.0,
) -> SippUas:
    """Start a SIPp server scenario (uas, uas_ringing, ...) on 127.0.0.1:``port``.

    It ends by itself after ``calls`` calls (``-m``) or ``timeout`` seconds
    (``-timeout``); :meth:`SippUas.stop` ends it earlier.  Returns once the
    SIP port is bound.
    """
    _require_sipp()
    path = scenario_path(scenario)
    run_dir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"sipp-{path.stem}-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port("both")
    args = _common_args(
        path,
        run_dir,
        transport=transport,
        local_port=port,
        media_port=free_port_block(4),
        control_port=free_port("udp"),
        calls=calls,
        timeout=timeout,
    )
    args += list(extra_args)
    stderr_path = run_dir / "stderr.log"
    log.debug("sipp %s", " ".join(args))
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            SIPP,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            cwd=str(run_dir),
        )
    uas = SippUas(proc, port, run_dir, args, stderr_path, own_workdir=workdir is None)
    await _wait_bound(uas, transport, ready_timeout)
    return uas


async def _wait_bound(uas: SippUas, transport: str, timeout: float) -> None:
    """Until SIPp holds its SIP port (polling /proc/net, bounded)."""
    table = "/proc/net/tcp" if transport.startswith("t") else "/proc/net/udp"
    needle = f"0100007F:{uas.port:04X}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if uas.proc.returncode is not None:
            raise PeerError(f"sipp uas exited with {uas.proc.returncode}: {_read(uas._stderr_path)[-2000:]}")
        if needle in Path(table).read_text():
            return
        await asyncio.sleep(0.02)
    await uas.stop(grace=0.5)
    raise PeerError(f"sipp uas did not bind {uas.address} within {timeout} s")


PCAP_DIR = Path("/usr/share/sip-tester")


@dataclass(frozen=True, slots=True)
class PcapRtp:
    """One RTP packet of a pcap file that SIPp plays (RFC 3550 section 5.1)."""

    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def pcap_rtp_packets(path: str | os.PathLike[str]) -> list[PcapRtp]:
    """The RTP packets of a classic pcap of Ethernet/IPv4/UDP frames.

    Enough for the files SIPp ships (g711a.pcap, dtmf_2833_*.pcap), to know
    what a receiver should get.  Raises :class:`PeerError` otherwise.
    """
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise PeerError(f"{path}: too short for a pcap file")
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        order = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        order = ">"
    else:
        raise PeerError(f"{path}: not a classic pcap file")
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    if linktype != 1:
        raise PeerError(f"{path}: link type {linktype}, only Ethernet (1) is read")
    packets = []
    offset = 24
    while offset + 16 <= len(data):
        captured = struct.unpack_from(order + "I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        if len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ip_header = (frame[14] & 0x0F) * 4
        rtp = frame[14 + ip_header + 8 :]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        header = 12 + 4 * (rtp[0] & 0x0F)
        sequence, timestamp, ssrc = struct.unpack_from("!HII", rtp, 2)
        packets.append(
            PcapRtp(
                payload_type=rtp[1] & 0x7F,
                marker=bool(rtp[1] & 0x80),
                sequence=sequence,
                timestamp=timestamp,
                ssrc=ssrc,
                payload=bytes(rtp[header:]),
            )
        )
    return packets


def write_rtp_pcap(
    path: str | os.PathLike[str],
    payloads: Sequence[bytes],
    *,
    payload_type: int = 0,
    ptime_ms: int = 20,
    ssrc: int = 0x436F736D,
    sequence: int = 1000,
    timestamp: int = 160_000,
) -> Path:
    """Write a classic pcap of Ethernet/IPv4/UDP/RTP frames, one per payload, ``ptime_ms`` apart.

    SIPp's ``play_pcap_audio`` replays the RTP of such a file with its
    recorded timing (the addresses in the frames are ignored), so a test can
    send any audio it made, e.g. in-band DTMF.  Each payload advances the
    RTP timestamp by its length (one byte per sample: G.711).
    """
    frames = []
    for index, payload in enumerate(payloads):
        rtp = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if index == 0 else 0) | payload_type,
            (sequence + index) & 0xFFFF,
            (timestamp + index * len(payload)) & 0xFFFFFFFF,
            ssrc,
        ) + payload
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index & 0xFFFF, 0, 64, 17, 0,
                         bytes((127, 0, 0, 1)), bytes((127, 0, 0, 1))) + udp
        ethernet = bytes(12) + b"\x08\x00" + ip
        micros = index * ptime_ms * 1000
        frames.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(ethernet), len(ethernet)))
        frames.append(ethernet)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    out = Path(path)
    out.write_bytes(header + b"".join(frames))
    return out
