"""The flow interpreter: :func:`run` drives one caller through a :class:`~cosmo.ivr.flow.Flow`.

Theory of operation
-------------------
A run starts at the flow's ``entry`` and executes one node at a time; each
step names the next node, ends the run (queue, voicemail, transfer, hang-up),
or ends its path (no ``next``): inside a ``call`` that is a return, otherwise
the call is hung up.  Everything the caller talks to goes through the
:class:`~cosmo.ivr.port.CallPort`, so the same run works on a real call and
in the simulator.

What the flow learns lives in the call's data, where it travels with the call
to the agent: the flow's variables under ``port.data[flow.store]`` (``ivr``),
a customer found by a look-up under ``port.data["customer"]``.

Robustness: the caller hanging up ends the run at once (``caller-hangup``).  A
step that fails (an HTTP look-up timing out, an expression on missing data) is
logged with the call id and the run follows the step's failure branch
(``on_error``, ``on_failure``; a branch's ``else``, an hours step's
``closed``); without one the caller hears goodbye and the call ends with
outcome ``error``.  ``max_steps`` stops a runaway loop the validator could not
see.  Cancellation passes through untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from cosmo.ivr import dialogue
from cosmo.ivr.errors import ExpressionError, StepError
from cosmo.ivr.expressions import CONSTANTS, STATIC_FUNCTIONS, Function, unwrap, wrap
from cosmo.ivr.flow import Flow
from cosmo.ivr.graph import prompt_is_path
from cosmo.ivr.hours import BusinessCalendar, Clock, system_clock
from cosmo.ivr.port import (
    CallPort,
    DigitSpec,
    Input,
    Prompt,
    PromptPart,
    QueueRequest,
    SayAs,
    SpeechSpec,
    Text,
)
from cosmo.ivr.settings import DEFAULT_CALENDAR
from cosmo.ivr.steps import (
    BranchStep,
    CallStep,
    CollectStep,
    GotoStep,
    HangupStep,
    HoursStep,
    HttpQuery,
    LookupStep,
    MenuStep,
    PlayStep,
    PromptItem,
    QueueStep,
    RecognizeStep,
    ReturnStep,
    SetStep,
    Step,
    TransferStep,
    VoicemailStep,
)

__all__ = ["MAX_CALL_DEPTH", "CustomerDirectory", "FlowResult", "FlowSource", "Outcome", "StepObserver", "run"]

log = logging.getLogger(__name__)

MAX_CALL_DEPTH = 16
"""Nested ``call`` steps one run may have open."""
MAX_HTTP_BODY = 1024 * 1024
"""The largest answer an HTTP look-up reads."""
DEFAULT_MAX_STEPS = 500


class Outcome(StrEnum):
    """How a run ended."""

    QUEUED = "queued"
    VOICEMAIL = "voicemail"
    TRANSFER = "transfer"
    HANGUP = "hangup"
    CALLER_HANGUP = "caller-hangup"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FlowResult:
    """The end of a run: its ``outcome``, the flow and node where it ended, the steps
    taken, and a ``detail`` (the queue's answer, the number, the error)."""

    outcome: Outcome
    flow: str
    node: str
    steps: int
    detail: str = ""


class CustomerDirectory(Protocol):
    """Where ``lookup: {customer: ...}`` finds customers (the store's repository, the
    simulator's file).  ``by`` is ``phone``, ``account``, ``email`` or ``id``."""

    async def find_customer(self, by: str, value: str) -> Mapping[str, Any] | None: ...


FlowSource = Callable[[str], Flow | None]
"""The current flow of a name, for ``call: {flow: ...}`` and ``transfer: {flow: ...}``."""

StepObserver = Callable[[Flow, str, Step], None]
"""Told of each step before it runs: ``(flow, node, step)`` (the simulator prints them)."""

Next = str | FlowResult | None


class _CallerGone(Exception):
    """The caller hung up: the run ends at once."""


@dataclass(frozen=True, slots=True)
class _Frame:
    flow: Flow
    next: str | None
    language: str


async def run(
    flow: Flow,
    port: CallPort,
    *,
    customers: CustomerDirectory | None = None,
    http: aiohttp.ClientSession | None = None,
    calendars: Mapping[str, BusinessCalendar] | None = None,
    flows: FlowSource | None = None,
    clock: Clock = system_clock,
    max_steps: int = DEFAULT_MAX_STEPS,
    http_timeout_s: float = 5.0,
    on_step: StepObserver | None = None,
) -> FlowResult:
    """Run ``flow`` on ``port`` until the call leaves it.

    ``customers`` answers customer look-ups, ``http`` is the session of HTTP
    look-ups (one is made per look-up when ``None``), ``calendars`` are the
    business hours by name, ``flows`` finds other flows by name, ``clock`` says
    what time it is, ``on_step`` watches.  Never raises for a failing step (see the module notes);
    ``asyncio.CancelledError`` passes through.
    """
    return await _Run(flow, port, customers, http, calendars or {}, flows, clock, max_steps, http_timeout_s,
                      on_step).run()


class _Run:
    """One run of a flow on one call (the :class:`~cosmo.ivr.dialogue.Conversation`)."""

    def __init__(
        self,
        flow: Flow,
        port: CallPort,
        customers: CustomerDirectory | None,
        http: aiohttp.ClientSession | None,
        calendars: Mapping[str, BusinessCalendar],
        flows: FlowSource | None,
        clock: Clock,
        max_steps: int,
        http_timeout_s: float,
        on_step: StepObserver | None = None,
    ) -> None:
        self.flow = flow
        self.on_step = on_step
        self.port = port
        self.customers = customers
        self.http = http
        self.calendars = calendars
        self.flows = flows
        self.clock = clock
        self.max_steps = max_steps
        self.http_timeout_s = http_timeout_s
        self.node = flow.entry
        self.steps = 0
        self.stack: list[_Frame] = []
        self.stores: list[str] = [flow.store]
        self._pending: Input | None = None
        self.functions: dict[str, Function] = {**STATIC_FUNCTIONS, "open": self._open, "holiday": self._holiday}

    # ---- the Conversation the dialogue steps use ----------------------------------------
    @property
    def call_id(self) -> str:
        return self.port.call_id

    @property
    def language(self) -> str:
        return self.port.language

    @property
    def variables(self) -> MutableMapping[str, Any]:
        store = self.port.data.get(self.flow.store)
        if not isinstance(store, dict):
            store = self.port.data[self.flow.store] = {}
        return store

    def parts(self, items: Sequence[PromptItem]) -> list[PromptPart]:
        """Prompt items as port prompt parts, ``${...}`` filled in."""
        out: list[PromptPart] = []
        for item in items:
            if item.prompt is not None:
                name = self._render(item.prompt)
                out.append(Prompt(Path(name) if prompt_is_path(name) else name))
            elif item.text is not None:
                out.append(Text(self._render(item.text)))
            elif item.say is not None:
                out.append(SayAs(item.say.kind, self._render(item.say.value)))
        return out

    async def play(self, parts: Sequence[PromptPart], *, barge_in: bool = False) -> None:
        if parts and not await self.port.play(parts, barge_in=barge_in):
            raise _CallerGone

    async def listen(self, parts: Sequence[PromptPart], *, digits: DigitSpec | None = None,
                     speech: SpeechSpec | None = None, barge_in: bool = True) -> Input:
        got = self._pending
        self._pending = None
        if got is None:
            got = await self.port.listen(parts, digits=digits, speech=speech, barge_in=barge_in)
        if got.kind == "hangup":
            raise _CallerGone
        if log.isEnabledFor(logging.DEBUG):
            log.debug("call %s: %s.%s heard %s %r", self.call_id, self.flow.name, self.node, got.kind, got.value)
        return got

    def clear_digits(self) -> None:
        self.port.clear_digits()

    def keep_input(self, got: Input) -> None:
        self._pending = got

    # ---- names and functions of expressions -------------------------------------------------
    def names(self) -> dict[str, Any]:
        names: dict[str, Any] = dict(CONSTANTS)
        names.update((str(key), wrap(value)) for key, value in self.variables.items())
        customer = self.port.data.get("customer")
        names.update(
            caller=self.port.caller, callee=self.port.callee, language=self.port.language,
            call_id=self.port.call_id, customer=wrap(customer if isinstance(customer, Mapping) else {}),
        )
        return names

    def _calendar(self, name: str) -> BusinessCalendar:
        calendar = self.calendars.get(name)
        if calendar is None:
            raise ValueError(f"unknown calendar {name!r}")
        return calendar

    def _open(self, name: str = DEFAULT_CALENDAR) -> bool:
        return self._calendar(name).is_open(self.clock())

    def _holiday(self, name: str = DEFAULT_CALENDAR) -> bool:
        return self._calendar(name).is_holiday(self.clock())

    def _render(self, source: str) -> str:
        if "${" not in source:
            return source
        return self.flow.template(source).render(self.names(), self.functions)

    def _evaluate(self, source: str) -> Any:
        return self.flow.expression(source).evaluate(self.names(), self.functions)

    # ---- the run -------------------------------------------------------------------------------
    def _result(self, outcome: Outcome, detail: str = "") -> FlowResult:
        result = FlowResult(outcome, self.flow.name, self.node, self.steps, detail)
        log.info("call %s: flow %s ended at %s after %d steps: %s%s", self.call_id, self.flow.name, self.node,
                 self.steps, outcome.value, f" ({detail})" if detail else "")
        return result

    async def run(self) -> FlowResult:
        log.info("call %s: flow %s (%s) from %s", self.call_id, self.flow.name, self.flow.digest[:12],
                 self.flow.entry)
        self.port.language = self.flow.language
        _ = self.variables  # the store exists from the start: a run that learnt nothing says so
        target: str | None = self.flow.entry
        while True:
            if target is None:
                if not self.stack:
                    await self.port.hangup("normal")
                    return self._result(Outcome.HANGUP)
                target = self._pop()
                continue
            if self.steps >= self.max_steps:
                log.error("call %s: flow %s passed %d steps at %s; stopping it", self.call_id, self.flow.name,
                          self.max_steps, target)
                return await self._fail(f"more than {self.max_steps} steps")
            self.node = target
            step = self.flow.nodes[target]
            self.steps += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("call %s: %s.%s %s", self.call_id, self.flow.name, target, type(step).__name__)
            if self.on_step is not None:
                self.on_step(self.flow, target, step)
            try:
                outcome = await self._step(step)
            except _CallerGone:
                return self._result(Outcome.CALLER_HANGUP)
            except (StepError, ExpressionError) as exc:
                log.warning("call %s: flow %s node %s: %s", self.call_id, self.flow.name, target, exc)
                outcome = await self._failure(step, str(exc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the root of a step: the caller must not be left on a dead line
                log.exception("call %s: flow %s node %s failed", self.call_id, self.flow.name, target)
                outcome = await self._failure(step, f"{type(exc).__name__}: {exc}")
            if isinstance(outcome, FlowResult):
                return outcome
            target = outcome

    async def _failure(self, step: Step, detail: str) -> Next:
        """Where a failed step goes: its failure branch, else goodbye."""
        for name in ("on_error", "on_failure", "else_", "closed"):
            target = getattr(step, name, None)
            if isinstance(target, str):
                return target
        return await self._fail(detail)

    async def _fail(self, detail: str) -> FlowResult:
        await self._goodbye("error")
        return self._result(Outcome.ERROR, detail)

    async def _goodbye(self, reason: str = "normal", parts: Sequence[PromptPart] = (Prompt("goodbye"),)) -> None:
        """Say ``parts`` if the caller is still there, and hang up."""
        if parts:
            await self.port.play(parts)
        await self.port.hangup(reason)

    async def _give_up(self) -> FlowResult:
        await self._goodbye()
        return self._result(Outcome.HANGUP, "no valid input")

    def _pop(self) -> str | None:
        frame = self.stack.pop()
        self.flow = frame.flow
        self.port.language = frame.language
        return frame.next

    def _enter(self, name: str) -> str:
        if self.flows is None:
            raise StepError(f"no flow {name!r}: other flows are not available here")
        flow = self.flows(name)
        if flow is None:
            raise StepError(f"no flow {name!r}")
        self.flow = flow
        if flow.store not in self.stores:
            self.stores.append(flow.store)
        _ = self.variables
        self.port.language = flow.language
        return flow.entry

    def _collected(self) -> dict[str, Any]:
        data = self.port.data
        return {key: data[key] for key in (*self.stores, "customer") if key in data}

    # ---- steps -----------------------------------------------------------------------------------
    async def _step(self, step: Step) -> Next:
        if isinstance(step, MenuStep | CollectStep | RecognizeStep):
            return await self._dialogue(step)
        if isinstance(step, PlayStep):
            await self.play(self.parts(step.prompt), barge_in=step.barge_in)
            return step.next
        if isinstance(step, GotoStep):
            return step.next
        if isinstance(step, SetStep):
            return self._set(step)
        if isinstance(step, BranchStep):
            for condition in step.conditions:
                if self._evaluate(condition.if_):
                    return condition.next
            return step.else_
        if isinstance(step, HoursStep):
            calendar = self.calendars.get(step.calendar)
            if calendar is None:
                raise StepError(f"unknown calendar {step.calendar!r}")
            now = self.clock()
            if step.holiday is not None and calendar.is_holiday(now):
                return step.holiday
            return step.open if calendar.is_open(now) else step.closed
        if isinstance(step, LookupStep):
            return await self._lookup(step)
        if isinstance(step, QueueStep):
            return await self._queue(step)
        if isinstance(step, VoicemailStep):
            return await self._voicemail(step)
        if isinstance(step, TransferStep):
            return await self._transfer(step)
        if isinstance(step, HangupStep):
            await self._goodbye(step.reason, self.parts(step.prompt))
            return self._result(Outcome.HANGUP)
        if isinstance(step, CallStep):
            if len(self.stack) >= MAX_CALL_DEPTH:
                raise StepError(f"more than {MAX_CALL_DEPTH} nested calls")
            self.stack.append(_Frame(self.flow, step.next, self.port.language))
            return step.node if step.node is not None else self._enter(str(step.flow))
        if isinstance(step, ReturnStep):
            return self._pop() if self.stack else None
        raise StepError(f"no interpreter for {type(step).__name__}")  # pragma: no cover

    async def _dialogue(self, step: MenuStep | CollectStep | RecognizeStep) -> Next:
        if isinstance(step, MenuStep):
            outcome = await dialogue.menu(self, step)
        elif isinstance(step, CollectStep):
            outcome = await dialogue.collect(self, step)
        else:
            outcome = await dialogue.recognize(self, step)
        return await self._give_up() if outcome is dialogue.GIVE_UP else str(outcome)

    def _set(self, step: SetStep) -> Next:
        for name, value in step.variables.items():
            self.variables[name] = unwrap(self._evaluate(value)) if isinstance(value, str) else value
        if step.language is not None:
            self.port.language = step.language
        return step.next

    async def _lookup(self, step: LookupStep) -> Next:
        found = step.found or step.next
        not_found = step.not_found or step.next
        if step.customer is not None:
            if self.customers is None:
                raise StepError("no customer directory")
            value = self._render(step.customer.value)
            record = await self.customers.find_customer(step.customer.by, value)
            log.info("call %s: customer by %s %r: %s", self.call_id, step.customer.by, value,
                     "found" if record is not None else "not found")
            if record is None:
                return not_found
            self.port.data["customer"] = dict(record)
            return found
        assert step.http is not None  # the model requires one of customer, http
        status, body = await self._http(step.http)
        if status == 404:
            return not_found
        self.variables[step.http.into] = body
        return found

    async def _http(self, query: HttpQuery) -> tuple[int, Any]:
        """Ask the web service: ``(status, JSON or text)``; raises StepError for a
        failure, a status other than 2xx or 404, or an answer over MAX_HTTP_BODY."""
        url = self._render(query.url)
        params = {key: self._render(value) for key, value in query.params.items()}
        headers = {key: self._render(value) for key, value in query.headers.items()}
        body = _render_json(query.json_body, self._render)
        timeout = query.timeout_s or self.http_timeout_s
        what = f"HTTP {query.method} {url}"
        session = self.http
        own = session is None
        try:
            if session is None:
                session = aiohttp.ClientSession()
            async with asyncio.timeout(timeout):
                async with session.request(query.method, url, params=params or None, headers=headers or None,
                                           json=body) as response:
                    status = response.status
                    raw = bytearray()
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        raw += chunk
                        if len(raw) > MAX_HTTP_BODY:
                            break
        except TimeoutError:
            raise StepError(f"{what}: no answer within {timeout:g} s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise StepError(f"{what}: {exc or type(exc).__name__}") from None
        finally:
            if own and session is not None:
                await session.close()
        log.info("call %s: %s -> %d", self.call_id, what, status)
        if len(raw) > MAX_HTTP_BODY:
            raise StepError(f"{what}: answer larger than {MAX_HTTP_BODY} bytes")
        if status != 404 and not 200 <= status < 300:
            raise StepError(f"{what}: status {status}")
        text = raw.decode("utf-8", errors="replace")
        try:
            return status, json.loads(text) if text.strip() else None
        except ValueError:
            return status, text

    async def _queue(self, step: QueueStep) -> Next:
        value = self._evaluate(step.priority)
        try:
            priority = int(value)
        except (TypeError, ValueError):
            raise StepError(f"priority {step.priority!r} is {value!r}, not a number") from None
        await self.play(self.parts(step.prompt))
        request = QueueRequest(queue=step.queue, priority=priority, skills=dict(step.skills),
                               announcements=step.announcements, data=self._collected())
        log.info("call %s: to queue %s with priority %d", self.call_id, step.queue, priority)
        answer = await self.port.queue(request)
        if answer == "failed":
            raise StepError(f"queue {step.queue!r} refused the call")
        return self._result(Outcome.QUEUED, f"{step.queue}: {answer}")

    async def _voicemail(self, step: VoicemailStep) -> Next:
        recorded = await self.port.voicemail(step.queue, max_s=step.max_s, parts=self.parts(step.prompt))
        detail = f"{step.queue}: {'recorded' if recorded else 'nothing recorded'}"
        if step.next is not None:
            return step.next
        await self._goodbye()
        return self._result(Outcome.VOICEMAIL, detail)

    async def _transfer(self, step: TransferStep) -> Next:
        if step.flow is not None:
            await self.play(self.parts(step.prompt))
            self.stack.clear()
            return self._enter(step.flow)
        number = self._render(str(step.number))
        if not number:
            raise StepError(f"transfer number {step.number!r} is empty")
        await self.play(self.parts(step.prompt))
        if not await self.port.transfer(number):
            raise StepError(f"transfer to {number} failed")
        return self._result(Outcome.TRANSFER, number)


def _render_json(value: Any, render: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return render(value)
    if isinstance(value, dict):
        return {key: _render_json(item, render) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_json(item, render) for item in value]
    return value
