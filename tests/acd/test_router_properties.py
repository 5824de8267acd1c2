"""Property tests of cosmo.acd.router: random queues, agents and operations against a reference model.

The reference model follows the router only through the events it returns
and checks each one as it comes:

* an item is offered only while it waits: never to two agents at once;
* an offer never takes an agent beyond its capacity or mixes channels it
  may not mix;
* the agent has the skills the item's relaxation step asks for at that time;
* the item offered is the best eligible waiting item for that agent: highest
  effective priority, then earliest enqueue time, then arrival order;
* after every call, no waiting item could go to a free eligible agent.

Times, priorities and aging rates are small integers and dyadic fractions, so
the reference computes exactly what the router computes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cosmo.acd import (
    AcdError,
    Agent,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    Channel,
    ItemAssigned,
    ItemCompleted,
    ItemOffered,
    ItemOverflowed,
    ItemQueued,
    ItemRelaxed,
    ItemRemoved,
    ItemState,
    OfferWithdrawn,
    OverflowKind,
    OverflowTarget,
    QueueSpec,
    RelaxationStep,
    Router,
    RoutingError,
    Strategy,
    WorkItem,
)
from cosmo.acd.events import AcdEvent

SKILLS = ("a", "b", "c")
CHANNELS = (Channel.VOICE, Channel.EMAIL, Channel.CALLBACK)
REALTIME = {Channel.VOICE, Channel.CALLBACK, Channel.WEBCALL}
REASONS = frozenset({"break", "lunch", "no-answer"})


@st.composite
def queue_specs(draw: st.DrawFn) -> list[QueueSpec]:
    count = draw(st.integers(1, 3))
    specs = []
    for index in range(count):
        name = f"q{index}"
        # Overflow only to a later queue: no loops.
        later = [f"q{i}" for i in range(index + 1, count)]
        skills = draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=2))
        steps: list[RelaxationStep] = []
        if draw(st.booleans()):
            steps.append(RelaxationStep(draw(st.sampled_from([5, 10])), min_level=draw(st.integers(1, 3))))
        drop: bool = draw(st.booleans())
        if skills and drop:
            steps.append(RelaxationStep(20, drop_skills=frozenset([draw(st.sampled_from(sorted(skills)))])))
        forward: bool = draw(st.booleans())
        if later and forward:
            steps.append(RelaxationStep(40, overflow_to=draw(st.sampled_from(later))))
        max_wait_s = draw(st.sampled_from([None, 30, 60]))
        max_wait_target = None
        if max_wait_s is not None:
            choices = [OverflowTarget(OverflowKind.VOICEMAIL, name)] + [
                OverflowTarget(OverflowKind.QUEUE, q) for q in later
            ]
            max_wait_target = draw(st.sampled_from(choices))
        no_agents = draw(
            st.sampled_from([None, OverflowTarget(OverflowKind.NUMBER, "+15550199")] + [
                OverflowTarget(OverflowKind.QUEUE, q) for q in later
            ])
        )
        specs.append(
            QueueSpec(
                name,
                skills=skills,
                relaxation=tuple(steps),
                wrap_up_s=draw(st.sampled_from([0, 5])),
                max_wait_s=max_wait_s,
                max_wait_target=max_wait_target,
                no_agents_target=no_agents,
                ring_timeout_s=draw(st.sampled_from([None, 15])),
                strategy=draw(st.sampled_from(list(Strategy))),
                aging_rate=draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])),
            )
        )
    return specs


@st.composite
def agents(draw: st.DrawFn) -> list[Agent]:
    count = draw(st.integers(1, 5))
    result = []
    for index in range(count):
        capacity = {
            Channel.VOICE: draw(st.integers(0, 1)),
            Channel.EMAIL: draw(st.integers(0, 3)),
            Channel.CALLBACK: draw(st.integers(0, 1)),
        }
        result.append(
            Agent(
                f"10{index:02d}",
                skills=draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5))),
                capacity=capacity,
                mixed=draw(st.booleans()),
            )
        )
    return result


@dataclass
class RefItem:
    id: str
    queue: str
    channel: Channel
    priority: int
    skills: dict[str, int]
    enq: float
    seq: int
    queued_at: float
    state: ItemState = ItemState.QUEUED
    agent: str | None = None


@dataclass
class RefAgent:
    agent: Agent
    state: AgentState = AgentState.LOGGED_OUT
    load: Counter[Channel] = field(default_factory=Counter)


class RouterMachine(RuleBasedStateMachine):
    """Random operations on a router, every event checked against the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.seq = 0
        self.items: dict[str, RefItem] = {}
        self.agents: dict[str, RefAgent] = {}
        self.specs: dict[str, QueueSpec] = {}
        self.router = Router(reasons=REASONS)
        self.next_id = 0

    @initialize(specs=queue_specs(), people=agents())
    def setup(self, specs: list[QueueSpec], people: list[Agent]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.router = Router(specs, reasons=REASONS)
        for person in people:
            self.agents[person.extension] = RefAgent(person)
            self.apply(self.router.add_agent(person, self.now))

    # ------------------------------------------------------------ reference rules

    def step(self, item: RefItem, now: float) -> int:
        spec = self.specs[item.queue]
        return sum(1 for s in spec.relaxation if s.overflow_to is None and item.queued_at + s.after_s <= now)

    def requirements(self, item: RefItem, now: float) -> dict[str, int]:
        spec = self.specs[item.queue]
        levels = dict(spec.skills)
        for skill, level in item.skills.items():
            levels[skill] = max(levels.get(skill, 0), level)
        cap, dropped = 5, set[str]()
        for relax in spec.relaxation[: self.step(item, now)]:
            if relax.min_level is not None:
                cap = min(cap, relax.min_level)
            dropped |= relax.drop_skills
        return {s: min(level, cap) for s, level in levels.items() if s not in dropped}

    def eligible(self, ref: RefAgent, item: RefItem, now: float) -> bool:
        return all(ref.agent.skills.get(s, 0) >= m for s, m in self.requirements(item, now).items())

    @staticmethod
    def fits(ref: RefAgent, channel: Channel) -> bool:
        if ref.load[channel] + 1 > ref.agent.capacity.get(channel, 0):
            return False
        others = {c for c, n in ref.load.items() if n and c is not channel}
        if not others:
            return True
        if not ref.agent.mixed:
            return False
        return not (channel in REALTIME and others & REALTIME)

    def rank(self, item: RefItem, now: float) -> tuple[float, float, int]:
        rate = self.specs[item.queue].aging_rate
        return (item.priority + rate * (now - item.enq), -item.enq, -item.seq)

    def free(self, ext: str) -> bool:
        ref = self.agents[ext]
        if ref.state not in (AgentState.AVAILABLE, AgentState.BUSY):
            return False
        if any(i.state is ItemState.OFFERED and i.agent == ext for i in self.items.values()):
            return False
        return self.router.agent(ext).pending_reason is None

    # ------------------------------------------------------------ following the events

    def apply(self, events: list[AcdEvent]) -> None:
        for event in events:
            if isinstance(event, AgentStateChanged):
                ref = self.agents[event.extension]
                assert ref.state is event.from_state, (event, ref.state)
                ref.state = event.to_state
            elif isinstance(event, ItemQueued):
                assert event.item_id in self.items
            elif isinstance(event, ItemOffered):
                self.check_offer(event)
            elif isinstance(event, OfferWithdrawn):
                item = self.items[event.item_id]
                assert item.state is ItemState.OFFERED and item.agent == event.extension
                item.state, item.agent = ItemState.QUEUED, None
                self.agents[event.extension].load[item.channel] -= 1
            elif isinstance(event, ItemAssigned):
                item = self.items[event.item_id]
                assert item.state is ItemState.OFFERED and item.agent == event.extension
                item.state = ItemState.ASSIGNED
            elif isinstance(event, ItemCompleted):
                item = self.items.pop(event.item_id)
                assert item.state is ItemState.ASSIGNED
                self.agents[event.extension].load[item.channel] -= 1
            elif isinstance(event, ItemRemoved):
                item = self.items.pop(event.item_id)
                assert item.state is ItemState.QUEUED
            elif isinstance(event, ItemRelaxed):
                item = self.items[event.item_id]
                assert item.queue == event.queue
                assert event.step == self.step(item, event.at)
            elif isinstance(event, ItemOverflowed):
                item = self.items[event.item_id]
                assert item.state is ItemState.QUEUED and item.queue == event.from_queue
                if event.kind is OverflowKind.QUEUE:
                    item.queue, item.queued_at = event.destination, event.at
                else:
                    del self.items[event.item_id]

    def check_offer(self, event: ItemOffered) -> None:
        now = event.at
        item = self.items[event.item_id]
        ref = self.agents[event.extension]
        # Never offered twice: it must be waiting.
        assert item.state is ItemState.QUEUED, f"{item.id} offered while {item.state}"
        assert ref.state is AgentState.RESERVED  # the state change comes first
        # Skills of the relaxation step reached.
        assert self.eligible(ref, item, now), (item, ref.agent, self.requirements(item, now))
        # Capacity and mixing.
        assert self.fits(ref, item.channel), (ref.load, item.channel, ref.agent)
        # The best eligible waiting item for this agent.
        best = self.rank(item, now)
        for other in self.items.values():
            waiting = other.state is ItemState.QUEUED and other is not item
            if waiting and self.eligible(ref, other, now) and self.fits(ref, other.channel):
                assert self.rank(other, now) < best, f"{other.id} {self.rank(other, now)} beats {item.id} {best}"
        item.state, item.agent = ItemState.OFFERED, event.extension
        ref.load[item.channel] += 1

    # ------------------------------------------------------------ rules

    @rule(
        dt=st.integers(0, 25),
    )
    def tick(self, dt: int) -> None:
        self.now += dt
        self.apply(self.router.handle_timer(self.now))

    @rule(
        data=st.data(),
        channel=st.sampled_from(CHANNELS),
        priority=st.integers(0, 3),
        skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=1),
        earlier=st.sampled_from([0, 0, 7, 30]),
    )
    def add_item(
        self, data: st.DataObject, channel: Channel, priority: int, skills: dict[str, int], earlier: int
    ) -> None:
        queue = data.draw(st.sampled_from(sorted(self.specs)))
        self.next_id += 1
        item_id = f"i{self.next_id}"
        self.seq += 1
        enq = self.now - earlier  # a callback keeps an earlier time
        self.items[item_id] = RefItem(item_id, queue, channel, priority, skills, enq, self.seq, self.now)
        self.apply(self.router.add_item(WorkItem(item_id, channel, queue, priority, skills, enq), self.now))

    @rule(data=st.data(), state=st.sampled_from(["available", "not_ready", "logged_out", "wrap_up", "busy"]))
    def set_state(self, data: st.DataObject, state: str) -> None:
        ext = data.draw(st.sampled_from(sorted(self.agents)))
        reason = data.draw(st.sampled_from(["break", "lunch", "bogus"])) if state == "not_ready" else None
        self.apply(self.router.handle_timer(self.now))
        before = self.router.agent(ext)
        try:
            events = self.router.set_agent_state(ext, state, self.now, reason)
        except AgentStateError:
            assert self.router.agent(ext) == before  # refused: nothing changed
            return
        self.apply(events)

    def offered(self) -> list[str]:
        return sorted(i.id for i in self.items.values() if i.state is ItemState.OFFERED)

    def assigned(self) -> list[str]:
        return sorted(i.id for i in self.items.values() if i.state is ItemState.ASSIGNED)

    @rule(data=st.data(), skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5)))
    def reskill(self, data: st.DataObject, skills: dict[str, int]) -> None:
        ext = data.draw(st.sampled_from(sorted(self.agents)))
        ref = self.agents[ext]
        ref.agent = Agent(ext, skills=skills, capacity=dict(ref.agent.capacity), mixed=ref.agent.mixed)
        self.apply(self.router.update_agent(ref.agent, self.now))

    @precondition(lambda self: self.offered())
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(self.offered()))
        agent = self.items[item_id].agent
        assert agent is not None
        self.apply(self.router.offer_accepted(item_id, agent, self.now))

    @precondition(lambda self: self.offered() and len(self.agents) > 1)
    @rule(data=st.data())
    def accept_by_another(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(self.offered()))
        wrong = data.draw(st.sampled_from(sorted(set(self.agents) - {self.items[item_id].agent or ""})))
        self.apply(self.router.handle_timer(self.now))
        if item_id not in self.items or self.items[item_id].state is not ItemState.OFFERED:
            return
        try:
            self.router.offer_accepted(item_id, wrong, self.now)
        except RoutingError:
            pass
        else:
            raise AssertionError("an offer was accepted by an agent it was not made to")

    @precondition(lambda self: self.offered())
    @rule(data=st.data(), reason=st.sampled_from([None, "break"]))
    def decline(self, data: st.DataObject, reason: str | None) -> None:
        item_id = data.draw(st.sampled_from(self.offered()))
        agent = self.items[item_id].agent
        assert agent is not None
        self.apply(self.router.offer_declined(item_id, agent, self.now, reason=reason))

    @precondition(lambda self: self.assigned())
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(self.assigned()))
        self.apply(self.router.item_done(item_id, self.now))

    @precondition(lambda self: any(i.state is not ItemState.ASSIGNED for i in self.items.values()))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        item_id = data.draw(
            st.sampled_from(sorted(i.id for i in self.items.values() if i.state is not ItemState.ASSIGNED))
        )
        self.apply(self.router.remove_item(item_id, self.now))

    @precondition(lambda self: self.assigned())
    @rule(data=st.data())
    def abandon_assigned_is_refused(self, data: st.DataObject) -> None:
        item_id = data.draw(st.sampled_from(self.assigned()))
        self.apply(self.router.handle_timer(self.now))
        try:
            self.router.remove_item(item_id, self.now)
        except AcdError:
            assert self.router.item(item_id).state is ItemState.ASSIGNED
        else:
            raise AssertionError("an assigned item was removed")

    # ------------------------------------------------------------ invariants

    @invariant()
    def nothing_left_unmatched(self) -> None:
        for item in self.items.values():
            if item.state is not ItemState.QUEUED:
                continue
            for ext, ref in self.agents.items():
                if self.free(ext) and self.eligible(ref, item, self.now) and self.fits(ref, item.channel):
                    raise AssertionError(f"{item.id} waits while agent {ext} is free for it")

    @invariant()
    def same_view(self) -> None:
        for item in self.items.values():
            routed = self.router.item(item.id)
            assert routed.state is item.state and routed.queue == item.queue
            if item.state is not ItemState.QUEUED:
                assert routed.agent == item.agent
        assert sorted(i.id for i in self.router.items()) == sorted(self.items)
        for ext, ref in self.agents.items():
            status = self.router.agent(ext)
            assert status.state is ref.state
            held = sum(ref.load.values())
            assert held == len(status.items) + (status.offer is not None)
            for channel, count in ref.load.items():
                assert count <= ref.agent.capacity.get(channel, 0)
            offers = [i for i in self.items.values() if i.state is ItemState.OFFERED and i.agent == ext]
            assert len(offers) <= 1
            assert (ref.state is AgentState.RESERVED) == bool(offers)

    @invariant()
    def positions_follow_routing_order(self) -> None:
        for name in self.specs:
            waiting = self.router.waiting(name)
            expected = sorted(
                (i for i in self.items.values() if i.state is ItemState.QUEUED and i.queue == name),
                key=lambda i: (-(i.priority - self.specs[name].aging_rate * i.enq), i.enq, i.seq),
            )
            assert [w.id for w in waiting] == [i.id for i in expected]
            for place, item in enumerate(waiting, 1):
                assert self.router.position(item.id) == place


RouterMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRouterProperties = RouterMachine.TestCase
