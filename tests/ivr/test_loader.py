"""Flow files: every problem at its file:line:column, and valid files compiled."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cosmo.ivr.loader import FlowChecks, load_flow, parse_flow
from cosmo.ivr.problems import Problem, Severity
from cosmo.ivr.source import read_source
from cosmo.ivr.steps import MenuStep, QueueStep
from tests.ivr.helpers import REPO, prompt_exists

CHECKS = FlowChecks(
    prompt_exists=prompt_exists,
    calendars={"business"},
    flows={"main", "survey", "t"},
    unknown_words=lambda language, phrases: [w for p in phrases for w in p.split() if w == "zorblax"],
)
STEPS = "play, menu, collect, recognize, lookup, branch, hours, queue, voicemail, transfer, goto, set, hangup, call, return"

BROKEN = [
    pytest.param("entry: a\nnodes:\n  a: [1\n", [
        ("t.yaml:4:1: error: YAML syntax error: while parsing a flow sequence expected ',' or ']', but got "
        "'<stream end>'"),
    ], id="yaml-syntax"),
    pytest.param("entry: a\nentry: b\nnodes: {}\n", ["t.yaml:2:1: error: duplicate key 'entry'"], id="duplicate-key"),
    pytest.param("entry: a\nnodes:\n  a:\x1f\n", [
        "t.yaml:3:5: error: YAML syntax error: unacceptable character #x001f: special characters are not allowed",
    ], id="control-character"),
    pytest.param("- a\n- b\n", ["t.yaml:1:1: error: a flow file is a mapping with entry and nodes"], id="not-a-mapping"),
    pytest.param("entri: a\nnodes:\n  a:\n    hangup: {}\n", [
        "t.yaml:1:1: error: missing field 'entry'",
        "t.yaml:1:1: error: unknown field 'entri' (did you mean 'entry'?)",
    ], id="header"),
    pytest.param("name: t\n", [
        "t.yaml:1:1: error: missing field 'entry'",
        "t.yaml:1:1: error: missing field 'nodes'",
    ], id="empty-flow"),
    pytest.param("entry: a\nnodes:\n  a b:\n    hangup: {}\n  a:\n    hangup:\n", [
        "t.yaml:3:3: error: nodes: 'a b' is not a valid node name (letters, digits, '_', '.', '-')",
    ], id="node-name"),
    pytest.param("name: other\nentry: a\nnodes:\n  a:\n    hangup: {}\n", [
        "t.yaml:1:7: error: name 'other' differs from the file name 't.yaml'",
    ], id="name-differs"),
    pytest.param("""\
        entry: a
        nodes:
          a:
            paly: {prompt: welcome}
          b:
            hangup: {}
            goto: a
          c: hello
          d:
        """, [
        "t.yaml:4:5: error: unknown step 'paly' (did you mean 'play'?)",
        "t.yaml:7:5: error: node 'b' has more than one step: hangup, goto",
        f"t.yaml:8:3: error: node 'c' needs one step: {STEPS}",
        f"t.yaml:9:3: error: node 'd' needs one step: {STEPS}",
    ], id="steps"),
    pytest.param("""\
        entry: a
        nodes:
          a:
            menu:
              prompt: main-menu
              timout_s: 3
              retries: -1
              options:
                - {key: 11, next: a}
                - {say: billing}
                - {key: 2, next: b, nxt: a}
          b:
            collect: {variable: acct, prompt: enter-account-number, max_length: 6, pattern: "[0-9", next: a}
          c:
            goto: [a]
          d:
            lookup: {customer: {by: name}, next: a}
          e:
            transfer: {number: 5551234, flow: main}
          f:
            collect: {variable: x, prompt: welcome, min_length: 8, max_length: 6, next: a}
          g:
            recognize: {variable: My var, prompt: welcome, next: a}
        """, [
        "t.yaml:6:7: error: menu: unknown field 'timout_s' (did you mean 'timeout_s'?)",
        "t.yaml:7:16: error: menu.retries: Input should be greater than or equal to 0",
        "t.yaml:9:17: error: menu.options[0].key: a menu key is one of 0123456789*#, got '11'",
        "t.yaml:10:11: error: menu.options[1]: missing field 'next'",
        "t.yaml:11:29: error: menu.options[2]: unknown field 'nxt' (did you mean 'next'?)",
        "t.yaml:13:85: error: collect.pattern: invalid regular expression: unterminated character set at position 0",
        "t.yaml:15:5: error: goto: needs a node name",
        "t.yaml:17:29: error: lookup.customer.by: Input should be 'phone', 'account', 'email' or 'id'",
        "t.yaml:19:5: error: transfer: needs exactly one of number, flow",
        "t.yaml:21:5: error: collect: min_length must not exceed max_length",
        ("t.yaml:23:27: error: recognize.variable: 'My var' is not a valid variable name "
        "(a letter, then letters, digits, '_')"),
    ], id="fields"),
    pytest.param("""\
        entry: strat
        nodes:
          start:
            play: {prompt: [welcom, {text: "Hi ${customer.name"}, {say: {digits: "${account}"}}], next: menu}
          menu:
            menu:
              prompt: main-menu
              options:
                - {key: 1, say: [Billing], next: billling}
                - {key: 1, say: ["billing!", zorblax frobs], next: start}
          end:
            branch:
              conditions:
                - {if: "customer.tier = 'gold'", next: start}
                - {if: "opn('business')", next: start}
                - {if: "open('weekend') or holiday()", next: start}
                - {if: "customer.__class__", next: start}
              else: start
          hours:
            hours: {calendar: buisness, open: start, closed: start}
          sub:
            call: {flow: surveys, next: start}
          set:
            set: {variables: {caller: "1", x: "accnt + 1"}, next: start}
        """, [
        "t.yaml:1:8: error: unknown entry node 'strat' (did you mean 'start'?)",
        "t.yaml:4:21: error: prompt 'welcom' not found for language 'en'",
        "t.yaml:4:40: error: unclosed '${'",
        "t.yaml:4:74: warning: variable 'account' is never set in this flow",
        "t.yaml:9:42: error: unknown node 'billling'",
        "t.yaml:10:17: error: key '1' is already used by options[0]",
        "t.yaml:10:20: warning: not in the speech vocabulary of 'en': zorblax",
        "t.yaml:10:26: error: phrase 'billing!' is already used by options[0]",
        "t.yaml:14:31: error: invalid expression: invalid syntax",
        "t.yaml:15:17: error: unknown function 'opn' (did you mean 'open'?)",
        "t.yaml:16:16: error: unknown calendar 'weekend'",
        "t.yaml:17:17: error: attribute '__class__' not allowed",
        "t.yaml:20:23: error: unknown calendar 'buisness' (did you mean 'business'?)",
        "t.yaml:22:18: error: unknown flow 'surveys' (did you mean 'survey'?)",
        "t.yaml:24:23: error: 'caller' is a reserved name",
        "t.yaml:24:39: warning: variable 'accnt' is never set in this flow",
    ], id="references"),
    pytest.param("""\
        entry: a
        nodes:
          a:
            play: {prompt: welcome, next: b}
          b:
            branch:
              conditions: [{if: "true", next: a}]
              else: c
          c:
            menu:
              prompt: main-menu
              options: [{key: 1, next: d}]
          d:
            goto: d
          lonely:
            hangup: {}
          e:
            goto: f
          f:
            set: {next: e}
        """, [
        "t.yaml:3:3: error: loop without caller input: a -> b -> a",
        "t.yaml:13:3: error: loop without caller input: d -> d",
        "t.yaml:15:3: warning: node 'lonely' is never reached from entry 'a'",
        "t.yaml:17:3: error: loop without caller input: e -> f -> e",
        "t.yaml:17:3: warning: node 'e' is never reached from entry 'a'",
        "t.yaml:19:3: warning: node 'f' is never reached from entry 'a'",
    ], id="loops-and-reachability"),
    pytest.param("""\
        language: fr
        entry: a
        nodes:
          a:
            collect: {variable: x, prompt: enter-account-number, confirm: true, next: b}
          b:
            hangup: {prompt: [goodbye, moh/default.wav]}
        """, [
        "t.yaml:5:5: warning: prompt 'invalid-entry' (invalid by default) not found for language 'fr'",
        "t.yaml:5:5: warning: prompt 'no-input' (no_input by default) not found for language 'fr'",
        "t.yaml:5:36: error: prompt 'enter-account-number' not found for language 'fr'",
        "t.yaml:5:67: warning: prompt 'press-1-if-correct' (confirm) not found for language 'fr'",
        "t.yaml:5:67: warning: prompt 'you-entered' (confirm) not found for language 'fr'",
        "t.yaml:7:23: error: prompt 'goodbye' not found for language 'fr'",
    ], id="prompts-of-a-language"),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_broken_flows(text: str, expected: list[str]) -> None:
    result = parse_flow(textwrap.dedent(text), "t.yaml", CHECKS, name="t")
    assert [str(problem) for problem in result.problems] == expected
    assert result.flow is None or not result.errors


GOOD = """\
description: every step once
language: en
entry: start
store: ivr
nodes:
  start:
    lookup: {customer: {value: "${caller}"}, found: greet, not_found: greet, on_error: greet}
  greet:
    play:
      prompt: [welcome, {text: "Hello ${customer.name}"}, {say: {currency: "${customer.attributes.balance}"}}]
      next: hours
  hours:
    hours: {open: menu, closed: voicemail, holiday: voicemail}
  menu:
    menu:
      prompt: main-menu
      variable: choice
      options:
        - {key: 1, say: [billing], next: account}
        - {key: 2, next: speak}
        - {key: 3, next: dip}
        - {key: "#", next: bye}
      on_failure: agent
  account:
    collect: {variable: account, prompt: enter-account-number, min_length: 6, max_length: 6, luhn: true,
              confirm: true, next: route}
  speak:
    recognize:
      variable: intent
      prompt: {text: "How can we help?"}
      intents: {billing: [account balance, billing], support: [technical support]}
      fallback: menu
      next: route
  dip:
    lookup:
      http: {url: "http://127.0.0.1:1/balance/${account}", json: {caller: "${caller}"}, into: balance}
      next: route
      on_error: route
  route:
    branch:
      conditions:
        - {if: 'customer.tier == "gold" and open()', next: gold}
        - {if: intent == "support", next: agent}
      else: sub
  sub:
    call: {node: helper, next: agent}
  helper:
    set: {variables: {greeting: "'hi ' + str(len(caller))", count: 3}, language: en, next: back}
  back:
    return:
  gold:
    queue: {queue: support, skills: {support: 2}, priority: "5 + count", announcements: false}
  agent:
    transfer: {number: "+15550100999", prompt: transferring, on_failure: voicemail}
  voicemail:
    voicemail: {queue: support, max_s: 60}
  bye:
    goto: end
  end:
    hangup: {prompt: goodbye, reason: normal}
"""


def test_every_step_validates() -> None:
    result = parse_flow(GOOD, "good.yaml", CHECKS, name="good")
    assert result.problems == ()
    flow = result.flow
    assert flow is not None
    assert (flow.name, flow.entry, flow.language, flow.store) == ("good", "start", "en", "ivr")
    assert len(flow.nodes) == 16
    assert isinstance(flow.nodes["gold"], QueueStep)
    assert set(flow.expressions) == {'customer.tier == "gold" and open()', 'intent == "support"',
                                     "'hi ' + str(len(caller))", "5 + count"}
    assert "Hello ${customer.name}" in flow.templates
    with pytest.raises(TypeError):
        flow.nodes["x"] = flow.nodes["gold"]  # type: ignore[index]


def test_defaults_of_a_menu() -> None:
    result = parse_flow("entry: m\nnodes:\n  m:\n    menu: {prompt: main-menu, options: [{key: 1, next: m}]}\n",
                        "m.yaml")
    assert result.flow is not None
    step = result.flow.nodes["m"]
    assert isinstance(step, MenuStep)
    assert (step.timeout_s, step.retries, step.confidence, step.barge_in) == (5.0, 2, 0.5, True)
    assert [item.prompt for item in step.invalid] == ["invalid-entry"]
    assert [item.prompt for item in step.no_input] == ["no-input"]
    assert result.flow.language == "en" and result.flow.name == "m"


def test_default_language_from_the_checks() -> None:
    result = parse_flow("entry: a\nnodes:\n  a:\n    hangup:\n", "a.yaml", FlowChecks(default_language="de"))
    assert result.flow is not None and result.flow.language == "de"


@pytest.mark.parametrize("name", ["main", "survey"])
def test_shipped_flows_are_clean(name: str) -> None:
    checks = FlowChecks(prompt_exists=prompt_exists, calendars={"business"}, flows={"main", "survey"})
    result = load_flow(REPO / "ivr_flows" / f"{name}.yaml", checks, display=f"{name}.yaml")
    assert result.problems == ()
    assert result.flow is not None and result.flow.name == name


def test_unreadable_file(tmp_path: Path) -> None:
    result = load_flow(tmp_path / "missing.yaml", display="missing.yaml")
    assert result.flow is None
    assert str(result.problems[0]).startswith("missing.yaml:1:1: error: cannot read the file: ")


def test_problem_text_and_order() -> None:
    late = Problem("a.yaml", 3, 1, "x")
    early = Problem("a.yaml", 2, 9, "y", Severity.WARNING)
    assert sorted([late, early]) == [early, late]
    assert str(early) == "a.yaml:2:9: warning: y"
    assert late.is_error and not early.is_error


def test_positions_of_keys_and_values() -> None:
    data, source = read_source("a:\n  b: 'x y'\n  c: [1, {d: 2}]\n")
    assert data == {"a": {"b": "x y", "c": [1, {"d": 2}]}}
    assert (source.key(("a", "b")).line, source.key(("a", "b")).column) == (2, 3)
    assert (source.value(("a", "b")).line, source.value(("a", "b")).column) == (2, 6)
    assert source.value(("a", "b")).shifted(2, "x y").column == 9  # inside the quotes
    assert (source.value(("a", "c", 1, "d")).line, source.value(("a", "c", 1, "d")).column) == (3, 14)
    assert source.value(("a", "c", 5)).column == 3  # missing item: the key of its list
    assert source.value(("a", "b", "deeper")).column == 6  # below a scalar: the scalar
