"""The ACD's vocabulary: work items, agents, queues and the rules attached to them.

Everything here is plain data with the few pure rules that belong to it:

* a :class:`WorkItem` is one piece of work of any :class:`Channel`; it requires
  the skills of its queue plus its own, each at a minimum level;
* an :class:`Agent` has skills with a proficiency of 1-5 and a capacity per
  channel; :meth:`Agent.admits` says whether one more item of a channel fits
  next to what the agent already holds;
* a :class:`QueueSpec` says how items of one queue are routed: service-level
  target, relaxation steps, aging, overflow, wrap-up, ring timeout and the
  agent selection :class:`Strategy`.

Times are seconds on the owner's clock (``now`` arguments), never read here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cosmo.acd.errors import AcdConfigError

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_REASONS",
    "MAX_LEVEL",
    "MIN_LEVEL",
    "NO_ANSWER",
    "Agent",
    "AgentState",
    "Channel",
    "ItemState",
    "OverflowKind",
    "OverflowTarget",
    "QueueSpec",
    "RelaxationStep",
    "Requirements",
    "ServiceLevelTarget",
    "Strategy",
    "WorkItem",
    "check_queues",
]

MIN_LEVEL = 1
"""Lowest skill proficiency (and lowest minimum level a requirement can ask for)."""
MAX_LEVEL = 5
"""Highest skill proficiency."""

NO_ANSWER = "no-answer"
"""The not-ready reason given to an agent that let an offer ring out (RONA) or declined it."""

DEFAULT_REASONS: frozenset[str] = frozenset({"break", "lunch", "training", "meeting", "after-call", NO_ANSWER})
"""Not-ready reason codes used when the configuration names none."""

Requirements = tuple[tuple[str, int], ...]
"""Required skills as ``((skill, minimum level), ...)`` sorted by skill: hashable, comparable."""


class Channel(enum.StrEnum):
    """The kind of work an item is.  Voice, callback and web call are real time (a person on a line)."""

    VOICE = "voice"
    CALLBACK = "callback"
    EMAIL = "email"
    VOICEMAIL = "voicemail"
    WEBCALL = "webcall"

    @property
    def realtime(self) -> bool:
        """True for channels that hold the agent's headset: voice, callback, web call."""
        return self in _REALTIME

    @property
    def on_the_line(self) -> bool:
        """True when a person waits on the line (voice, web call): only they can be sent to a
        voicemail box or a number; a callback, an e-mail or a voicemail waits for an agent."""
        return self in _ON_THE_LINE


_REALTIME = frozenset({Channel.VOICE, Channel.CALLBACK, Channel.WEBCALL})
_ON_THE_LINE = frozenset({Channel.VOICE, Channel.WEBCALL})

DEFAULT_CAPACITY: Mapping[Channel, int] = {Channel.VOICE: 1, Channel.CALLBACK: 1, Channel.WEBCALL: 1}
"""An agent's capacity when none is configured: one real-time item, no deferred work."""


class AgentState(enum.StrEnum):
    """An agent's state.  The rules that change it live in :mod:`cosmo.acd.agents`."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    NOT_READY = "not_ready"
    RESERVED = "reserved"
    """An offer is outstanding (the agent's phone rings, or the desktop shows it)."""
    BUSY = "busy"
    """Handling one item or more, no offer outstanding."""
    WRAP_UP = "wrap_up"
    """After-work time following the last item; ends by deadline or by the agent."""


class ItemState(enum.StrEnum):
    """Where a work item is in its life.  Only the router changes it."""

    QUEUED = "queued"
    """Waiting in a queue for an agent."""
    OFFERED = "offered"
    """Offered to one agent (ringing, or shown on the desktop), which is reserved for it."""
    ASSIGNED = "assigned"
    """Accepted by the agent, being handled."""
    COMPLETED = "completed"
    """Handled; the router has forgotten it."""
    REMOVED = "removed"
    """Left the queue before being handled (abandoned, cancelled); the router has forgotten it."""
    OVERFLOWED = "overflowed"
    """Sent to a target outside the router (voicemail, a number); the router has forgotten it."""


class Strategy(enum.StrEnum):
    """How a queue picks among several agents able to take an item (the agents are the surplus)."""

    LONGEST_IDLE = "longest-idle"
    """The agent free for the longest time (fewest items held first)."""
    MOST_SKILLED = "most-skilled"
    """The highest total proficiency in the item's required skills, then longest idle."""
    LEAST_OCCUPIED = "least-occupied"
    """The lowest share of logged-in time spent reserved, busy or in wrap-up, then longest idle."""
    ROUND_ROBIN = "round-robin"
    """The agent offered work least recently (never offered first), then longest idle."""


class OverflowKind(enum.StrEnum):
    """Where an overflowing item goes.  Only ``queue`` is handled by the router itself."""

    QUEUE = "queue"
    VOICEMAIL = "voicemail"
    NUMBER = "number"


_OVERFLOW_KINDS = frozenset(kind.value for kind in OverflowKind)


@dataclass(frozen=True, slots=True)
class OverflowTarget:
    """An overflow destination: another queue, a voicemail box, or a number to send the call to."""

    kind: OverflowKind
    destination: str

    def __post_init__(self) -> None:
        if not self.destination:
            raise AcdConfigError(f"overflow target {self.kind}: destination is empty")

    @classmethod
    def parse(cls, text: str) -> OverflowTarget:
        """``queue:sales``, ``voicemail:support`` or ``number:+15550199`` as a target.

        Raises :class:`AcdConfigError` for any other form.
        """
        kind, sep, destination = text.partition(":")
        if not sep or kind not in _OVERFLOW_KINDS:
            choices = ", ".join(k.value for k in OverflowKind)
            raise AcdConfigError(f"overflow target {text!r}: expected KIND:DESTINATION with KIND one of {choices}")
        return cls(OverflowKind(kind), destination)

    def takes(self, channel: Channel) -> bool:
        """Whether an item of ``channel`` can go here: any item to a queue, only a caller on
        the line to a voicemail box or a number (a stored voicemail sent to voicemail would
        be lost)."""
        return self.kind is OverflowKind.QUEUE or channel.on_the_line

    def __str__(self) -> str:
        return f"{self.kind}:{self.destination}"


@dataclass(frozen=True, slots=True)
class ServiceLevelTarget:
    """``fraction`` of the items answered within ``within_s`` seconds (80 % in 20 s is ``(0.8, 20)``)."""

    fraction: float = 0.8
    within_s: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0 or not self.within_s > 0.0:
            raise AcdConfigError(f"service level {self.fraction} in {self.within_s} s: need 0 < fraction <= 1, time > 0")


@dataclass(frozen=True, slots=True)
class RelaxationStep:
    """What changes for an item once it has waited ``after_s`` seconds in its queue.

    ``min_level`` caps every required level (4 becomes 2 with ``min_level=2``);
    ``drop_skills`` stops requiring those skills at all; ``overflow_to`` moves
    the item to another queue instead (such a step changes nothing else and
    must be the last one).  Steps are cumulative: a later step keeps what the
    earlier ones relaxed.
    """

    after_s: float
    min_level: int | None = None
    drop_skills: frozenset[str] = frozenset()
    overflow_to: str | None = None

    def __post_init__(self) -> None:
        if not (self.after_s > 0 and math.isfinite(self.after_s)):
            raise AcdConfigError(f"relaxation step after {self.after_s} s: the time must be positive")
        if self.min_level is not None and not MIN_LEVEL <= self.min_level <= MAX_LEVEL:
            raise AcdConfigError(f"relaxation step after {self.after_s:g} s: min_level {self.min_level} is not 1-5")
        if self.overflow_to is not None and (self.min_level is not None or self.drop_skills):
            raise AcdConfigError(
                f"relaxation step after {self.after_s:g} s: an overflow step cannot also change skill levels"
            )
        if self.overflow_to is None and self.min_level is None and not self.drop_skills:
            raise AcdConfigError(f"relaxation step after {self.after_s:g} s changes nothing")


def _check_levels(what: str, skills: Mapping[str, int]) -> None:
    for skill, level in skills.items():
        if not skill:
            raise AcdConfigError(f"{what}: empty skill name")
        if isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= MAX_LEVEL:
            raise AcdConfigError(f"{what}: skill {skill!r} level {level!r} is not an integer 1-5")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """How the items of one queue are routed.

    ``skills`` are required of every item's agent (items may add their own);
    ``aging_rate`` raises an item's priority by that many points per second
    waited (linear and unbounded, so that the order inside a queue never
    changes with time; see :meth:`effective_priority`).  ``max_wait_s`` sends
    an item still waiting after that long to ``max_wait_target``;
    ``no_agents_target`` receives items while no agent serving the queue is
    logged in.  ``ring_timeout_s`` bounds an offer (``None``: no limit).
    ``wrap_up_s`` follows an agent's last item of this queue.
    ``announce_interval_s`` is for the channel (position and wait
    announcements); the router ignores it.

    Raises :class:`AcdConfigError` when a value is out of range.
    """

    name: str
    skills: Mapping[str, int] = field(default_factory=dict)
    service_level: ServiceLevelTarget = ServiceLevelTarget()
    relaxation: tuple[RelaxationStep, ...] = ()
    wrap_up_s: float = 0.0
    max_wait_s: float | None = None
    max_wait_target: OverflowTarget | None = None
    no_agents_target: OverflowTarget | None = None
    ring_timeout_s: float | None = 20.0
    strategy: Strategy = Strategy.LONGEST_IDLE
    aging_rate: float = 0.0
    announce_interval_s: float | None = None

    def __post_init__(self) -> None:
        what = f"queue {self.name!r}"
        if not self.name:
            raise AcdConfigError("queue: empty name")
        _check_levels(what, self.skills)
        previous = 0.0
        for index, step in enumerate(self.relaxation):
            if step.after_s <= previous:
                raise AcdConfigError(f"{what}: relaxation steps must come in increasing time order")
            if step.overflow_to is not None and index != len(self.relaxation) - 1:
                raise AcdConfigError(f"{what}: an overflow step must be the last relaxation step")
            if step.overflow_to == self.name:
                raise AcdConfigError(f"{what}: a relaxation step overflows to the queue itself")
            previous = step.after_s
        if self.wrap_up_s < 0 or not math.isfinite(self.wrap_up_s):
            raise AcdConfigError(f"{what}: wrap_up_s {self.wrap_up_s} must be >= 0")
        if (self.max_wait_s is None) != (self.max_wait_target is None):
            raise AcdConfigError(f"{what}: max_wait_s and max_wait_target go together")
        if self.max_wait_s is not None and not self.max_wait_s > 0:
            raise AcdConfigError(f"{what}: max_wait_s {self.max_wait_s} must be > 0")
        if self.ring_timeout_s is not None and not self.ring_timeout_s > 0:
            raise AcdConfigError(f"{what}: ring_timeout_s {self.ring_timeout_s} must be > 0 (or none)")
        if self.aging_rate < 0 or not math.isfinite(self.aging_rate):
            raise AcdConfigError(f"{what}: aging_rate {self.aging_rate} must be >= 0")
        for target in (self.max_wait_target, self.no_agents_target):
            if target is not None and target.kind is OverflowKind.QUEUE and target.destination == self.name:
                raise AcdConfigError(f"{what}: overflow target is the queue itself")

    def requirements(self, item_skills: Mapping[str, int], step: int) -> Requirements:
        """Skills and minimum levels an agent needs for an item of this queue at relaxation ``step``.

        ``step`` counts the relaxation steps reached (0: none).  The queue's
        skills and the item's are merged (the higher level wins), then the
        reached steps cap the levels and drop skills.
        """
        levels = dict(self.skills)
        for skill, level in item_skills.items():
            if level > levels.get(skill, 0):
                levels[skill] = level
        cap = MAX_LEVEL
        dropped: set[str] = set()
        for relax in self.relaxation[:step]:
            if relax.min_level is not None:
                cap = min(cap, relax.min_level)
            dropped |= relax.drop_skills
        return tuple(sorted((s, min(m, cap)) for s, m in levels.items() if s not in dropped))

    @property
    def loosest_requirements(self) -> Requirements:
        """The queue's own skills after every relaxation step: what an agent needs to serve the queue at all."""
        return self.requirements({}, len(self.relaxation))

    def step_at(self, waited_s: float) -> int:
        """Relaxation steps reached after ``waited_s`` seconds in the queue."""
        step = 0
        for relax in self.relaxation:
            if relax.after_s > waited_s:
                break
            step += 1
        return step

    def effective_priority(self, item: WorkItem, now: float) -> float:
        """``priority + aging_rate × seconds since enqueued_at``: the first part of the routing order.

        Items are routed by effective priority (higher first), then by
        ``enqueued_at`` (earlier first), then by arrival in the router.
        """
        enqueued = item.enqueued_at if item.enqueued_at is not None else now
        return item.priority + self.aging_rate * (now - enqueued)


def check_queues(specs: Iterable[QueueSpec]) -> dict[str, QueueSpec]:
    """Queues by name, once every queue an overflow names exists and no overflow chain loops.

    Raises :class:`AcdConfigError` for a duplicate name, an unknown target
    queue, or a loop (``a`` overflows to ``b`` and ``b`` back to ``a``), which
    would bounce an item for ever.
    """
    queues: dict[str, QueueSpec] = {}
    for spec in specs:
        if spec.name in queues:
            raise AcdConfigError(f"queue {spec.name!r} is defined twice")
        queues[spec.name] = spec
    edges: dict[str, set[str]] = {}
    for spec in queues.values():
        targets = {step.overflow_to for step in spec.relaxation if step.overflow_to is not None}
        for target in (spec.max_wait_target, spec.no_agents_target):
            if target is not None and target.kind is OverflowKind.QUEUE:
                targets.add(target.destination)
        for name in targets:
            if name not in queues:
                raise AcdConfigError(f"queue {spec.name!r}: overflow to unknown queue {name!r}")
        edges[spec.name] = targets
    done: set[str] = set()
    for start in queues:
        path: list[str] = []
        _walk(start, edges, path, set(), done)
    return queues


def _walk(name: str, edges: dict[str, set[str]], path: list[str], on_path: set[str], done: set[str]) -> None:
    if name in on_path:
        loop = " -> ".join([*path[path.index(name) :], name])
        raise AcdConfigError(f"overflow loop between queues: {loop}")
    if name in done:
        return
    path.append(name)
    on_path.add(name)
    for target in sorted(edges[name]):
        _walk(target, edges, path, on_path, done)
    path.pop()
    on_path.discard(name)
    done.add(name)


@dataclass(slots=True, eq=False)
class WorkItem:
    """One piece of work: a call, a callback, an e-mail, a voicemail, a browser call.

    The owner creates it and hands it to the router, which then owns the
    fields below ``data`` (read them, do not write them).

    ``skills`` are required in addition to the queue's (``{"spanish": 3}``);
    ``priority`` is higher-first; ``enqueued_at`` orders the item among equal
    priorities and may lie in the past (a callback keeps its caller's original
    queue time; ``None``: the time it is added).  ``data`` is what the channel
    and the agent need to see: caller, customer, what the IVR collected, an
    e-mail's sender and subject.
    """

    id: str
    channel: Channel
    queue: str
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    enqueued_at: float | None = None
    data: dict[str, object] = field(default_factory=dict)
    state: ItemState = ItemState.QUEUED
    agent: str | None = None
    """Extension of the agent the item is offered or assigned to."""
    queued_at: float | None = None
    """When the item entered its current queue: relaxation and max wait count from here."""
    step: int = 0
    """Relaxation steps of the current queue reached so far."""
    assigned_at: float | None = None

    def check(self) -> None:
        """Raise :class:`AcdConfigError` when the item cannot be routed (empty id, bad level or priority)."""
        if not self.id:
            raise AcdConfigError("work item: empty id")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise AcdConfigError(f"work item {self.id}: priority {self.priority!r} is not an integer")
        if not isinstance(self.channel, Channel):
            raise AcdConfigError(f"work item {self.id}: unknown channel {self.channel!r}")
        if self.enqueued_at is not None and not math.isfinite(self.enqueued_at):
            raise AcdConfigError(f"work item {self.id}: enqueued_at {self.enqueued_at} is not a time")
        _check_levels(f"work item {self.id}", self.skills)


@dataclass(frozen=True, slots=True)
class Agent:
    """A person who takes work: extension, name, skills (proficiency 1-5) and capacity per channel.

    ``capacity`` is the number of items of each channel held at once (a
    channel missing or at 0 is never offered).  Unless ``mixed`` is set, an
    agent holds items of one channel at a time (no e-mail during a call); with
    ``mixed`` the channels combine within their capacities, except that
    real-time channels still share the one headset (one of them at a time).

    Raises :class:`AcdConfigError` for an empty extension, a proficiency
    outside 1-5 or a negative capacity.
    """

    extension: str
    name: str = ""
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: Mapping[Channel, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    mixed: bool = False

    def __post_init__(self) -> None:
        if not self.extension:
            raise AcdConfigError("agent: empty extension")
        _check_levels(f"agent {self.extension}", self.skills)
        for channel, count in self.capacity.items():
            if not isinstance(channel, Channel) or isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise AcdConfigError(f"agent {self.extension}: capacity {channel!r}: {count!r} is not a count >= 0")

    def meets(self, requirements: Requirements) -> bool:
        """True when every required skill is held at its minimum level or above."""
        skills = self.skills
        return all(skills.get(skill, 0) >= level for skill, level in requirements)

    def proficiency(self, requirements: Requirements) -> int:
        """Sum of the agent's levels in the required skills (the ``most-skilled`` measure)."""
        skills = self.skills
        return sum(skills.get(skill, 0) for skill, _ in requirements)

    def admits(self, channel: Channel, load: Mapping[Channel, int]) -> bool:
        """True when one more item of ``channel`` fits beside ``load`` (items held per channel, zeros omitted)."""
        if load.get(channel, 0) >= self.capacity.get(channel, 0):
            return False
        for other in load:
            if other is not channel and (not self.mixed or (channel in _REALTIME and other in _REALTIME)):
                return False
        return True
