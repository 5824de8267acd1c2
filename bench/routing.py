#!/usr/bin/env python3
"""ACD routing cost on one core: decisions per second and the time to decide an offer.

The router core (``cosmo.acd.router``) is driven in memory with a simulated
clock, no I/O.  Each scale step builds 50 queues, ``A`` agents with random
skill sets and ``N`` waiting items, then runs random operations and times
every router call with ``perf_counter_ns``:

* **saturated** (the issue's case): ``N`` items wait, every agent is at work.
  Operations at random: an item arrives; an agent finishes its item and is
  free at once (→ it takes the best waiting item of all its queues); an agent
  accepts its offer; an agent goes on a break or comes back; a caller hangs
  up; the deadlines that came due (relaxation, ring timeout, wrap-up) fire.
  Arrivals keep the backlog near ``N``.  The backlog is built beforehand at
  the run's own arrival rate (40 items per simulated second, 100 operations
  per simulated second), so the deadlines it brings along are those of a
  steady state and do not grow with ``N``.
* **idle agents**: the reverse: about half the agents are free and items
  arrive to be offered at once (→ the queue's strategy picks among the free
  eligible agents).

Reported per step: routing decisions (offers) per second of router time,
counting the time of *every* call (arrivals that only queue, accepts,
timers...); and p50/p99/max of the time from the call that makes an agent
free, or brings an item, to the offer decided (the call's duration).  Each
step runs ``--repeat`` times with different seeds and the figures are the
medians.  The scale steps multiply agents and items together, so the growth
of the per-decision cost shows the complexity.

    python bench/routing.py [--agents 1000] [--items 10000] [--queues 50]
                            [--ops 40000] [--scales 1,2,4] [--repeat 3]
                            [--seed 1] [--json out.json]

Pure Python, single thread.  Python's cyclic garbage collector stays on (the
server runs with it): the rare ``max`` figures of a few milliseconds are its
collections landing inside a call, not routing work.  ``--no-gc-freeze``
skips the ``gc.freeze()`` taken after the setup, which a server can do once
after start.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cosmo.acd import (  # the repository root is on sys.path first
    AcdError,
    Agent,
    AgentState,
    Channel,
    ItemOffered,
    ItemState,
    QueueSpec,
    RelaxationStep,
    Router,
    Strategy,
    WorkItem,
)
from cosmo.acd.events import AcdEvent

LANGUAGES = ("en", "es", "fr", "de", "it")
STRATEGIES = (Strategy.LONGEST_IDLE,) * 5 + (Strategy.MOST_SKILLED, Strategy.LEAST_OCCUPIED, Strategy.ROUND_ROBIN)
CHANNELS = (Channel.VOICE,) * 16 + (Channel.EMAIL,) * 3 + (Channel.CALLBACK,)
STEP_S = 0.01  # simulated time between operations
ARRIVALS_PER_S = 40.0  # about the run's own arrival rate: 0.4 arrivals per operation, 100 operations/s
DECIDING = ("arrival", "agent-free", "available", "timer")
"""Calls that bring an item or free an agent (a wrap-up end, an offer that rang out, for ``timer``)."""


def build_queues(count: int, rng: random.Random) -> list[QueueSpec]:
    """``count`` queues, each requiring its own skill (level 2-4), some a language too."""
    queues = []
    for index in range(count):
        skills = {f"s{index:02d}": rng.randint(2, 4)}
        if rng.random() < 0.3:
            skills[rng.choice(LANGUAGES)] = 3
        queues.append(
            QueueSpec(
                f"q{index:02d}",
                skills=skills,
                relaxation=(RelaxationStep(30, min_level=1), RelaxationStep(60, drop_skills=frozenset(LANGUAGES))),
                wrap_up_s=rng.choice((0.0, 0.0, 5.0)),
                ring_timeout_s=20.0,
                strategy=rng.choice(STRATEGIES),
                aging_rate=rng.choice((0.0, 1 / 60)),
            )
        )
    return queues


def build_agents(count: int, queues: int, rng: random.Random) -> list[Agent]:
    """Agents with 3-8 queue skills (proficiency 1-5), one or two languages; a third also do e-mail."""
    agents = []
    for index in range(count):
        skills = {f"s{q:02d}": rng.randint(1, 5) for q in rng.sample(range(queues), rng.randint(3, 8))}
        for language in rng.sample(LANGUAGES, rng.randint(1, 2)):
            skills[language] = rng.randint(2, 5)
        capacity = {Channel.VOICE: 1, Channel.CALLBACK: 1}
        if rng.random() < 0.33:
            capacity[Channel.EMAIL] = 2
        agents.append(Agent(f"{10000 + index}", skills=skills, capacity=capacity))
    return agents


@dataclass
class Timings:
    """Call durations in nanoseconds, per kind of call."""

    calls: dict[str, list[int]] = field(default_factory=dict)
    decided: list[int] = field(default_factory=list)
    """Calls that ended in an offer (agent freed or item arrived)."""
    router_ns: int = 0
    offers: int = 0

    def add(self, kind: str, ns: int, offered: bool) -> None:
        self.calls.setdefault(kind, []).append(ns)
        self.router_ns += ns
        if offered:
            self.decided.append(ns)


class Driver:
    """Random operations on one router, each call timed."""

    def __init__(self, router: Router, agents: list[Agent], queues: list[QueueSpec], rng: random.Random) -> None:
        self.router = router
        self.rng = rng
        self.agents = [a.extension for a in agents]
        self.queue_names = [q.name for q in queues]
        self.now = 0.0
        self.next_id = 0
        self.waiting: set[str] = set()
        self.offered: dict[str, str] = {}  # item -> extension
        self.assigned: dict[str, str] = {}
        self.assigned_list: list[str] = []
        self.timings = Timings()

    def item(self, enqueued_at: float | None = None) -> WorkItem:
        self.next_id += 1
        rng = self.rng
        data: dict[str, object] = {"caller": f"+1555{rng.randrange(10**7):07d}"}
        return WorkItem(
            f"i{self.next_id}",
            rng.choice(CHANNELS),
            rng.choice(self.queue_names),
            priority=rng.choice((0, 0, 0, 1, 2)),
            enqueued_at=enqueued_at,
            data=data,
        )

    def follow(self, events: list[AcdEvent]) -> bool:
        offered = False
        for event in events:
            if isinstance(event, ItemOffered):
                offered = True
                self.waiting.discard(event.item_id)
                self.offered[event.item_id] = event.extension
        # Items that left the waiting set otherwise (overflow, RONA back) are reconciled lazily.
        return offered

    def call(self, kind: str, fn: Callable[[], list[AcdEvent]]) -> list[AcdEvent]:
        start = time.perf_counter_ns()
        events = fn()
        ns = time.perf_counter_ns() - start
        self.timings.add(kind, ns, self.follow(events) and kind in DECIDING)
        return events

    def router_call(self, method: Callable[[str, float], list[AcdEvent]], item_id: str) -> Callable[[], list[AcdEvent]]:
        now = self.now
        return lambda: method(item_id, now)

    def timers(self) -> None:
        deadline = self.router.next_deadline()
        if deadline is not None and deadline <= self.now:
            now = self.now
            events = self.call("timer", lambda: self.router.handle_timer(now))
            for event in events:
                if event.topic == "acd.offer.withdrawn":
                    item_id = getattr(event, "item_id", "")
                    if self.offered.pop(item_id, None) is not None:
                        self.waiting.add(item_id)

    def arrival(self) -> None:
        item = self.item()
        now = self.now
        self.waiting.add(item.id)
        self.call("arrival", lambda: self.router.add_item(item, now))

    def accept(self) -> None:
        if not self.offered:
            return
        item_id = next(iter(self.offered))  # the oldest offer: agents answer in turn
        ext = self.offered.pop(item_id)
        now = self.now
        self.call("accept", lambda: self.router.offer_accepted(item_id, ext, now))
        self.assigned[item_id] = ext
        self.assigned_list.append(item_id)

    def finish(self) -> None:
        while self.assigned_list:
            index = self.rng.randrange(len(self.assigned_list))
            item_id = self.assigned_list[index]
            self.assigned_list[index] = self.assigned_list[-1]
            self.assigned_list.pop()
            if self.assigned.pop(item_id, None) is None:
                continue
            self.call("agent-free", self.router_call(self.router.item_done, item_id))
            return

    def break_or_back(self) -> None:
        ext = self.rng.choice(self.agents)
        state = self.router.agent(ext).state
        now = self.now
        if state is AgentState.NOT_READY:
            self.call("available", lambda: self.router.set_agent_state(ext, AgentState.AVAILABLE, now))
        elif state in (AgentState.AVAILABLE, AgentState.BUSY):
            self.call("break", lambda: self.router.set_agent_state(ext, AgentState.NOT_READY, now, "break"))

    def abandon(self) -> None:
        for _ in range(5):
            if not self.waiting:
                return
            item_id = self.rng.choice(tuple(self.waiting)) if len(self.waiting) < 64 else self.sample_waiting()
            self.waiting.discard(item_id)
            try:
                state = self.router.item(item_id).state
            except AcdError:  # no longer in the router: pick another
                continue
            if state is ItemState.QUEUED:
                self.call("abandon", self.router_call(self.router.remove_item, item_id))
                return

    def sample_waiting(self) -> str:
        # set.pop() then add back: an arbitrary element in O(1).
        item_id = self.waiting.pop()
        self.waiting.add(item_id)
        return item_id


def setup(agents_n: int, items_n: int, queues_n: int, seed: int, saturated: bool) -> Driver:
    rng = random.Random(seed)
    queues = build_queues(queues_n, rng)
    agents = build_agents(agents_n, queues_n, rng)
    router = Router(queues)
    driver = Driver(router, agents, queues, rng)
    for agent in agents:
        router.add_agent(agent, 0.0)
        router.set_agent_state(agent.extension, AgentState.NOT_READY, 0.0, "break")
    start = 0.0
    if saturated:
        # The backlog arrives at the rate items arrive during the run, so the
        # relaxation deadlines it brings are those of a steady state, whatever N.
        for index in range(items_n):
            item = driver.item()
            driver.waiting.add(item.id)
            router.add_item(item, index / ARRIVALS_PER_S)
        start = items_n / ARRIVALS_PER_S
    driver.now = start
    driver.follow(router.handle_timer(start))
    # Everybody to work; with a backlog each takes an item and accepts it.
    for agent in agents:
        driver.follow(router.set_agent_state(agent.extension, AgentState.AVAILABLE, start))
    while driver.offered:
        item_id, ext = driver.offered.popitem()
        router.offer_accepted(item_id, ext, start)
        driver.assigned[item_id] = ext
        driver.assigned_list.append(item_id)
    if not saturated:
        # Half the agents busy with a call, half free.
        for _ in range(agents_n // 2):
            driver.arrival()
            driver.accept()
        driver.timings = Timings()
    return driver


def run(agents_n: int, items_n: int, queues_n: int, ops: int, seed: int, saturated: bool, freeze: bool) -> dict[str, float]:
    driver = setup(agents_n, items_n, queues_n, seed, saturated)
    rng = driver.rng
    router = driver.router
    gc.collect()
    if freeze:
        gc.freeze()
    offers_before = router.offers
    for _ in range(ops):
        driver.now += STEP_S
        driver.timers()
        roll = rng.random()
        if saturated:
            # Keep the backlog near items_n: arrivals replace what agents take.
            backlog = len(driver.waiting)
            arrive = 0.45 if backlog < items_n else 0.30
            if roll < arrive:
                driver.arrival()
            elif roll < 0.80:
                if driver.offered and rng.random() < 0.5:
                    driver.accept()
                else:
                    driver.finish()
            elif roll < 0.95:
                driver.accept()
            elif roll < 0.98:
                driver.break_or_back()
            else:
                driver.abandon()
        else:
            # Agents finish as fast as items come: about half of them stay free.
            if roll < 0.30:
                driver.arrival()
            elif roll < 0.65:
                driver.accept()
            elif roll < 0.95:
                driver.finish()
            else:
                driver.break_or_back()
    if freeze:
        gc.unfreeze()
    timings = driver.timings
    offers = router.offers - offers_before
    decided = sorted(timings.decided)
    result = {
        "decisions_per_s": offers / (timings.router_ns / 1e9),
        "calls_per_s": sum(len(v) for v in timings.calls.values()) / (timings.router_ns / 1e9),
        "offers": float(offers),
        "decide_p50_us": percentile(decided, 0.50) / 1e3,
        "decide_p99_us": percentile(decided, 0.99) / 1e3,
        "decide_max_us": (decided[-1] if decided else 0) / 1e3,
        "waiting_end": float(sum(router.queue_status(q, driver.now).waiting for q in router.queue_names())),
    }
    for kind, values in timings.calls.items():
        values.sort()
        result[f"{kind}_p50_us"] = percentile(values, 0.50) / 1e3
        result[f"{kind}_p99_us"] = percentile(values, 0.99) / 1e3
        result[f"{kind}_n"] = float(len(values))
    return result


def percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    return float(values[min(len(values) - 1, int(q * len(values)))])


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = set().union(*runs)
    return {key: statistics.median(r.get(key, 0.0) for r in runs) for key in sorted(keys)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--ops", type=int, default=40000, help="random operations per run")
    parser.add_argument("--scales", default="1,2,4", help="multipliers of agents and items together")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-gc-freeze", action="store_true")
    args = parser.parse_args()

    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.machine()}, one thread")
    print(f"queues {args.queues}, {args.ops} random operations per run, median of {args.repeat} runs\n")
    report: dict[str, dict[str, dict[str, float]]] = {}
    for scenario, saturated in (("saturated", True), ("idle-agents", False)):
        print(f"== {scenario}: " + ("N items waiting, every agent at work" if saturated else "half the agents free"))
        header = (
            f"{'agents':>7} {'items':>7} {'decisions/s':>12} {'calls/s':>9} "
            f"{'decide p50':>10} {'p99':>8} {'max':>8}   "
            f"{'free→offer p99':>14} {'arrive p99':>10} {'timer p99':>9} {'waiting':>8}"
        )
        print(header)
        report[scenario] = {}
        for scale in (int(s) for s in args.scales.split(",")):
            agents_n, items_n = args.agents * scale, args.items * scale
            runs = [
                run(agents_n, items_n, args.queues, args.ops, args.seed + r, saturated, not args.no_gc_freeze)
                for r in range(args.repeat)
            ]
            m = median_of(runs)
            report[scenario][f"x{scale}"] = m
            print(
                f"{agents_n:>7} {items_n if saturated else 0:>7} {m['decisions_per_s']:>12,.0f} {m['calls_per_s']:>9,.0f} "
                f"{m['decide_p50_us']:>8.0f}µs {m['decide_p99_us']:>6.0f}µs {m['decide_max_us']:>6.0f}µs   "
                f"{m.get('agent-free_p99_us', 0):>12.0f}µs {m.get('arrival_p99_us', 0):>8.0f}µs "
                f"{m.get('timer_p99_us', 0):>7.0f}µs {m['waiting_end']:>8.0f}"
            )
        print()
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
