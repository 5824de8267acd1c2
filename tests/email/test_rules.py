"""Tests of cosmo.email.rules: ordered classification, response-time targets, refused files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from cosmo.email.errors import RulesError
from cosmo.email.rules import (
    Classification,
    MessageFacts,
    ResponseTarget,
    RuleBook,
    load_rules,
    parse_duration,
    parse_rules,
)

QUEUES = ["support", "billing", "sales"]
DEMO = Path(__file__).resolve().parents[2] / "config" / "email-rules.yaml"


def facts(subject: str = "", body: str = "", sender: str = "jane@customer.example", queue: str = "support",
          language: str | None = "en", attachments: bool = False, to: tuple[str, ...] = ("support@example.com",)
          ) -> MessageFacts:
    return MessageFacts(subject, body, sender, to, queue, language, attachments)


def rules(text: str):  # type: ignore[no-untyped-def]
    return parse_rules(textwrap.dedent(text), source="r.yaml", queues=QUEUES)


def test_demo_rules_load() -> None:
    demo = load_rules(DEMO, QUEUES)
    assert demo.names == ["german", "outage", "billing-words", "key-accounts", "newsletters"]
    assert demo.classify(facts("Refund please", "I was charged twice")) == Classification(
        "billing", {}, 1, ("billing-words",), None)
    assert demo.classify(facts("Rechnung", "Die Rechnung ist falsch, bitte prüfen Sie das", language="de")) == \
        Classification("support", {"support": 4}, 0, ("german",), None)
    assert demo.classify(facts("Weekly update", "news", sender="news@letters.example")).auto_ack is False
    assert demo.classify(facts("Hello", "question", sender="cfo@eu.bigcorp.example")).priority == 3


def test_first_match_decides_unless_continue() -> None:
    ruleset = rules("""\
        rules:
          - name: vip
            when: {from_domain: vip.example}
            set: {priority: 7, skills: {senior: 2}}
            continue: true
          - name: invoice
            when: {text: [invoice, "credit note"]}
            set: {queue: billing, skills: {senior: 1, billing: 3}}
          - name: never
            when: {text: invoice}
            set: {queue: sales}
        """)
    assert ruleset.classify(facts("Your invoice", sender="boss@vip.example")) == Classification(
        "billing", {"senior": 2, "billing": 3}, 7, ("vip", "invoice"), None)
    assert ruleset.classify(facts("About the credit note")).queue == "billing"
    assert ruleset.classify(facts("Hello")) == Classification("support", {}, 0, (), None)


def test_keywords_match_whole_words_only() -> None:
    ruleset = rules("""\
        rules:
          - {name: down, when: {subject: [down]}, set: {priority: 5}}
        """)
    assert ruleset.classify(facts("Site is DOWN!")).priority == 5
    assert ruleset.classify(facts("Download link")).priority == 0


def test_every_condition() -> None:
    ruleset = rules("""\
        rules:
          - name: all
            when:
              subject_pattern: "^order\\\\s+#?\\\\d+"
              body_pattern: "tracking"
              from: [jane@customer.example]
              to: [support@example.com]
              queue: [support]
              language: [en]
              has_attachments: true
            set: {queue: sales}
        """)
    good = facts("Order #42", "where is the tracking number", attachments=True)
    assert ruleset.classify(good).queue == "sales"
    for change in ({"attachments": False}, {"language": "de"}, {"queue": "billing"}, {"sender": "x@y.example"},
                   {"to": ("billing@example.com",)}, {"body": "where is it"}, {"subject": "Re: order"}):
        base: dict[str, object] = {"subject": good.subject, "body": good.body, "attachments": True}
        assert ruleset.classify(facts(**{**base, **change})).queue != "sales", change  # type: ignore[arg-type]


def test_refused_files_say_where() -> None:
    with pytest.raises(RulesError) as info:
        rules("""\
            rules:
              - name: a
                when: {subject_pattern: "("}
                set: {queue: support}
              - name: a
                when: {subject: x}
                set: {queue: nowhere, skills: {x: 9}}
              - name: b
                when: {}
                set: {}
            targets:
              support: soon
              elsewhere: 1h
            """)
    assert info.value.problems == [
        ("r.yaml:3: rules[0].when.subject_pattern: invalid regular expression: "
         "missing ), unterminated subpattern at position 0"),
        "r.yaml:7: rules[1].set.skills.x: Input should be less than or equal to 5",
        "r.yaml:9: rules[2].when: a rule needs at least one condition",
        "r.yaml:12: targets.support: not a duration: 'soon' (use 90s, 30m, 4h, 2d or seconds)",
    ]
    with pytest.raises(RulesError) as info:
        rules("""\
            rules:
              - {name: a, when: {subject: x}, set: {queue: support}}
              - {name: a, when: {subject: y}, set: {queue: nowhere}}
            targets: {elsewhere: 1h}
            """)
    assert info.value.problems == [
        "r.yaml:3: rules[1].name: duplicate rule name 'a'",
        "r.yaml:3: rules[1].set.queue: unknown queue 'nowhere'",
        "r.yaml:4: targets.elsewhere: unknown queue 'elsewhere'",
    ]
    with pytest.raises(RulesError, match=r"r.yaml:1: the file must be a mapping"):
        rules("- just a list\n")


def test_durations() -> None:
    assert [parse_duration(v) for v in ("90s", "30m", "4h", "2d", "1.5h", 45, "10")] == [
        90, 1800, 14400, 172800, 5400, 45, 10]
    for bad in ("0", "-1h", "soon", True):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_response_target_raises_priority_as_it_nears() -> None:
    target = ResponseTarget(4 * 3600)
    assert [target.boost(h * 3600) for h in (0, 1.9, 2, 3, 3.6, 4, 10)] == [0, 0, 1, 2, 4, 8, 8]
    assert target.next_step_in(0) == 2 * 3600
    assert target.next_step_in(3.7 * 3600) == pytest.approx(0.3 * 3600)
    assert target.next_step_in(5 * 3600) is None
    custom = rules("targets: {billing: {target: 2h, escalate: [{at: 0.8, priority: 3}, {at: 1.0, priority: 6}]}}")
    billing = custom.target("billing")
    assert billing is not None
    assert (billing.boost(1.5 * 3600), billing.boost(1.7 * 3600), billing.boost(2 * 3600)) == (0, 3, 6)
    assert custom.target("support") is None


def test_rulebook_reloads_and_keeps_rules_when_the_file_is_bad(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: a, when: {subject: x}, set: {priority: 1}}\n")
    book = RuleBook(path, lambda: QUEUES)
    book.load()
    assert book.rules.names == ["a"]
    path.write_text("rules:\n  - {name: b, when: {subject: x}, set: {priority: 2}}\n")
    os.utime(path, ns=(1, 2_000_000_000))
    assert book.rules.names == ["b"]
    path.write_text("rules:\n  - {name: c, when: {subject: x}, set: {queue: nowhere}}\n")
    os.utime(path, ns=(1, 3_000_000_000))
    assert book.rules.names == ["b"]
    assert "unknown queue 'nowhere'" in caplog.text
    with pytest.raises(RulesError):
        RuleBook(path, lambda: QUEUES).load()
