#!/usr/bin/env python3
"""CTI fan-out: 1,000 agent desktops on ``/cti``, offers and state changes at 100/s.

Two processes on 127.0.0.1:

* the **server** (this script with ``serve``, pinned to CPU 1): the web room as
  the composition root mounts it — aiohttp, the CTI hub, a real
  :class:`~cosmo.acd.service.AcdService` on SQLite, the event bus — with
  ``--agents`` agents (one web user each, sessions made up front) and a
  voice channel without phones: an offer awaits the hub's ``pop()`` (as the
  real one does before the INVITE), is answered ``--answer-ms`` later,
  handled ``--handle-s`` seconds (±50 %), then wrap-up (``--wrap-s``).
  Calls arrive at ``--rate`` per second, spread over ``--queues`` queues, and
  idle agents take a break and come back at ``--toggles`` state changes per
  second, both for ``--seconds`` after a ``--warmup``;
* the **desktops** (the script itself, CPU 0): one WebSocket per agent, one
  uvloop event loop; each says ``hello``, goes available, answers ``ping``
  and acknowledges every ``offer`` with ``seen``, as the browser does.

Measured: for every ``offer`` the time from the router's decision (the
message's ``ts``) to its arrival at the desktop, the same for every
``agent_state`` (the event's time), ``pop()`` as the voice channel waits for
it, and the server's CPU (``getrusage`` over the load window, every thread)
and memory.  Both processes read the same clock.  Target: p99 decision →
desktop below 50 ms.

    python bench/cti.py [--agents 1000] [--rate 100] [--toggles 100] [--seconds 20]
                        [--warmup 3] [--queues 10] [--handle-s 4] [--wrap-s 1]
                        [--answer-ms 200] [--json out.json] [--keep] [--no-pin]

Needs nothing beyond Cosmo's own dependencies.  Everything it starts is
stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

# The repository root first, and not bench/ itself: a bench script named like a standard
# module would shadow it (bench/email_intake.py is named so that it does not).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchlib import (  # the repository root is on sys.path first
    BenchError,
    pinned,
    stop,
)

LOOPBACK = "127.0.0.1"
PASSWORD_HASH_OF = "bench"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": 1000 * percentile(values, 50), "p99_ms": 1000 * percentile(values, 99),
            "max_ms": 1000 * max(values) if values else float("nan"),
            "mean_ms": 1000 * statistics.fmean(values) if values else float("nan")}


# ---------------------------------------------------------------------------------------- server


async def serve(args: argparse.Namespace) -> None:
    from argon2 import PasswordHasher

    from cosmo.acd.errors import AcdError
    from cosmo.acd.model import Channel, OverflowTarget, WorkItem
    from cosmo.acd.service import AcdService
    from cosmo.config import AgentSettings, QueueSettings, Settings
    from cosmo.events.bus import EventBus
    from cosmo.server import settle_heap
    from cosmo.store.customers import CustomerRepository
    from cosmo.store.db import Database
    from cosmo.store.web import WebRepository
    from cosmo.web.app import HttpServer, create_app
    from cosmo.web.desktop import WebServices, add_web
    from cosmo.web.services import AcdDesk, AgentControls
    from cosmo.web.settings import WebSettings

    work = Path(args.dir)
    extensions = [str(2000 + n) for n in range(args.agents)]
    queues = [f"q{n}" for n in range(args.queues)]
    settings = Settings(
        data_dir=work,
        agents=[AgentSettings(extension=ext, name=f"Agent {ext}", password="x", skills={"all": 3})
                for ext in extensions],
        queues=[QueueSettings(name=q, skills={"all": 1}, wrap_up_s=args.wrap_s, ring_timeout_s=30)
                for q in queues],
    )
    database = Database(f"sqlite+aiosqlite:///{work}/cosmo.db")
    await database.start()
    bus = EventBus()
    acd = AcdService(settings, database, bus)
    await acd.start()
    if args.no_acd_writes:
        # Isolates the CTI: the ACD's durable write per agent-state change (one SQLite transaction
        # each) is what saturates the core at this load; batched, it would cost a fraction.
        acd._write = lambda write: None  # type: ignore[method-assign]
    customers = CustomerRepository(database)
    known = [await customers.add(f"Customer {n}", phone=f"+1555{n:07d}", account=f"{100000 + n}")
             for n in range(50)]
    store = WebRepository(database)
    hashed = PasswordHasher().hash(PASSWORD_HASH_OF)
    web_settings = WebSettings.model_validate({
        "users": [{"username": ext, "role": "agent", "extension": ext, "password": hashed} for ext in extensions],
        "heartbeat_interval_s": 15, "heartbeat_timeout_s": 45, "replay_messages": 100,
        "disconnect": {"state": "keep"},
    })
    pops: list[float] = []

    class Voice:
        """The voice channel without phones: pop, answer, talk, hang up."""

        def __init__(self) -> None:
            self.tasks: set[asyncio.Task[None]] = set()

        def offer(self, item: WorkItem, extension: str) -> None:
            task = asyncio.get_running_loop().create_task(self.ring(item, extension))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        async def ring(self, item: WorkItem, extension: str) -> None:
            view = {"id": item.id, "channel": "voice", "queue": item.queue, "priority": item.priority,
                    "enqueued_at": item.enqueued_at, "data": item.data}
            started = time.perf_counter()
            if not args.no_cti:
                await desk.hub.pop(extension, view)
            pops.append(time.perf_counter() - started)
            await asyncio.sleep(args.answer_ms / 1000)
            if not acd.accepted(item.id, extension):
                return
            await asyncio.sleep(args.handle_s * random.uniform(0.5, 1.5))
            acd.done(item.id)

        def withdraw(self, item: WorkItem, extension: str, reason: str) -> None:
            pass

        def overflow(self, item: WorkItem, target: OverflowTarget, reason: str) -> None:
            pass

    voice = Voice()
    acd.register_channel(Channel.VOICE, voice)
    services = WebServices(
        acd=cast(AcdDesk, acd), bus=bus, customers=customers, controls=cast(AgentControls, object()),
        users=store.users, sessions=store.sessions, knowledge=store.knowledge, dispositions=store.dispositions,
        settings=lambda: web_settings, api_tokens=list, reasons=lambda: settings.acd.reasons,
    )
    app = create_app()
    desk = add_web(app, services)
    fetch_times: list[float] = []
    original = desk.hub.desks._fetch_context

    async def timed(*a: Any) -> Any:  # how long the pop's store look-ups take under this load
        t = time.perf_counter()
        try:
            return await original(*a)
        finally:
            fetch_times.append(time.perf_counter() - t)

    desk.hub.desks._fetch_context = timed  # type: ignore[method-assign, assignment]
    server = HttpServer(app, LOOPBACK, 0, shutdown_timeout=2)
    await server.start()
    tokens = {}
    for ext in extensions:
        user = desk.users.get(ext)
        assert user is not None
        token, _ = await desk.sessions.create(user, 3600)
        tokens[ext] = token
    if args.no_cti:  # the baseline: the same load with nobody on /cti
        await desk.hub.close()
        for ext in extensions:
            acd.set_agent_state(ext, "available")
        tokens = {}
    (work / "ready.json").write_text(json.dumps({"port": server.port, "tokens": tokens}))

    settle_heap()  # as `cosmo serve` does once started
    # Wait for every desktop to be available.
    deadline = time.monotonic() + 120
    while sum(1 for a in acd.agents_view() if a["state"] == "available") < args.agents:
        if time.monotonic() > deadline:
            raise BenchError("the desktops did not all go available")
        await asyncio.sleep(0.2)

    stop_event = asyncio.Event()
    counter = {"calls": 0, "toggles": 0}

    async def calls() -> None:
        start = time.monotonic()
        while not stop_event.is_set():
            due = start + counter["calls"] / args.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            n = counter["calls"]
            counter["calls"] += 1
            customer = known[n % len(known)]
            data: dict[str, object] = {"call_id": f"c{n}", "caller": customer.phone,
                                       "ivr": {"account": customer.account, "menu": "billing"}}
            if n % 5:  # four callers in five were identified by the IVR; the others are looked up by number
                data["customer"] = customer.to_dict()
            await acd.enqueue(WorkItem(id=f"c{n}", channel=Channel.VOICE, queue=queues[n % len(queues)], data=data))

    async def toggles() -> None:
        start = time.monotonic()
        paused: list[str] = []
        while not stop_event.is_set():
            due = start + counter["toggles"] / args.toggles
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            counter["toggles"] += 1
            try:
                if paused and (len(paused) > 20 or random.random() < 0.5):
                    acd.set_agent_state(paused.pop(0), "available")
                else:
                    ext = random.choice(extensions)
                    if acd.agent_view(ext)["state"] == "available":
                        acd.set_agent_state(ext, "not_ready", "break")
                        paused.append(ext)
            except AcdError:
                pass

    load = [asyncio.ensure_future(calls()), asyncio.ensure_future(toggles())]
    await asyncio.sleep(args.warmup)
    pops.clear()
    counter_start = dict(counter)
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    wall_start = time.monotonic()
    (work / "window.json").write_text(json.dumps({"start": time.time()}))
    await asyncio.sleep(args.seconds)
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - wall_start
    window_end = time.time()
    stop_event.set()
    for task in load:
        task.cancel()
    await asyncio.gather(*load, return_exceptions=True)
    cpu = (usage_end.ru_utime - usage_start.ru_utime) + (usage_end.ru_stime - usage_start.ru_stime)
    rss_kib = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    stats = {
        "window": {"start": json.loads((work / "window.json").read_text())["start"], "end": window_end},
        "calls": counter["calls"] - counter_start["calls"], "toggles": counter["toggles"] - counter_start["toggles"],
        "seconds": wall, "cpu_s": cpu, "cpu_share": cpu / wall, "rss_mib": rss_kib / 1024,
        "pop": summary(pops), "pops_timed_out": desk.hub.desks.pops_timed_out, "fetch": summary(fetch_times[-int(args.rate * args.seconds):]),
    }
    (work / "stats.json").write_text(json.dumps(stats))
    await asyncio.sleep(2.0)  # let the desktops read what is in flight
    await server.close()
    await desk.close()
    await acd.close()
    await bus.close()
    await database.close()


# --------------------------------------------------------------------------------------- desktops


async def desktops(args: argparse.Namespace, port: int, tokens: dict[str, str], work: Path,
                   window_opened: Callable[[], None]) -> dict[str, Any]:
    import aiohttp

    offers: list[tuple[float, float]] = []   # (arrival, latency)
    decided: dict[str, float] = {}           # item -> decision time, for its offer_update
    updates: list[tuple[float, float]] = []
    states: list[tuple[float, float]] = []
    arrivals: list[float] = []
    counts = {"errors": 0}
    url = f"ws://{LOOPBACK}:{port}/cti"
    origin = f"http://{LOOPBACK}:{port}"
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    closing = asyncio.Event()

    handshakes = asyncio.Semaphore(50)  # a thousand handshakes, not all at once

    async def desktop(ext: str) -> None:
        async with handshakes:
            ws = await session.ws_connect(url, headers={"Origin": origin, "Cookie": f"cosmo_session={tokens[ext]}"},
                                          autoping=True, max_msg_size=0)
        async with ws:
            await ws.send_str('{"type":"hello"}')
            await ws.send_str('{"type":"state","state":"available"}')
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                now = time.time()
                message = json.loads(frame.data)
                arrivals.append(now)
                kind = message["type"]
                if kind == "offer":
                    offers.append((now, now - message["ts"]))
                    if message["history"] is None:
                        decided[message["item_id"]] = message["ts"]
                    await ws.send_str(json.dumps({"type": "seen", "item_id": message["item_id"]}))
                elif kind == "offer_update" and message["item_id"] in decided:
                    ts = decided.pop(message["item_id"])
                    updates.append((now, now - ts))
                elif kind == "agent_state":
                    states.append((now, now - message["ts"]))
                elif kind == "ping":
                    await ws.send_str(json.dumps({"type": "pong", "ts": message["ts"]}))
                elif kind == "error":
                    counts["errors"] += 1
                if closing.is_set():
                    break

    tasks = []
    for ext in tokens:
        tasks.append(asyncio.ensure_future(desktop(ext)))
    stats_path = work / "stats.json"
    opened = False
    while not stats_path.exists():
        if not opened and (work / "window.json").exists():
            opened = True
            window_opened()
        if any(t.done() and t.exception() for t in tasks):
            raise BenchError(f"a desktop failed: {next(t.exception() for t in tasks if t.done() and t.exception())}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)
    closing.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    stats = json.loads(stats_path.read_text())
    start, end = stats["window"]["start"], stats["window"]["end"]

    def window(samples: list[tuple[float, float]]) -> list[float]:
        return [latency for arrival, latency in samples if start <= arrival - latency <= end]

    return {"offer": summary(window(offers)), "agent_state": summary(window(states)),
            "history_late": summary(window(updates)),
            "messages": sum(1 for t in arrivals if start <= t <= end), "errors": counts["errors"], "server": stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("serve", help=argparse.SUPPRESS)
    for p in (parser, run):
        p.add_argument("--agents", type=int, default=1000)
        p.add_argument("--rate", type=float, default=100.0, help="calls offered per second")
        p.add_argument("--toggles", type=float, default=100.0, help="agents' break/back changes per second")
        p.add_argument("--seconds", type=float, default=20.0)
        p.add_argument("--warmup", type=float, default=3.0)
        p.add_argument("--queues", type=int, default=10)
        p.add_argument("--handle-s", type=float, default=4.0)
        p.add_argument("--wrap-s", type=int, default=1)
        p.add_argument("--answer-ms", type=float, default=200.0)
        p.add_argument("--no-cti", action="store_true", help="baseline: the same load, the hub stopped, no desktop")
        p.add_argument("--no-acd-writes", action="store_true",
                       help="skip the ACD's store write per agent-state change (isolates the CTI's cost)")
    run.add_argument("--dir", required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--profile", type=Path, help="record the server's load window with py-spy into this directory")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    if args.command == "serve":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        import logging

        logging.basicConfig(level=logging.WARNING)
        asyncio.run(serve(args))
        return

    work = Path(tempfile.mkdtemp(prefix="cosmo-cti-bench-"))
    cpus = os.cpu_count() or 1
    pin = not args.no_pin and cpus >= 2
    command = [sys.executable, str(Path(__file__).resolve()), "serve", "--dir", str(work)]
    for name in ("agents", "rate", "toggles", "seconds", "warmup", "queues", "handle_s", "wrap_s", "answer_ms"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.no_cti:
        command.append("--no-cti")
    if args.no_acd_writes:
        command.append("--no-acd-writes")
    log = (work / "server.log").open("w")
    server = subprocess.Popen(pinned(1 if pin else None, command), stdout=log, stderr=subprocess.STDOUT)
    if pin:
        os.sched_setaffinity(0, {0})
    def terminated(*_: object) -> None:
        stop(server)
        sys.exit(1)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        ready = work / "ready.json"
        deadline = time.monotonic() + 120
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"server did not start; see {work / 'server.log'}:\n{(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        spies: list[subprocess.Popen[bytes]] = []

        def window_opened() -> None:
            if args.profile is not None:
                spy = start_py_spy(server.pid, args.profile, args.seconds)
                if spy is not None:
                    spies.append(spy)

        result = asyncio.run(desktops(args, info["port"], info["tokens"], work, window_opened))
        for spy in spies:
            spy.wait(timeout=args.seconds + 30)
            print_profile(args.profile / "server.txt")
        server.wait(timeout=60)
    finally:
        stop(server)
        signal.signal(signal.SIGTERM, previous)
        log.close()
    result["settings"] = {name: getattr(args, name) for name in ("agents", "rate", "toggles", "seconds", "queues",
                                                                  "handle_s", "wrap_s", "answer_ms", "no_cti",
                                                                  "no_acd_writes")}
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory: {work}")


def start_py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy on the server for the load window."""
    import shutil

    spy = Path(sys.executable).parent / "py-spy"
    binary = str(spy) if spy.exists() else shutil.which("py-spy")
    if binary is None:
        print("py-spy not found: no profile")
        return None
    out.mkdir(parents=True, exist_ok=True)
    argv = [binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
            "--nonblocking", "--format", "raw", "--output", str(out / "server.txt")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_profile(path: Path, top: int = 25) -> None:
    """The busiest functions of a raw py-spy record (collapsed stacks): own time and with callees."""
    if not path.exists():
        return
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + n
    print(f"profile: {samples} samples")
    for title, table in (("own time", own), ("with callees", total)):
        print(f"  {title}:")
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"    {100 * n / samples:5.1f} %  {frame[:150]}")


def report(result: dict[str, Any]) -> None:
    s = result["server"]
    settings = result["settings"]
    if settings["no_cti"]:
        print(f"Baseline without the CTI{' (ACD store writes off)' if settings['no_acd_writes'] else ''}: "
              f"{settings['agents']} agents, {s['calls'] / s['seconds']:.0f} offers/s and "
              f"{s['toggles'] / s['seconds']:.0f} break/back changes/s for {s['seconds']:.0f} s: "
              f"server CPU {100 * s['cpu_share']:.0f} % of one core, RSS {s['rss_mib']:.0f} MiB")
        return
    print(f"CTI fan-out: {settings['agents']} desktops, {s['calls'] / s['seconds']:.0f} offers/s and "
          f"{s['toggles'] / s['seconds']:.0f} break/back changes/s for {s['seconds']:.0f} s"
          + (" (ACD store writes off)" if settings["no_acd_writes"] else ""))
    for name, label in (("offer", "offer: decision -> desktop"), ("agent_state", "agent_state: change -> desktop"),
                        ("history_late", "late history: decision -> desktop")):
        v = result[name]
        print(f"  {label:34} n={v['n']:6d}  p50 {v['p50_ms']:6.1f} ms  p99 {v['p99_ms']:6.1f} ms  "
              f"max {v['max_ms']:6.1f} ms")
    pop = s["pop"]
    print(f"  {'pop() before the INVITE':34} n={pop['n']:6d}  p50 {pop['p50_ms']:6.1f} ms  p99 {pop['p99_ms']:6.1f} ms  "
          f"max {pop['max_ms']:6.1f} ms  (timed out: {s['pops_timed_out']})")
    print(f"  server CPU {100 * s['cpu_share']:.0f} % of one core, RSS {s['rss_mib']:.0f} MiB; "
          f"{result['messages'] / s['seconds']:.0f} messages/s read by the desktops, errors {result['errors']}")
    fetch = s["fetch"]
    print(f"  {'pop look-up (customer, history)':34} n={fetch['n']:6d}  p50 {fetch['p50_ms']:6.1f} ms  "
          f"p99 {fetch['p99_ms']:6.1f} ms  max {fetch['max_ms']:6.1f} ms")
    ok = result["offer"]["p99_ms"] < 50
    print(f"  target p99 < 50 ms: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
