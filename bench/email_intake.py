#!/usr/bin/env python3
"""E-mail intake: messages per second stored durably and classified, and the time from 250 to a routable item.

Each step starts a fresh ``cosmo serve`` (demo configuration, log level
WARNING, SQLite in a temporary data directory, ``fsync`` of every stored
message on, the demo's classification rules and auto-acknowledge on) pinned
to CPU 1; this script runs on CPU 0.  It keeps an SMTP sink for the relay
(the acknowledgements go out for real, three per sender and hour) and opens
``C`` concurrent SMTP connections (aiosmtplib) to the intake, each sending
customer-like messages (about 1.2 kB, plain text, from a pool of 200 sender
addresses, so customers are created and then found) back to back for
``--seconds``.  A message counts as accepted when its ``250`` arrives: by
then Cosmo has written the raw message, synced it and committed its row.

After the window the script waits until every accepted message has its
work item in the ACD, then reads Cosmo's database (read-only): the time a
message's work item was stored by the ACD (which adds it to the router
right after) minus the time the client saw the ``250``.  Reported per step:

* **accepted/s**: messages that got ``250`` per second of the window;
* **250 p50/p99**: the SMTP transaction as the client sees it (MAIL to 250);
* **routable p50/p99/max**: from the client's ``250`` to the work item
  (parse, thread, classify, case, customer, the ACD's stored item);
* **routed/s**: work items per second from the first ``250`` to the last
  item (below accepted/s means routing falls behind the intake for a burst
  that long);
* Cosmo's CPU share over the window, and its CPU time per accepted message
  from the first ``250`` until the last work item (``/proc/PID/stat``): the
  figure that does not depend on what else the machine is doing, and gives
  the capacity of one core (1000 / ms per message).

    python bench/email_intake.py [--senders 1,4,8,16] [--seconds 10] [--repeat 1]
                                 [--no-fsync] [--no-ack] [--json out.json] [--keep] [--profile DIR] [--no-pin]

The issue's target is 200 messages per second accepted durably.  Everything
the script starts is stopped by its PID, including on Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This script is named like the standard library's ``email`` package: take its own directory off the
# front of the import path (aiosmtplib, urllib and the server import ``email``), and look there last.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE] + [str(_HERE)]

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session
from benchlib import LOOPBACK, BenchError, free_port, pinned, read, stop

REPO = Path(__file__).resolve().parents[1]
TARGET = 200.0
SENDER_POOL = 200
WARMUP = 20
BODY = (
    "Hello,\n\n"
    "I ordered a replacement part for my coffee machine three weeks ago and it has not arrived yet.\n"
    "The tracking page has not changed since the parcel left your warehouse, and nobody answers the\n"
    "phone number on the delivery note.  Could you please check where it is, and if it is lost, send\n"
    "a new one?  My customer number is in the signature below.  I am at home most afternoons.\n\n"
    "Thank you for your help,\n{name}\n\n--\n{name}\nCustomer 10{n:05d}\n"
)


def message(step: str, n: int, sender: str) -> bytes:
    name = sender.partition("@")[0].replace(".", " ").title()
    return (
        f"From: {name} <{sender}>\r\n"
        f"To: Example Support <support@example.com>\r\n"
        f"Subject: Where is my order? bench-{step}-{n}\r\n"
        f"Date: {datetime.now(UTC):%a, %d %b %Y %H:%M:%S +0000}\r\n"
        f"Message-ID: <bench-{step}-{n}@load.example>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + BODY.format(name=name, n=n).replace("\n", "\r\n")
    ).encode()


# --------------------------------------------------------------------------- Cosmo


@dataclass
class Cosmo:
    """A running ``cosmo serve``."""

    proc: subprocess.Popen[bytes]
    http_port: int
    smtp_port: int
    database: Path
    log: Path

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/healthz", timeout=1) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False


def start_cosmo(workdir: Path, relay_port: int, fsync: bool, ack: bool, cpu: int | None) -> Cosmo:
    workdir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = yaml.safe_load((REPO / "config" / "cosmo.yaml").read_text())
    sip_port, http_port, smtp_port = free_port(), free_port(), free_port()
    data_dir = workdir / "cosmo-data"
    settings["data_dir"] = str(data_dir)
    settings["log_level"] = "WARNING"
    settings["sip"]["listen"] = [{"transport": "udp", "host": LOOPBACK, "port": sip_port}]
    settings["http"] = {"host": LOOPBACK, "port": http_port}
    email = settings["email"]
    email["smtp"]["port"] = smtp_port
    email["relay"].update(host=LOOPBACK, port=relay_port)
    email["fsync"] = fsync
    email["auto_ack"]["enabled"] = ack
    config = workdir / "cosmo.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    log = workdir / "cosmo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMO_")}
    env["PYTHONPATH"] = str(REPO)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            pinned(cpu, [sys.executable, "-m", "cosmo.cli", "serve", "--config", str(config)]),
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )
    cosmo = Cosmo(proc, http_port, smtp_port, data_dir / "cosmo.db", log)
    deadline = time.monotonic() + 60
    while not cosmo.healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise BenchError(f"cosmo serve did not start:\n{read(log)[-3000:]}")
        time.sleep(0.1)
    return cosmo


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def routable(database: Path, step: str) -> dict[int, float]:
    """Message number -> POSIX time its work item was stored by the ACD (from Cosmo's database)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute(
            "SELECT m.message_id, w.created_at FROM email_messages m JOIN work_items w "
            "ON w.id = 'email-' || m.case_id || '-1' WHERE m.direction = 'in' AND m.message_id LIKE ?",
            (f"<bench-{step}-%",),
        ).fetchall()
    out = {}
    for message_id, created in rows:
        n = int(message_id.split("-")[-1].split("@")[0])
        out[n] = datetime.fromisoformat(created).replace(tzinfo=UTC).timestamp()
    return out


# --------------------------------------------------------------------------- the sink


class Sink:
    """The relay's peer: counts what Cosmo sends (acknowledgements)."""

    def __init__(self) -> None:
        self.received = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received += 1
        return "250 2.0.0 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SMTP(self, hostname="sink.bench"), LOOPBACK, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


# --------------------------------------------------------------------------- one step


@dataclass
class Step:
    senders: int
    seconds: float
    accepted: int = 0
    refused: int = 0
    accepted_per_s: float = 0.0
    smtp_p50_ms: float = 0.0
    smtp_p99_ms: float = 0.0
    routable_p50_ms: float = 0.0
    routable_p99_ms: float = 0.0
    routable_max_ms: float = 0.0
    routed_per_s: float = 0.0
    cpu_percent: float = 0.0
    cpu_ms_per_message: float = 0.0
    acks: int = 0
    missing: int = 0
    error: str = ""
    samples: list[float] = field(default_factory=list, repr=False)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def load(port: int, step: str, senders: int, seconds: float, first: int
               ) -> tuple[dict[int, float], list[float], int]:
    """``senders`` connections sending back to back for ``seconds``; (n -> time of its 250, durations, refused)."""
    accepted: dict[int, float] = {}
    durations: list[float] = []
    refused = 0
    counter = iter(range(first, 10**9))
    pool = [f"customer.{i:03d}@load{i % 7}.example" for i in range(SENDER_POOL)]
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal refused
        client = aiosmtplib.SMTP(hostname=LOOPBACK, port=port, timeout=30, start_tls=False)
        await client.connect()
        try:
            while time.monotonic() < deadline:
                n = next(counter)
                sender = random.choice(pool)
                raw = message(step, n, sender)
                started = time.time()
                try:
                    await client.sendmail(sender, ["support@example.com"], raw)
                except aiosmtplib.SMTPException:
                    refused += 1
                    continue
                done = time.time()
                accepted[n] = done
                durations.append(done - started)
        finally:
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                pass

    await asyncio.gather(*(connection() for _ in range(senders)))
    return accepted, durations, refused


async def run_step(senders: int, args: argparse.Namespace, workdir: Path, index: int) -> Step:
    result = Step(senders, args.seconds)
    sink = Sink()
    await sink.start()
    cosmo = start_cosmo(workdir / f"step-{index}", sink.port, args.fsync, args.ack, None if args.no_pin else 1)
    step = f"{index}"
    try:
        warm = await warm_up(cosmo.smtp_port, step, WARMUP)
        await wait_routable(cosmo, step, warm, 60)
        spy = start_py_spy(cosmo.proc.pid, Path(args.profile) / f"senders-{senders}-{index}.txt",
                           args.seconds) if args.profile else None
        cpu_before = cpu_seconds(cosmo.proc.pid)
        started = time.monotonic()
        accepted, durations, refused = await load(cosmo.smtp_port, step, senders, args.seconds, WARMUP)
        window = time.monotonic() - started
        if spy is not None:
            await asyncio.to_thread(spy.wait, 60)
        cpu_window = cpu_seconds(cosmo.proc.pid) - cpu_before
        done = await wait_routable(cosmo, step, set(accepted), 120)
        cpu_all = cpu_seconds(cosmo.proc.pid) - cpu_before
        result.accepted, result.refused = len(accepted), refused
        result.accepted_per_s = len(accepted) / window
        result.smtp_p50_ms = percentile(durations, 0.5) * 1000
        result.smtp_p99_ms = percentile(durations, 0.99) * 1000
        latencies = [(done[n] - t) * 1000 for n, t in accepted.items() if n in done]
        result.missing = len(accepted) - len(latencies)
        result.routable_p50_ms = percentile(latencies, 0.5)
        result.routable_p99_ms = percentile(latencies, 0.99)
        result.routable_max_ms = max(latencies, default=0.0)
        span = max((done[n] for n in accepted if n in done), default=0.0) - min(accepted.values(), default=0.0)
        result.routed_per_s = len(latencies) / span if span > 0 else 0.0
        result.cpu_percent = 100 * cpu_window / window
        result.cpu_ms_per_message = 1000 * cpu_all / len(accepted) if accepted else 0.0
        result.acks = sink.received
        result.samples = latencies
    except (BenchError, OSError, aiosmtplib.SMTPException) as exc:
        result.error = str(exc)
    finally:
        stop(cosmo.proc)
        await sink.stop()
    return result


def start_py_spy(pid: int, path: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of Cosmo for the window (raw collapsed stacks), when py-spy is installed."""
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(spy, os.X_OK):
        print("  (py-spy not found: no profile)")
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        pinned(0, [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
                   "--nonblocking", "--format", "raw", "--output", str(path)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def warm_up(port: int, step: str, count: int) -> set[int]:
    """A few messages first (imports, caches, the database's first pages); their numbers."""
    client = aiosmtplib.SMTP(hostname=LOOPBACK, port=port, timeout=30, start_tls=False)
    await client.connect()
    try:
        for n in range(count):
            sender = f"warmup{n}@load.example"
            await client.sendmail(sender, ["support@example.com"], message(step, n, sender))
    finally:
        await client.quit()
    return set(range(count))


async def wait_routable(cosmo: Cosmo, step: str, wanted: set[int], timeout: float) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    while True:
        done = await asyncio.to_thread(routable, cosmo.database, step)
        if wanted <= done.keys():
            return done
        if time.monotonic() > deadline or cosmo.proc.poll() is not None:
            raise BenchError(f"{len(wanted - done.keys())} of {len(wanted)} messages not routable after {timeout} s")
        await asyncio.sleep(0.2)


# --------------------------------------------------------------------------- report


def median_step(runs: list[Step]) -> Step:
    if len(runs) == 1:
        return runs[0]
    out = Step(runs[0].senders, runs[0].seconds)
    for name in ("accepted", "refused", "accepted_per_s", "smtp_p50_ms", "smtp_p99_ms", "routable_p50_ms",
                 "routable_p99_ms", "routable_max_ms", "routed_per_s", "cpu_percent", "cpu_ms_per_message", "acks",
                 "missing"):
        setattr(out, name, statistics.median(getattr(r, name) for r in runs))
    out.error = "; ".join(r.error for r in runs if r.error)
    return out


def print_step(step: Step) -> None:
    if step.error:
        print(f"  senders {step.senders:3d}: ERROR {step.error}")
        return
    print(f"  senders {step.senders:3d}: accepted {step.accepted_per_s:7.1f}/s ({step.accepted} in {step.seconds:g} s, "
          f"{step.refused} refused)  250 p50/p99 {step.smtp_p50_ms:6.1f}/{step.smtp_p99_ms:6.1f} ms  "
          f"routable p50/p99/max {step.routable_p50_ms:7.1f}/{step.routable_p99_ms:7.1f}/{step.routable_max_ms:7.1f} ms"
          f"  routed {step.routed_per_s:6.1f}/s  Cosmo CPU {step.cpu_percent:5.1f} % "
          f"({step.cpu_ms_per_message:4.1f} ms/message)  acks {step.acks}")


async def main_async(args: argparse.Namespace) -> int:
    if not args.no_pin:
        try:
            os.sched_setaffinity(0, {0})
        except OSError:
            pass
    workdir = Path(tempfile.mkdtemp(prefix="cosmo-bench-email-"))
    results: list[Step] = []
    print(f"e-mail intake: {args.seconds:g} s per step, fsync {'on' if args.fsync else 'off'}, "
          f"acknowledgements {'on' if args.ack else 'off'}, "
          f"Cosmo {'pinned to CPU 1' if not args.no_pin else 'not pinned'}; work dir {workdir}")
    try:
        index = 0
        for senders in args.senders:
            runs = []
            for _ in range(args.repeat):
                runs.append(await run_step(senders, args, workdir, index))
                index += 1
            step = median_step(runs)
            results.append(step)
            print_step(step)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    best = max((s.accepted_per_s for s in results if not s.error), default=0.0)
    print(f"best: {best:.1f} messages/s accepted durably (target {TARGET:g}): {'met' if best >= TARGET else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "seconds": args.seconds, "fsync": args.fsync, "ack": args.ack,
            "steps": [{k: v for k, v in asdict(s).items() if k != "samples"} for s in results],
        }, indent=2))
    return 0 if best >= TARGET else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--senders", type=lambda t: [int(x) for x in t.split(",")], default=[1, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-fsync", dest="fsync", action="store_false", help="skip the syncs (not durable)")
    parser.add_argument("--no-ack", dest="ack", action="store_false", help="auto-acknowledge off")
    parser.add_argument("--json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    parser.add_argument("--profile", help="record each step's window with py-spy into this directory")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
