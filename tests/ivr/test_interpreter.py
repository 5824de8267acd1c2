"""The interpreter, driven through the simulated port."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cosmo.ivr.dialogue import luhn_valid, match_phrase
from cosmo.ivr.flow import Flow
from cosmo.ivr.hours import BusinessCalendar
from cosmo.ivr.interpreter import FlowResult, Outcome, run
from cosmo.ivr.port import DigitSpec, Input, Prompt, PromptPart, SayAs, SpeechSpec, Text
from cosmo.ivr.settings import BusinessHours
from cosmo.ivr.simulator import SimulatedPort, YamlCustomers
from tests.ivr.helpers import NOON, REPO, compile_flow, keys, port

CUSTOMERS = YamlCustomers.from_file(REPO / "config" / "customers.yaml")
ALWAYS = {"business": BusinessCalendar("business", BusinessHours())}

MENU = """\
entry: menu
nodes:
  menu:
    menu:
      prompt: main-menu
      variable: choice
      retries: 2
      confidence: 0.6
      options:
        - {key: 1, say: ["account balance", billing], value: billing, next: billing}
        - {key: 2, say: technical support, next: support}
      on_failure: operator
  billing:
    queue: {queue: billing}
  support:
    queue: {queue: support}
  operator:
    queue: {queue: operator}
"""


async def go(flow: Flow, sim: SimulatedPort, **options: Any) -> FlowResult:
    options.setdefault("calendars", ALWAYS)
    options.setdefault("clock", lambda: NOON)
    return await run(flow, sim, **options)


def said(sim: SimulatedPort) -> list[list[str]]:
    """What each play/listen would have played, as words."""
    out: list[list[str]] = []
    for parts in sim.played:
        words: list[str] = []
        for part in parts:
            if isinstance(part, Prompt):
                words.append(str(part.name))
            elif isinstance(part, Text):
                words.append(f"text:{part.text}")
            elif isinstance(part, SayAs):
                words.append(f"{part.kind}:{part.value}")
        out.append(words)
    return out


# ---------------------------------------------------------------------------- menu


async def test_menu_by_key() -> None:
    sim = port(keys("2"))
    result = await go(compile_flow(MENU), sim)
    assert (result.outcome, result.node, result.steps, result.detail) == (Outcome.QUEUED, "support", 2,
                                                                          "support: answered")
    assert sim.data == {"ivr": {"choice": "2"}}
    assert sim.queued is not None and sim.queued.data == {"ivr": {"choice": "2"}}


@pytest.mark.parametrize("words", ["Account-Balance!", "billing", "uh my account balance please"])
async def test_menu_by_phrase(words: str) -> None:
    sim = port(Input("speech", words, 0.9))
    result = await go(compile_flow(MENU), sim)
    assert (result.outcome, result.node) == (Outcome.QUEUED, "billing")
    assert sim.data["ivr"] == {"choice": "billing"}


async def test_menu_grammar_is_every_phrase() -> None:
    class Spy(SimulatedPort):
        specs: ClassVar[list[tuple[DigitSpec | None, SpeechSpec | None]]] = []

        async def listen(self, parts: Sequence[PromptPart], *, digits: DigitSpec | None = None,
                         speech: SpeechSpec | None = None, barge_in: bool = True) -> Input:
            self.specs.append((digits, speech))
            return await super().listen(parts, digits=digits, speech=speech, barge_in=barge_in)

    sim = Spy(keys("1"))
    await go(compile_flow(MENU), sim)
    digits, speech = sim.specs[0]
    assert digits == DigitSpec(min_length=1, max_length=1, terminator=None, first_timeout_s=5.0,
                               inter_digit_timeout_s=5.0)
    assert speech == SpeechSpec(language="en", phrases=("account balance", "billing", "technical support"),
                                no_input_timeout_s=5.0)


async def test_menu_retries_then_failure_branch() -> None:
    sim = port(Input("speech", "billing", 0.3), keys("9"), Input("timeout"))
    result = await go(compile_flow(MENU), sim)
    assert (result.outcome, result.node) == (Outcome.QUEUED, "operator")
    assert said(sim) == [
        ["main-menu"],                   # low confidence: not understood
        ["invalid-entry", "main-menu"],  # 9 is no option
        ["invalid-entry", "main-menu"],  # nothing
        ["no-input"],                    # told once more, then on_failure
    ]
    assert sim.data == {"ivr": {}}


async def test_menu_without_failure_branch_says_goodbye() -> None:
    flow = compile_flow(MENU.replace("      on_failure: operator\n", ""))
    sim = port()  # no input at all: every listen times out
    result = await go(flow, sim)
    assert (result.outcome, result.node, result.detail) == (Outcome.HANGUP, "menu", "no valid input")
    assert said(sim)[-2:] == [["no-input"], ["goodbye"]]
    assert sim.hangup_reason == "normal"


async def test_keys_typed_during_a_barge_in_prompt_answer_the_menu() -> None:
    flow = compile_flow("""\
        entry: hello
        nodes:
          hello:
            play: {prompt: welcome, barge_in: true, next: menu}
          menu:
            menu: {prompt: main-menu, options: [{key: 2, next: done}]}
          done:
            hangup: {}
        """)
    sim = port(keys("2"))
    assert (await go(flow, sim)).outcome is Outcome.HANGUP
    assert "   listen for 1 key: main-menu (skipped: keys typed ahead)" in sim.transcript


# ---------------------------------------------------------------------------- collect


def collect_flow(**fields: object) -> Flow:
    options = {"variable": "number", "prompt": "enter-account-number", "retries": 2, "next": "done",
               "on_failure": "failed", **fields}
    body = ", ".join(f"{key}: {value}" for key, value in options.items())
    return compile_flow(f"""\
        entry: ask
        nodes:
          ask:
            collect: {{{body}}}
          done:
            hangup: {{}}
          failed:
            hangup: {{prompt: goodbye}}
        """)


@pytest.mark.parametrize(("fields", "script", "value", "attempts"), [
    ({}, ["1234#"], "1234", 1),
    ({"max_length": 4}, ["12345"], "1234", 1),               # the fifth key waits as type-ahead
    ({"terminator": "'*'"}, ["55*"], "55", 1),
    ({"min_length": 6}, ["123#", "123456#"], "123456", 2),
    ({"pattern": "'4[0-9]{3}'"}, ["5123#", "4123#"], "4123", 2),
    ({"luhn": "true"}, ["79927398710#", "79927398713#"], "79927398713", 2),
    ({}, ["", "#", "42#"], "42", 3),                          # nothing, then only the terminator
])
async def test_collect(fields: dict[str, object], script: list[str], value: str, attempts: int) -> None:
    sim = port(Input("digits", s) if s else Input("timeout") for s in script)
    result = await go(collect_flow(**fields), sim)
    assert (result.outcome, result.node) == (Outcome.HANGUP, "done")
    assert sim.data["ivr"] == {"number": value}
    assert len(sim.played) == attempts


async def test_collect_gives_up_after_retries() -> None:
    sim = port(keys("1#", "2#", "3#"))
    result = await go(collect_flow(min_length=4), sim)
    assert result.node == "failed" and sim.data["ivr"] == {}
    assert said(sim) == [["enter-account-number"], ["invalid-entry", "enter-account-number"],
                         ["invalid-entry", "enter-account-number"], ["invalid-entry"], ["goodbye"]]


async def test_collect_confirm() -> None:
    # 1234569: the 9 is typed ahead past max_length and must not answer the confirmation.
    sim = port(keys("1234569", "2", "654321", "1"))
    result = await go(collect_flow(min_length=6, max_length=6, confirm="true"), sim)
    assert result.node == "done"
    assert sim.data["ivr"] == {"number": "654321"}
    assert said(sim) == [
        ["enter-account-number"],
        ["you-entered", "digits:123456", "press-1-if-correct"],  # answered 2: ask again
        ["enter-account-number"],
        ["you-entered", "digits:654321", "press-1-if-correct"],
    ]
    assert "   (type-ahead 9 cleared)" in sim.transcript


def test_luhn() -> None:
    assert luhn_valid("79927398713") and luhn_valid("4111111111111111")
    assert not luhn_valid("79927398710") and not luhn_valid("1") and not luhn_valid("12a4")


def test_phrase_matching() -> None:
    phrases = {"account balance": "a", "balance": "b", "billing": "c"}
    assert match_phrase("ACCOUNT BALANCE.", phrases) == "a"
    assert match_phrase("my account balance please", phrases) == "a"  # the longest phrase inside
    assert match_phrase("balanced", phrases) is None                  # whole words only
    assert match_phrase("  ", phrases) is None


# ---------------------------------------------------------------------------- recognize


RECOGNIZE = """\
entry: ask
nodes:
  ask:
    recognize:
      variable: intent
      prompt: {text: "How can we help, ${customer.name}?"}
      intents: {billing: [account balance, billing], support: [technical support]}
      retries: 1
      next: done
      on_failure: menu
      %s
  menu:
    menu: {prompt: main-menu, variable: key, options: [{key: 1, next: done}, {key: 2, next: done}]}
  done:
    hangup: {}
"""


async def test_recognize_intent() -> None:
    sim = port(Input("speech", "something else", 0.9), Input("speech", "Technical support!", 0.8))
    sim.data["customer"] = {"name": "Ada"}
    result = await go(compile_flow(RECOGNIZE % ""), sim)
    assert result.node == "done"
    assert sim.data["ivr"] == {"intent": "support"}
    assert said(sim) == [["text:How can we help, Ada?"], ["invalid-entry", "text:How can we help, Ada?"]]


async def test_recognize_low_confidence_then_failure() -> None:
    sim = port(Input("speech", "billing", 0.2), Input("timeout"), keys("2"))
    result = await go(compile_flow(RECOGNIZE % ""), sim)
    assert result.node == "done"
    assert sim.data["ivr"] == {"key": "2"}  # on_failure went to the menu


async def test_recognize_fallback_hands_the_key_to_the_menu() -> None:
    sim = port(keys("2"))
    result = await go(compile_flow(RECOGNIZE % "fallback: menu"), sim)
    assert result.node == "done" and result.steps == 3
    assert sim.data["ivr"] == {"key": "2"}
    assert len(sim.played) == 1  # the menu took the key without asking


async def test_recognize_free_speech_and_digits() -> None:
    flow = compile_flow(RECOGNIZE.replace("      intents: {billing: [account balance, billing], "
                                          "support: [technical support]}\n", "") % "digits: true")
    sim = port(Input("speech", "I lost my card", 0.9))
    await go(flow, sim)
    assert sim.data["ivr"] == {"intent": "i lost my card"}
    sim = port(keys("1234#"))
    await go(flow, sim)
    assert sim.data["ivr"] == {"intent": "1234"}


# ---------------------------------------------------------------------------- branch, hours, look-ups


BRANCH = """\
entry: find
nodes:
  find:
    lookup: {customer: {by: phone}, next: route, on_error: route}
  route:
    branch:
      conditions:
        - {if: 'customer.tier == "gold"', next: gold}
        - {if: customer, next: known}
      else: unknown
  gold:
    queue: {queue: support, priority: '5 if customer.tier == "gold" else 0', skills: {support: 2}}
  known:
    queue: {queue: support}
  unknown:
    queue: {queue: support, announcements: false}
"""


@pytest.mark.parametrize(("caller", "node", "priority"), [
    ("+15550100123", "gold", 5),     # Ada Byron, gold
    ("5550100124", "known", 0),      # Charles Babbage, without the country code
    ("+15559999999", "unknown", 0),
])
async def test_branch_on_the_customer(caller: str, node: str, priority: int) -> None:
    sim = port(caller=caller)
    result = await go(compile_flow(BRANCH), sim, customers=CUSTOMERS)
    assert (result.outcome, result.node) == (Outcome.QUEUED, node)
    assert sim.queued is not None and sim.queued.priority == priority
    if node == "gold":
        assert sim.queued.skills == {"support": 2}
        assert sim.queued.data["customer"]["name"] == "Ada Byron"
    if node == "unknown":
        assert "customer" not in sim.data and not sim.queued.announcements


async def test_lookup_without_a_directory_follows_on_error() -> None:
    sim = port()
    result = await go(compile_flow(BRANCH), sim)
    assert result.node == "unknown"


HOURS = """\
entry: hours
nodes:
  hours:
    hours: {calendar: office, open: open, closed: closed, holiday: holiday}
  open:
    branch: {conditions: [{if: "open('office') and not holiday('office')", next: done}], else: wrong}
  closed:
    branch: {conditions: [{if: "not open('office')", next: done}], else: wrong}
  holiday:
    branch: {conditions: [{if: "holiday('office')", next: done}], else: wrong}
  done:
    hangup: {}
  wrong:
    hangup: {reason: wrong}
"""
OFFICE = BusinessCalendar("office", BusinessHours(timezone="America/Los_Angeles", hours={"mon-fri": ["08:00-17:00"]},
                                                  holidays=[date(2026, 12, 25)]))


@pytest.mark.parametrize(("moment", "node"), [
    (datetime(2026, 11, 23, 16, 0, tzinfo=UTC), "open"),     # Monday 08:00 in Los Angeles
    (datetime(2026, 11, 23, 15, 59, tzinfo=UTC), "closed"),  # 07:59 there
    (datetime(2026, 11, 24, 0, 30, tzinfo=UTC), "open"),     # Monday 16:30 there, Tuesday in UTC
    (datetime(2026, 11, 28, 18, 0, tzinfo=UTC), "closed"),   # Saturday
    (datetime(2026, 12, 25, 18, 0, tzinfo=UTC), "holiday"),  # Christmas, a Friday
])
async def test_hours_with_a_fixed_clock(moment: datetime, node: str) -> None:
    seen: list[str] = []
    sim = port()
    result = await go(compile_flow(HOURS, calendars={"office"}), sim, calendars={"office": OFFICE},
                      clock=lambda: moment, on_step=lambda _flow, name, _step: seen.append(name))
    assert seen == ["hours", node, "done"]
    assert (result.outcome, result.node) == (Outcome.HANGUP, "done")
    assert sim.hangup_reason == "normal"


async def test_unknown_calendar_at_run_time_takes_the_closed_branch() -> None:
    seen: list[str] = []
    result = await run(compile_flow(HOURS), port(), calendars={}, on_step=lambda _f, name, _s: seen.append(name))
    assert seen[:2] == ["hours", "closed"]
    assert result.node == "wrong"  # open('office') fails too: the branch's else


# ---------------------------------------------------------------------------- sub-flows


SUB = """\
entry: start
nodes:
  start:
    call: {node: identify, next: after}
  identify:
    set: {variables: {who: "'caller ' + digits(caller)[-4:]", depth: 1}, next: nested}
  nested:
    call: {flow: helper, next: back}
  back:
    return:
  after:
    queue: {queue: support, priority: "depth"}
"""
HELPER = """\
entry: one
store: helper
nodes:
  one:
    set: {variables: {seen: "true"}, language: fr}
"""


async def test_call_and_return() -> None:
    flows = {"helper": compile_flow(HELPER, name="helper")}
    flow = compile_flow(SUB, flows={"helper"})
    sim = port()
    seen: list[str] = []
    result = await go(flow, sim, flows=flows.get, on_step=lambda f, name, _s: seen.append(f"{f.name}.{name}"))
    assert seen == ["test.start", "test.identify", "test.nested", "helper.one", "test.back", "test.after"]
    assert (result.outcome, result.flow, result.node) == (Outcome.QUEUED, "test", "after")
    assert sim.data == {"ivr": {"who": "caller 0123", "depth": 1}, "helper": {"seen": True}}
    assert sim.queued is not None and sim.queued.priority == 1
    assert sim.queued.data == {"ivr": {"who": "caller 0123", "depth": 1}, "helper": {"seen": True}}
    assert sim.language == "en"  # the sub-flow's language ends with it


async def test_unknown_sub_flow_at_run_time() -> None:
    sim = port()
    result = await go(compile_flow(SUB), sim, flows=lambda name: None)
    assert (result.outcome, result.node, result.detail) == (Outcome.ERROR, "nested", "no flow 'helper'")
    assert said(sim) == [["goodbye"]] and sim.hangup_reason == "error"


async def test_transfer_to_another_flow() -> None:
    flow = compile_flow("""\
        entry: go
        nodes:
          go:
            transfer: {flow: survey, prompt: transferring}
        """)
    survey = compile_flow((REPO / "ivr_flows" / "survey.yaml").read_text(), name="survey")
    sim = port(keys("4"))
    result = await go(flow, sim, flows={"survey": survey}.get)
    assert (result.outcome, result.flow, result.node) == (Outcome.HANGUP, "survey", "goodbye")
    assert sim.data["survey"] == {"rating": 4}


async def test_survey() -> None:
    survey = compile_flow((REPO / "ivr_flows" / "survey.yaml").read_text(), name="survey")
    sim = port(keys("9", "5"))
    result = await go(survey, sim)
    assert (result.outcome, result.node) == (Outcome.HANGUP, "goodbye")
    assert sim.data == {"survey": {"rating": 5}}
    assert said(sim) == [["rate-call"], ["invalid-entry", "rate-call"], ["goodbye"]]
    sim = port()
    await go(survey, sim)
    assert sim.data == {"survey": {}}


# ---------------------------------------------------------------------------- endings and failures


async def test_voicemail_transfer_and_hangup_outcomes() -> None:
    flow = compile_flow("""\
        entry: vm
        nodes:
          vm:
            voicemail: {queue: support, max_s: 30}
        """)
    sim = port()
    result = await go(flow, sim)
    assert (result.outcome, result.detail) == (Outcome.VOICEMAIL, "support: recorded")
    assert sim.voicemails == [("support", 30.0)] and said(sim) == [["goodbye"]]

    flow = compile_flow("""\
        entry: t
        nodes:
          t:
            transfer: {number: "+1555${digits(caller)[-4:]}", on_failure: bye}
          bye:
            hangup: {prompt: [goodbye]}
        """)
    sim = port()
    result = await go(flow, sim)
    assert (result.outcome, result.detail) == (Outcome.TRANSFER, "+15550123")
    sim = port()
    sim.transfer_ok = False
    result = await go(flow, sim)
    assert (result.outcome, result.node) == (Outcome.HANGUP, "bye")


async def test_failed_queue_follows_on_failure() -> None:
    flow = compile_flow("""\
        entry: q
        nodes:
          q:
            queue: {queue: nowhere, on_failure: vm}
          vm:
            voicemail: {queue: support, next: bye}
          bye:
            hangup: {prompt: goodbye}
        """)
    sim = port(queue_answer="failed")
    result = await go(flow, sim)
    assert (result.outcome, result.node) == (Outcome.HANGUP, "bye")
    assert sim.voicemails == [("support", 120.0)]


async def test_a_failing_step_without_a_branch_ends_with_goodbye() -> None:
    flow = compile_flow("""\
        entry: q
        nodes:
          q:
            queue: {queue: support, priority: "int(customer.name)"}
        """)
    sim = port()
    result = await go(flow, sim)
    assert result.outcome is Outcome.ERROR
    assert result.detail == "int(customer.name): int() argument must be a string, a bytes-like object or a " \
                            "real number, not '_Missing'"
    assert said(sim) == [["goodbye"]] and sim.hangup_reason == "error" and sim.queued is None


async def test_an_unexpected_exception_is_caught_at_the_step() -> None:
    class Broken(SimulatedPort):
        async def queue(self, request: Any) -> str:
            raise RuntimeError("boom")

    sim = Broken([])
    result = await go(compile_flow(BRANCH), sim)
    assert (result.outcome, result.detail) == (Outcome.ERROR, "RuntimeError: boom")
    assert sim.hangup_reason == "error"


async def test_step_limit_stops_a_runaway_loop() -> None:
    flow = compile_flow("""\
        entry: menu
        nodes:
          menu:
            menu: {prompt: main-menu, options: [{key: 1, next: again}]}
          again:
            play: {prompt: invalid-entry, next: menu}
        """)
    sim = port([Input("digits", "1")] * 100)
    result = await go(flow, sim, max_steps=20)
    assert (result.outcome, result.steps, result.detail) == (Outcome.ERROR, 20, "more than 20 steps")


async def test_caller_hangup_ends_the_run_at_once() -> None:
    sim = port(Input("hangup"))
    result = await go(compile_flow(MENU), sim)
    assert (result.outcome, result.node, result.steps) == (Outcome.CALLER_HANGUP, "menu", 1)
    assert sim.queued is None and sim.hangup_reason is None

    flow = compile_flow("""\
        entry: a
        nodes:
          a:
            play: {prompt: welcome, next: b}
          b:
            hangup: {prompt: goodbye}
        """)
    sim = port(Input("hangup"))
    result = await go(flow, sim)
    assert (result.outcome, result.node) == (Outcome.CALLER_HANGUP, "a")


async def test_cancellation_passes_through() -> None:
    class Waiting(SimulatedPort):
        async def listen(self, *args: Any, **kwargs: Any) -> Input:
            await asyncio.sleep(3600)
            raise AssertionError("not reached")

    task = asyncio.create_task(go(compile_flow(MENU), Waiting([])))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_end_of_path_hangs_up_and_language_and_texts() -> None:
    flow = compile_flow("""\
        entry: a
        nodes:
          a:
            set: {variables: {amount: "'12.50'", n: 3}, language: es, next: b}
          b:
            play:
              prompt:
                - {text: "Hola ${customer.name}, $${not} ${n * 2}"}
                - {say: {currency: "${amount}"}}
                - {say: {number: 7}}
                - moh/default.wav
        """)
    sim = port()
    sim.data["customer"] = {"name": "Ada"}
    result = await go(flow, sim)
    assert (result.outcome, result.node) == (Outcome.HANGUP, "b")
    assert sim.language == "es"
    assert sim.played == [(Text("Hola Ada, ${not} 6"), SayAs("currency", "12.50"), SayAs("number", "7"),
                           Prompt(Path("moh/default.wav")))]
    assert sim.hangup_reason == "normal"


# ---------------------------------------------------------------------------- the demo flow


MAIN = (REPO / "ivr_flows" / "main.yaml").read_text()
WEEKDAYS = {"business": BusinessCalendar("business", BusinessHours(timezone="America/New_York",
                                                                  hours={"mon-fri": ["09:00-18:00"]}))}


@pytest.mark.parametrize(("caller", "script", "queue", "priority", "ivr"), [
    ("+15550100123", [Input("digits", "2"), Input("digits", "123456")], "support", 5,
     {"menu": "support", "account": "123456"}),
    ("+15550100124", [Input("digits", "2"), Input("digits", "234567")], "support", 0,
     {"menu": "support", "account": "234567"}),
    ("+15550100124", [Input("digits", "2"), Input("digits", "123456#")], "support", 5,  # Ada's account
     {"menu": "support", "account": "123456"}),
    ("+15550100124", [Input("speech", "account balance", 0.9)], "billing", 0, {"menu": "billing"}),
    ("+15550100124", [Input("digits", "0")], "support", 0, {"menu": "operator"}),
    ("+15550100124", [Input("digits", "7"), Input("timeout")], "support", 0, {}),  # twice wrong: operator
    ("+15550100124", [Input("digits", "2"), Input("digits", "12#"), Input("digits", "99")],
     "support", 0, {"menu": "support"}),
])
async def test_demo_flow(caller: str, script: list[Input], queue: str, priority: int, ivr: dict[str, str]) -> None:
    sim = port(script, caller=caller, callee="+15550100")
    result = await go(compile_flow(MAIN, name="main", calendars={"business"}), sim, customers=CUSTOMERS)
    assert result.outcome is Outcome.QUEUED
    assert sim.queued is not None
    assert (sim.queued.queue, sim.queued.priority) == (queue, priority)
    assert sim.data["ivr"] == ivr
    assert sim.queued.data["customer"]["phone"] in ("+15550100123", "+15550100124")
    if result.node == "support":
        assert sim.queued.skills == {"support": 1}


async def test_demo_flow_when_closed() -> None:
    sim = port(caller="+15550100123")
    sunday = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
    result = await go(compile_flow(MAIN, name="main"), sim, customers=CUSTOMERS, calendars=WEEKDAYS,
                      clock=lambda: sunday)
    assert (result.outcome, result.node) == (Outcome.VOICEMAIL, "closed-voicemail")
    assert said(sim) == [["welcome"], ["closed"], ["goodbye"]]
    assert sim.voicemails == [("support", 120.0)]
