#!/usr/bin/env python3
"""Concurrent media calls through Cosmo: prompt calls and bridged pairs, on one core.

Two kinds of load, each against a real ``cosmo serve`` pinned to CPU 1, made
by ``bench/media_peer.py`` (a separate process, pinned to CPU 0):

* ``prompt``: N callers dial a configured number; Cosmo plays the welcome
  prompt, then loops music on hold.  The callers send 20 ms audio as phones do.
* ``bridge``: N callers dial ``9…``; Cosmo routes the call out through a
  trunk whose peer is the generator's UAS (media anchored), so Cosmo relays
  20 ms audio both ways between two legs: N pairs, 2N streams.

For each N the generator sets the calls up, waits for them to settle, then
measures for ``--seconds``, timed by the kernel at the receiving socket: the
p99 deviation of the inter-arrival time of what Cosmo sends from 20 ms,
frames lost (sequence gaps) and missing (holes in time with a continuous
sequence: the media clock skipped ticks), and for bridges frames of the far
leg that never came through and the relay delay.  Meanwhile this script reads
Cosmo's CPU time and RSS from ``/proc``.  A step passes when every call was
set up (and bridged), p99 jitter ≤ ``--jitter-ms`` and no frame was lost,
missing or dropped by the kernel on Cosmo's sockets; the steps of a mode
stop at the first failure.  Reported per mode: the largest passing N.

    python bench/media_calls.py [--mode both|prompt|bridge]
                                [--prompt-steps 100,200,...] [--bridge-steps 50,100,...]
                                [--seconds 10] [--settle 10] [--rate 50] [--repeat 1]
                                [--jitter-ms 5] [--json out.json] [--profile DIR]
                                [--cosmo-tree DIR] [--keep] [--no-pin]

``--cosmo-tree DIR`` runs the server from another checkout (before/after
figures of a change).  ``--profile DIR`` records the measuring window of
every step with ``py-spy``.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from benchlib import LOOPBACK, BenchError, free_port, pinned, read, stop

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
PEER = BENCH / "media_peer.py"
TOKEN = "demo-admin-token"
COSMO_CPU = 1
PEER_CPU = 0
COSMO_RTP = (33000, 39998)  # Cosmo's RTP ports; the generator's start at PEER_RTP
PEER_RTP = 42000
PROMPT_NUMBER = "+15550100"
BRIDGE_NUMBER = "91000"
DEFAULT_PROMPT_STEPS = (100, 200, 300, 400, 600, 800, 1000, 1200)
DEFAULT_BRIDGE_STEPS = (50, 100, 150, 200, 300, 400, 500, 600)
TARGETS = {"prompt": 1000, "bridge": 500}
GENERATOR_LATE_MS = 2.0  # p99 send lateness above which the generator, not Cosmo, may be the limit


# --------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def udp_drops(low: int, high: int) -> int:
    """Datagrams the kernel dropped (full receive buffer) on 127.0.0.1 ports ``low..high``."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        address, _, port = fields[1].partition(":")
        if address == "0100007F" and low <= int(port, 16) <= high:
            total += int(fields[-1])
    return total


# --------------------------------------------------------------------------- Cosmo


@dataclass
class Cosmo:
    """A running ``cosmo serve``."""

    proc: subprocess.Popen[bytes]
    sip_port: int
    http_port: int
    log: Path

    def api(self, path: str) -> Any:
        request = urllib.request.Request(f"http://{LOOPBACK}:{self.http_port}{path}")
        request.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/healthz", timeout=1) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def wait_idle(self, timeout: float) -> bool:
        """Until no call, session or transaction is left (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                stats = self.api("/api/sip/stats")
            except (OSError, urllib.error.URLError):
                stats = None
            if stats is not None and not any(stats.get(key) for key in
                                              ("calls", "sessions", "client_transactions", "server_transactions")):
                return True
            time.sleep(0.5)
        return False


def start_cosmo(workdir: Path, tree: Path, uas_port: int, cpu: int | None) -> Cosmo:
    """``cosmo serve`` from ``tree`` with the demo configuration, plus a transit route to the generator's UAS."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = yaml.safe_load((tree / "config" / "cosmo.yaml").read_text())
    sip_port, http_port = free_port(), free_port()
    settings["data_dir"] = str(workdir / "cosmo-data")
    settings["log_level"] = "WARNING"
    settings["sip"]["listen"] = [{"transport": "udp", "host": LOOPBACK, "port": sip_port}]
    # Transactions linger 64*T1 after a call; a short T1 lets a step end sooner (loopback loses nothing).
    settings["sip"]["t1"] = 0.1
    settings["http"] = {"host": LOOPBACK, "port": http_port}
    settings["rtp"] = {"host": LOOPBACK, "port_min": COSMO_RTP[0], "port_max": COSMO_RTP[1]}
    # The demo number: welcome prompt, then its queue's music on hold (no agent is
    # logged in); position announcements off, so every caller hears the loop.
    for queue in settings["queues"]:
        queue["announce_interval_s"] = None
    for trunk in settings["trunks"]:
        if trunk["name"] == "demo":
            trunk["inbound"]["sources"] = [f"{LOOPBACK}/32"]
            trunk["inbound"]["transit"] = True
    settings["trunks"].append({
        "name": "carrier",
        "inbound": {"sources": []},
        "outbound": {"host": LOOPBACK, "port": uas_port, "transport": "udp"},
        "register": {"enabled": False},
        "media": "anchor",
    })
    settings["routes"] = [{"pattern": r"^9(\d+)$", "trunk": "carrier", "strip": 1, "prefix": ""}]
    config = workdir / "cosmo.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    log = workdir / "cosmo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMO_")}
    env["PYTHONPATH"] = str(tree)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            pinned(cpu, [sys.executable, "-m", "cosmo.cli", "serve", "--config", str(config)]),
            cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )
    cosmo = Cosmo(proc, sip_port, http_port, log)
    deadline = time.monotonic() + 60
    while not cosmo.healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise BenchError(f"cosmo serve did not start:\n{read(log)[-3000:]}")
        time.sleep(0.1)
    return cosmo


# --------------------------------------------------------------------------- one step


@dataclass
class Step:
    """One run of one mode at one N."""

    mode: str
    calls: int
    established: int = 0
    bridged: int = 0
    setup_s: float = 0.0
    setup_failures: dict[str, int] = field(default_factory=dict)
    streams: int = 0
    silent_streams: int = 0
    received: int = 0
    expected: int = 0
    lost: int = 0
    missing: int = 0
    relay_lost: int = 0
    reordered: int = 0
    cosmo_drops: int = 0
    peer_drops: int = 0
    unexpected_byes: int = 0
    bye_failures: int = 0
    jitter_p50_ms: float | None = None
    jitter_p99_ms: float | None = None
    jitter_max_ms: float | None = None
    relay_delay_p50_ms: float | None = None
    relay_delay_p99_ms: float | None = None
    added_jitter_p99_ms: float | None = None  # bridges: p99 change of relay delay between frames
    peer_late_p99_ms: float | None = None
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    rss_per_call_kb: float = 0.0
    idle_after: bool = True
    late_frames: list[list[float]] = field(default_factory=list)  # (s into the window, stream, ms), first 500
    passed: bool = False
    why: str = ""
    error: str = ""

    @property
    def dropped(self) -> int:
        return self.lost + self.missing + self.relay_lost + self.cosmo_drops

    def judge(self, jitter_ms: float) -> None:
        reasons = []
        if self.error:
            reasons.append(self.error)
        if self.established < self.calls:
            reasons.append(f"{self.calls - self.established} calls not set up {self.setup_failures}")
        if self.mode == "bridge" and self.bridged < self.established:
            reasons.append(f"{self.established - self.bridged} calls not bridged")
        if self.silent_streams:
            reasons.append(f"{self.silent_streams} silent streams")
        if self.jitter_p99_ms is None or self.jitter_p99_ms > jitter_ms:
            reasons.append(f"p99 jitter {self.jitter_p99_ms} ms")
        if self.dropped:
            reasons.append(f"dropped {self.dropped} (lost {self.lost}, missing {self.missing}, "
                           f"relay {self.relay_lost}, kernel {self.cosmo_drops})")
        if self.unexpected_byes:
            reasons.append(f"{self.unexpected_byes} calls hung up by Cosmo")
        self.passed = not reasons
        self.why = "; ".join(reasons)


def run_step(cosmo: Cosmo, mode: str, calls: int, args: argparse.Namespace, uas_port: int,
             baseline_rss: int, workdir: Path, profile: Path | None) -> Step:
    step = Step(mode, calls)
    argv = [sys.executable, str(PEER), "--mode", mode, "--cosmo-port", str(cosmo.sip_port),
            "--number", PROMPT_NUMBER if mode == "prompt" else BRIDGE_NUMBER,
            "--calls", str(calls), "--rate", str(args.rate), "--settle", str(args.settle),
            "--seconds", str(args.seconds), "--uac-port", str(free_port()), "--rtp-base", str(PEER_RTP)]
    if mode == "bridge":
        argv += ["--uas-port", str(uas_port)]
    errors = workdir / f"peer-{mode}-{calls}.log"
    pid = cosmo.proc.pid
    spy: subprocess.Popen[bytes] | None = None
    with errors.open("ab") as err:
        peer = subprocess.Popen(pinned(None if args.no_pin else PEER_CPU, argv), stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL, text=True)
    cpu0 = wall0 = 0.0
    rss_samples: list[int] = []
    try:
        assert peer.stdout is not None
        for line in peer.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            event = record.get("event")
            if event == "established":
                step.setup_s = record["setup_s"]
            elif event == "window" and record["phase"] == "start":
                cpu0, wall0 = cpu_seconds(pid), time.monotonic()
                rss_samples.append(rss_bytes(pid))
                if profile is not None:
                    spy = start_py_spy(pid, profile / f"{mode}-{calls}", args.seconds)
            elif event == "window" and record["phase"] == "end":
                step.cpu_percent = round((cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0) * 100, 1)
                rss_samples.append(rss_bytes(pid))
                step.cosmo_drops = udp_drops(*COSMO_RTP)
                step.peer_drops = udp_drops(PEER_RTP, 65535)
            elif event == "result":
                fill(step, record)
            elif event == "error":
                step.error = record["error"]
        peer.wait(timeout=120)
    finally:
        stop(peer)
        stop(spy, signal.SIGINT)
    if peer.returncode not in (0, None) and not step.error:
        step.error = f"generator exited with {peer.returncode}: {read(errors)[-500:]}"
    if rss_samples:
        rss = max(rss_samples)
        step.rss_mb = round(rss / 2**20, 1)
        step.rss_per_call_kb = round((rss - baseline_rss) / 1024 / max(1, calls), 1)
    step.idle_after = cosmo.wait_idle(30)
    if cosmo.proc.poll() is not None:
        step.error = f"cosmo exited with {cosmo.proc.returncode}"
    step.judge(args.jitter_ms)
    return step


def fill(step: Step, record: dict[str, Any]) -> None:
    for name in ("late_frames", "established", "bridged", "setup_failures", "streams", "silent_streams", "received", "expected",
                 "lost", "missing", "relay_lost", "reordered", "unexpected_byes", "bye_failures"):
        if name in record:
            setattr(step, name, record[name])
    jitter = record.get("jitter_ms") or {}
    step.jitter_p50_ms, step.jitter_p99_ms, step.jitter_max_ms = jitter.get("p50"), jitter.get("p99"), jitter.get("max")
    delay = record.get("relay_delay_ms") or {}
    step.relay_delay_p50_ms, step.relay_delay_p99_ms = delay.get("p50"), delay.get("p99")
    step.added_jitter_p99_ms = (record.get("added_jitter_ms") or {}).get("p99")
    late = record.get("send_lateness_ms") or {}
    step.peer_late_p99_ms = late.get("p99")


def start_py_spy(pid: int, path: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    spy = Path(sys.executable).parent / "py-spy"
    binary = str(spy) if spy.exists() else shutil.which("py-spy")
    if binary is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
            "--nonblocking", "--format", "raw", "--output", f"{path}.txt"]
    return subprocess.Popen(pinned(PEER_CPU, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def median_step(runs: list[Step]) -> Step:
    """The runs of one N as one step: medians of the figures; it passes only when every run passed."""
    if len(runs) == 1:
        return runs[0]
    merged = Step(runs[0].mode, runs[0].calls)
    for name, value in asdict(runs[0]).items():
        values = [getattr(run, name) for run in runs]
        if isinstance(value, bool):
            setattr(merged, name, all(values))
        elif isinstance(value, (int, float)) and value is not None:
            numbers = [v for v in values if v is not None]
            median = statistics.median(numbers)
            setattr(merged, name, type(value)(median) if isinstance(value, int) else round(median, 3))
        elif name.endswith("_ms"):
            numbers = [v for v in values if v is not None]
            setattr(merged, name, round(statistics.median(numbers), 3) if numbers else None)
    merged.passed = all(run.passed for run in runs)
    merged.why = " | ".join(run.why for run in runs if run.why)
    merged.setup_failures = runs[-1].setup_failures
    return merged


# --------------------------------------------------------------------------- report


def print_step(step: Step) -> None:
    print(f"  {step.mode:6} N={step.calls:5d}  set up {step.established}/{step.calls}"
          + (f" bridged {step.bridged}" if step.mode == "bridge" else "")
          + f" in {step.setup_s:.0f} s  jitter p50/p99/max {fmt(step.jitter_p50_ms)}/{fmt(step.jitter_p99_ms)}"
          f"/{fmt(step.jitter_max_ms)} ms  dropped {step.dropped}  CPU {step.cpu_percent:.0f} %"
          f"  RSS {step.rss_mb:.0f} MB ({step.rss_per_call_kb:.0f} kB/call)"
          + (f"  added p99 {fmt(step.added_jitter_p99_ms)} ms" if step.mode == "bridge" else "")
          + f"  gen late p99 {fmt(step.peer_late_p99_ms)} ms  {'PASS' if step.passed else 'FAIL: ' + step.why}",
          flush=True)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_report(results: dict[str, list[Step]], args: argparse.Namespace) -> None:
    print(f"\nCosmo pinned to CPU {COSMO_CPU}, generator to CPU {PEER_CPU}; window {args.seconds:g} s, "
          f"repeat {args.repeat}; pass: p99 jitter <= {args.jitter_ms:g} ms, no dropped frame")
    header = (f"{'mode':6} {'N':>5} {'streams':>7} {'jit p50':>7} {'jit p99':>7} {'jit max':>7} {'drops':>6}"
              f" {'CPU %':>6} {'CPU%/call':>9} {'RSS MB':>7} {'kB/call':>7} {'relay p99':>9} {'added p99':>9}"
              f" {'gen late':>8}  result")
    print(header)
    for mode, steps in results.items():
        for s in steps:
            per_call = s.cpu_percent / s.calls if s.calls else 0.0
            print(f"{mode:6} {s.calls:5d} {s.streams:7d} {fmt(s.jitter_p50_ms):>7} {fmt(s.jitter_p99_ms):>7}"
                  f" {fmt(s.jitter_max_ms):>7} {s.dropped:6d} {s.cpu_percent:6.1f} {per_call:9.3f}"
                  f" {s.rss_mb:7.1f} {s.rss_per_call_kb:7.1f} {fmt(s.relay_delay_p99_ms):>9}"
                  f" {fmt(s.added_jitter_p99_ms):>9}"
                  f" {fmt(s.peer_late_p99_ms):>8}  {'pass' if s.passed else 'FAIL'}")
    print()
    for mode, steps in results.items():
        passing = [s.calls for s in steps if s.passed]
        best = max(passing) if passing else 0
        unit = "prompt calls" if mode == "prompt" else "bridged pairs"
        verdict = "meets" if best >= TARGETS[mode] else "below"
        print(f"{mode}: largest passing N = {best} {unit} (target {TARGETS[mode]}: {verdict})")
        late = [s for s in steps if (s.peer_late_p99_ms or 0) > GENERATOR_LATE_MS]
        if late:
            print(f"  note: generator send lateness p99 > {GENERATOR_LATE_MS} ms at N = "
                  f"{', '.join(str(s.calls) for s in late)} (load not clean)")


# --------------------------------------------------------------------------- main


def parse_steps(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("both", "prompt", "bridge"), default="both")
    parser.add_argument("--prompt-steps", type=parse_steps, default=list(DEFAULT_PROMPT_STEPS))
    parser.add_argument("--bridge-steps", type=parse_steps, default=list(DEFAULT_BRIDGE_STEPS))
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window per step")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds from the last call set up to the window (past the welcome prompt and queue entry)")
    parser.add_argument("--rate", type=float, default=50.0, help="calls set up per second")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; figures are medians")
    parser.add_argument("--jitter-ms", type=float, default=5.0, help="largest passing p99 jitter")
    parser.add_argument("--all-steps", action="store_true", help="go on after a failing step")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles of each window into this directory")
    parser.add_argument("--cosmo-tree", type=Path, default=REPO, help="checkout to run cosmo serve from")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.seconds <= 0:
        parser.error("--repeat must be >= 1 and --seconds > 0")
    cosmo_cpu: int | None = None
    if not args.no_pin:
        cpus = os.sched_getaffinity(0)
        if not {COSMO_CPU, PEER_CPU} <= cpus or shutil.which("taskset") is None:
            print(f"needs CPUs {PEER_CPU} and {COSMO_CPU} and taskset (have {sorted(cpus)}); use --no-pin",
                  file=sys.stderr)
            return 2
        os.sched_setaffinity(0, {PEER_CPU})
        cosmo_cpu = COSMO_CPU

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    modes = ["prompt", "bridge"] if args.mode == "both" else [args.mode]
    workdir = Path(tempfile.mkdtemp(prefix="media-calls-"))
    results: dict[str, list[Step]] = {}
    runs: list[Step] = []
    started = time.monotonic()
    cosmo: Cosmo | None = None
    try:
        for mode in modes:
            uas_port = free_port()
            cosmo = start_cosmo(workdir / mode, args.cosmo_tree.resolve(), uas_port, cosmo_cpu)
            time.sleep(2)
            baseline = rss_bytes(cosmo.proc.pid)
            print(f"{mode}: cosmo serve PID {cosmo.proc.pid}, idle RSS {baseline / 2**20:.0f} MB", flush=True)
            results[mode] = []
            for calls in (args.prompt_steps if mode == "prompt" else args.bridge_steps):
                attempts = []
                for _ in range(args.repeat):
                    step = run_step(cosmo, mode, calls, args, uas_port, baseline, workdir, args.profile)
                    print_step(step)
                    attempts.append(step)
                    runs.append(step)
                    if step.error:
                        break
                merged = median_step(attempts)
                results[mode].append(merged)
                if not merged.passed and not args.all_steps:
                    break
            stop(cosmo.proc)
            cosmo = None
        print_report(results, args)
        print(f"\ntotal {time.monotonic() - started:.0f} s" + (f"; work directory {workdir}" if args.keep else ""))
        if args.json is not None:
            args.json.write_text(json.dumps({
                "cosmo_cpu": cosmo_cpu, "peer_cpu": None if args.no_pin else PEER_CPU,
                "seconds": args.seconds, "settle": args.settle, "rate": args.rate, "repeat": args.repeat,
                "cosmo_tree": str(args.cosmo_tree),
                "steps": {mode: [asdict(s) for s in steps] for mode, steps in results.items()},
                "runs": [asdict(s) for s in runs],
            }, indent=2))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if cosmo is not None:
            stop(cosmo.proc)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
