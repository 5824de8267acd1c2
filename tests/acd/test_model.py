"""Tests of cosmo.acd.model: validation, requirements under relaxation, capacity rules."""

from __future__ import annotations

import pytest

from cosmo.acd import (
    AcdConfigError,
    Agent,
    Channel,
    OverflowKind,
    OverflowTarget,
    QueueSpec,
    RelaxationStep,
    WorkItem,
)
from cosmo.acd.model import check_queues

V, E, C, W = Channel.VOICE, Channel.EMAIL, Channel.CALLBACK, Channel.WEBCALL


def test_requirements_merge_and_relax() -> None:
    spec = QueueSpec(
        "support",
        skills={"support": 4, "english": 3},
        relaxation=(
            RelaxationStep(30, min_level=2),
            RelaxationStep(60, drop_skills=frozenset({"english"})),
            RelaxationStep(90, overflow_to="general"),
        ),
    )
    item_skills = {"spanish": 5, "support": 2}
    assert spec.requirements(item_skills, 0) == (("english", 3), ("spanish", 5), ("support", 4))
    assert spec.requirements(item_skills, 1) == (("english", 2), ("spanish", 2), ("support", 2))
    assert spec.requirements(item_skills, 2) == (("spanish", 2), ("support", 2))
    assert spec.loosest_requirements == (("support", 2),)
    assert [spec.step_at(t) for t in (0, 29.9, 30, 59, 60, 120)] == [0, 0, 1, 1, 2, 3]


def test_effective_priority_ages_linearly() -> None:
    spec = QueueSpec("q", aging_rate=0.5)
    item = WorkItem("i", V, "q", priority=2, enqueued_at=100.0)
    assert spec.effective_priority(item, 110.0) == 7.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: QueueSpec(""), "queue: empty name"),
        (lambda: QueueSpec("q", skills={"x": 6}), "queue 'q': skill 'x' level 6 is not an integer 1-5"),
        (
            lambda: QueueSpec("q", relaxation=(RelaxationStep(30, min_level=2), RelaxationStep(20, min_level=1))),
            "queue 'q': relaxation steps must come in increasing time order",
        ),
        (
            lambda: QueueSpec("q", relaxation=(RelaxationStep(30, overflow_to="r"), RelaxationStep(40, min_level=1))),
            "queue 'q': an overflow step must be the last relaxation step",
        ),
        (lambda: QueueSpec("q", max_wait_s=60), "queue 'q': max_wait_s and max_wait_target go together"),
        (lambda: QueueSpec("q", ring_timeout_s=0), "queue 'q': ring_timeout_s 0 must be > 0 (or none)"),
        (lambda: QueueSpec("q", aging_rate=-1), "queue 'q': aging_rate -1 must be >= 0"),
        (lambda: RelaxationStep(0, min_level=1), "relaxation step after 0 s: the time must be positive"),
        (lambda: RelaxationStep(10), "relaxation step after 10 s changes nothing"),
        (lambda: RelaxationStep(10, min_level=0), "relaxation step after 10 s: min_level 0 is not 1-5"),
        (
            lambda: RelaxationStep(10, min_level=1, overflow_to="x"),
            "relaxation step after 10 s: an overflow step cannot also change skill levels",
        ),
        (lambda: Agent(""), "agent: empty extension"),
        (lambda: Agent("1001", skills={"sales": 0}), "agent 1001: skill 'sales' level 0 is not an integer 1-5"),
        (lambda: Agent("1001", capacity={V: -1}), "agent 1001: capacity <Channel.VOICE: 'voice'>: -1 is not a count >= 0"),
        (lambda: OverflowTarget.parse("mars:base"), "overflow target 'mars:base': expected KIND:DESTINATION with KIND one of queue, voicemail, number"),
    ],
)
def test_invalid_definitions(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(AcdConfigError) as info:
        make()
    assert str(info.value) == message
    assert info.value.status == 422


def test_overflow_target_parse() -> None:
    assert OverflowTarget.parse("voicemail:support") == OverflowTarget(OverflowKind.VOICEMAIL, "support")
    assert str(OverflowTarget.parse("number:+15550199")) == "number:+15550199"


def test_overflow_loops_are_refused() -> None:
    a = QueueSpec("a", relaxation=(RelaxationStep(60, overflow_to="b"),))
    b = QueueSpec("b", max_wait_s=30, max_wait_target=OverflowTarget(OverflowKind.QUEUE, "c"))
    c = QueueSpec("c", no_agents_target=OverflowTarget(OverflowKind.QUEUE, "a"))
    with pytest.raises(AcdConfigError, match=r"^overflow loop between queues: a -> b -> c -> a$"):
        check_queues([a, b, c])
    with pytest.raises(AcdConfigError, match=r"^queue 'a': overflow to unknown queue 'b'$"):
        check_queues([a])
    with pytest.raises(AcdConfigError, match=r"^queue 'b' is defined twice$"):
        check_queues([b, b, QueueSpec("c")])
    assert set(check_queues([a, b, QueueSpec("c")])) == {"a", "b", "c"}


def test_work_item_check() -> None:
    with pytest.raises(AcdConfigError, match="^work item i1: priority 'high' is not an integer$"):
        WorkItem("i1", V, "q", priority="high").check()  # type: ignore[arg-type]
    with pytest.raises(AcdConfigError, match="^work item i1: skill 'x' level 9 is not an integer 1-5$"):
        WorkItem("i1", V, "q", skills={"x": 9}).check()


@pytest.mark.parametrize(
    ("capacity", "mixed", "load", "channel", "fits"),
    [
        ({V: 1}, False, {}, V, True),
        ({V: 1}, False, {V: 1}, V, False),
        ({V: 1}, False, {}, E, False),  # no e-mail capacity
        ({V: 1, E: 3}, False, {E: 2}, E, True),
        ({V: 1, E: 3}, False, {E: 3}, E, False),
        ({V: 1, E: 3}, False, {E: 1}, V, False),  # not mixed: no call during e-mail
        ({V: 1, E: 3}, False, {V: 1}, E, False),
        ({V: 1, E: 3}, True, {E: 2}, V, True),  # mixed: a call during e-mail
        ({V: 1, E: 3}, True, {V: 1}, E, True),
        ({V: 1, C: 1}, True, {V: 1}, C, False),  # real-time channels share the headset
        ({W: 1, E: 1}, True, {E: 1}, W, True),
    ],
)
def test_admits(
    capacity: dict[Channel, int], mixed: bool, load: dict[Channel, int], channel: Channel, fits: bool
) -> None:
    assert Agent("1001", capacity=capacity, mixed=mixed).admits(channel, load) is fits


def test_meets_and_proficiency() -> None:
    agent = Agent("1001", skills={"support": 4, "english": 2})
    assert agent.meets((("english", 2), ("support", 3)))
    assert not agent.meets((("english", 3),))
    assert not agent.meets((("spanish", 1),))
    assert agent.proficiency((("english", 1), ("support", 1))) == 6
