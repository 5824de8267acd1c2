"""The flow language: one pydantic model per step, the flow file's header, its JSON Schema.

A flow file::

    name: main                 # optional: the file name without .yaml
    language: en               # optional: the settings' default_language
    entry: welcome
    nodes:
      welcome:
        play: {prompt: welcome, next: menu}
      menu:
        menu:
          prompt: main-menu
          options:
            - {key: 1, say: [billing], next: billing}
      billing:
        queue: {queue: billing}

Each node holds exactly one step, named by its key (``play``, ``menu`` ...).
Models are frozen and forbid unknown fields; the loader
(:mod:`cosmo.ivr.loader`) validates each node against its step's model and
turns pydantic's errors into problems with a line and column.  Texts that may
hold ``${...}`` and expressions stay text here; the loader compiles them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = [
    "DIGIT_KEYS",
    "STEP_KINDS",
    "STEP_MODELS",
    "BranchCondition",
    "BranchStep",
    "CallStep",
    "CollectStep",
    "CustomerQuery",
    "FlowHeader",
    "GotoStep",
    "HangupStep",
    "HoursStep",
    "HttpQuery",
    "LookupStep",
    "MenuOption",
    "MenuStep",
    "PlayStep",
    "PromptItem",
    "PromptList",
    "QueueStep",
    "RecognizeStep",
    "Ref",
    "ReturnStep",
    "SaySpec",
    "SetStep",
    "Step",
    "TransferStep",
    "VoicemailStep",
    "normalise_phrase",
    "refs",
]

DIGIT_KEYS = "0123456789*#"
NODE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
VARIABLE_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
FLOW_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
LANGUAGE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
URL = r"^(https?://|\$\{)"

NAME_RULES = {
    NODE_NAME: "node name (letters, digits, '_', '.', '-')",
    VARIABLE_NAME: "variable name (a letter, then letters, digits, '_')",
    FLOW_NAME: "name (letters, digits, '_', '.', '-')",
    LANGUAGE: "language (like en or en-GB)",
    URL: "URL (http://..., https://... or one starting with ${...})",
}
"""What each name pattern allows, for error messages."""

NodeName = Annotated[str, Field(pattern=NODE_NAME, max_length=100)]
VariableName = Annotated[str, Field(pattern=VARIABLE_NAME, max_length=64)]
FlowName = Annotated[str, Field(pattern=FLOW_NAME, max_length=100)]
Seconds = Annotated[float, Field(gt=0, le=600)]
Retries = Annotated[int, Field(ge=0, le=10)]
Confidence = Annotated[float, Field(ge=0, le=1)]


def _text(value: Any) -> Any:
    """Numbers written without quotes (``key: 1``, ``number: 5551234``) as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text, json_schema_input_type=str | int | float)]


def _phrases(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Phrases = Annotated[
    tuple[Annotated[str, Field(min_length=1, max_length=200)], ...],
    BeforeValidator(_phrases, json_schema_input_type=str | list[str]),
]

_PHRASE_JUNK = re.compile(r"[^\w']+|_")


def normalise_phrase(text: str) -> str:
    """Lower case, punctuation as spaces, one space between words: how phrases
    are matched (``"Account-Balance!"`` -> ``"account balance"``)."""
    return " ".join(_PHRASE_JUNK.sub(" ", text.lower()).replace("'", "").split())


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- prompts


SayKindName = Literal["digits", "number", "currency", "duration", "position"]


class SaySpec(_Spec):
    """A value said from prompt fragments: ``{digits: "${account}"}``; exactly one kind."""

    digits: Text | None = None
    number: Text | None = None
    currency: Text | None = None
    duration: Text | None = None
    position: Text | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if len(self.model_fields_set) != 1:
            raise ValueError("needs exactly one of digits, number, currency, duration, position")
        return self

    @property
    def kind(self) -> SayKindName:
        (name,) = self.model_fields_set
        return name  # type: ignore[return-value]

    @property
    def value(self) -> str:
        return str(getattr(self, self.kind))


class PromptItem(_Spec):
    """One part of what is played: a prompt name (or path), ``text`` for text-to-speech,
    or ``say``.  A plain string is a prompt name."""

    prompt: str | None = Field(default=None, min_length=1)
    text: str | None = None
    say: SaySpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"prompt": value}
        if not isinstance(value, dict):
            raise ValueError("a prompt is a prompt name, {text: ...} or {say: {...}}")  # noqa: TRY004 (pydantic wants ValueError)
        return value

    @model_validator(mode="after")
    def _one(self) -> Self:
        if len(self.model_fields_set) != 1:
            raise ValueError("needs exactly one of prompt, text, say")
        return self


def _prompts(value: Any) -> Any:
    if value is None:
        return []
    return value if isinstance(value, list | tuple) else [value]


PromptList = Annotated[
    tuple[PromptItem, ...],
    BeforeValidator(_prompts, json_schema_input_type=str | PromptItem | list[str | PromptItem]),
]
"""One prompt part or a list of them."""


def _prompt(name: str) -> tuple[PromptItem, ...]:
    return (PromptItem(prompt=name),)


# --------------------------------------------------------------------------- steps


class PlayStep(_Spec):
    """Play prompts, then go on."""

    prompt: PromptList
    barge_in: bool = False
    next: NodeName | None = None


class MenuOption(_Spec):
    """A menu choice: a key, spoken phrases, or both."""

    key: Text | None = None
    say: Phrases = ()
    value: str | None = None
    next: NodeName

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value not in DIGIT_KEYS):
            raise ValueError(f"a menu key is one of {DIGIT_KEYS}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.key is None and not self.say:
            raise ValueError("needs a key or say phrases")
        return self

    @property
    def label(self) -> str:
        """What the menu's variable gets: ``value``, else the key, else the first phrase."""
        return self.value or self.key or normalise_phrase(self.say[0])


class MenuStep(_Spec):
    """Ask, take one key (or a phrase), go to the option's node."""

    prompt: PromptList
    options: tuple[MenuOption, ...] = Field(min_length=1)
    timeout_s: Seconds = 5.0
    retries: Retries = 2
    invalid: PromptList = _prompt("invalid-entry")
    no_input: PromptList = _prompt("no-input")
    on_failure: NodeName | None = None
    confidence: Confidence = 0.5
    barge_in: bool = True
    variable: VariableName | None = None


class CollectStep(_Spec):
    """Collect digits into a variable, checked by length, pattern and Luhn; optionally confirmed."""

    variable: VariableName
    prompt: PromptList
    min_length: int = Field(default=1, ge=1, le=64)
    max_length: int = Field(default=16, ge=1, le=64)
    terminator: Text | None = "#"
    first_timeout_s: Seconds = 5.0
    inter_digit_timeout_s: Seconds = 3.0
    total_timeout_s: Seconds | None = None
    pattern: str | None = None
    luhn: bool = False
    confirm: bool = False
    retries: Retries = 2
    invalid: PromptList = _prompt("invalid-entry")
    no_input: PromptList = _prompt("no-input")
    barge_in: bool = True
    next: NodeName
    on_failure: NodeName | None = None

    @field_validator("terminator")
    @classmethod
    def _terminator(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value not in DIGIT_KEYS):
            raise ValueError(f"a terminator is one of {DIGIT_KEYS}, got {value!r}")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        if self.min_length > self.max_length:
            raise ValueError("min_length must not exceed max_length")
        return self


class RecognizeStep(_Spec):
    """Listen for speech: free text, or one of ``intents``, into ``variable``."""

    variable: VariableName
    prompt: PromptList
    intents: dict[VariableName, Phrases] = Field(default_factory=dict)
    confidence: Confidence = 0.5
    timeout_s: Seconds = 5.0
    max_speech_s: Seconds = 10.0
    retries: Retries = 2
    no_match: PromptList = _prompt("invalid-entry")
    no_input: PromptList = _prompt("no-input")
    digits: bool = False
    max_digits: int = Field(default=16, ge=1, le=64)
    fallback: NodeName | None = None
    barge_in: bool = True
    next: NodeName
    on_failure: NodeName | None = None

    @model_validator(mode="after")
    def _dtmf(self) -> Self:
        if self.digits and self.fallback is not None:
            raise ValueError("digits and fallback exclude each other: keys go into the variable or to fallback")
        return self


class CustomerQuery(_Spec):
    """Find the customer by ``phone``, ``account``, ``email`` or ``id``."""

    by: Literal["phone", "account", "email", "id"] = "phone"
    value: Text = "${caller}"


class HttpQuery(_Spec):
    """Ask a web service; its JSON (or text) answer goes into the variable ``into``."""

    url: str = Field(pattern=URL)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    timeout_s: Annotated[float, Field(gt=0, le=120)] | None = None
    json_body: Any = Field(default=None, alias="json")
    params: dict[str, Text] = Field(default_factory=dict)
    headers: dict[str, Text] = Field(default_factory=dict)
    into: VariableName

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class LookupStep(_Spec):
    """Look a customer up, or ask a web service; branch on the answer."""

    customer: CustomerQuery | None = None
    http: HttpQuery | None = None
    found: NodeName | None = None
    not_found: NodeName | None = None
    next: NodeName | None = None
    on_error: NodeName | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.customer is None) == (self.http is None):
            raise ValueError("needs exactly one of customer, http")
        if self.next is None and (self.found is None or self.not_found is None):
            raise ValueError("needs next, or both found and not_found")
        return self


class BranchCondition(_Spec):
    """``if`` the expression is true, go to ``next``."""

    if_: Annotated[str, BeforeValidator(_text)] = Field(alias="if")
    next: NodeName


class BranchStep(_Spec):
    """The first condition that holds decides; else ``else``."""

    conditions: tuple[BranchCondition, ...] = Field(min_length=1)
    else_: NodeName = Field(alias="else")


class HoursStep(_Spec):
    """Open or closed by a business-hours calendar (a holiday may have its own node)."""

    calendar: str = "business"
    open: NodeName
    closed: NodeName
    holiday: NodeName | None = None


class QueueStep(_Spec):
    """Hand the call to an ACD queue with what the flow collected; the flow ends."""

    queue: FlowName
    skills: dict[Annotated[str, Field(pattern=FLOW_NAME)], Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=dict)
    priority: Text = "0"
    announcements: bool = True
    prompt: PromptList = ()
    on_failure: NodeName | None = None


class VoicemailStep(_Spec):
    """Record a message into a queue as a voicemail work item."""

    queue: FlowName
    max_s: Seconds = 120.0
    prompt: PromptList = _prompt("leave-message")
    next: NodeName | None = None


class TransferStep(_Spec):
    """Connect the caller to a number, or go on in another flow."""

    number: Text | None = None
    flow: FlowName | None = None
    prompt: PromptList = ()
    on_failure: NodeName | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.number is None) == (self.flow is None):
            raise ValueError("needs exactly one of number, flow")
        return self


class GotoStep(_Spec):
    """Go to a node (written ``goto: node``)."""

    next: NodeName


class SetStep(_Spec):
    """Set variables from expressions (text values are expressions), or the language."""

    variables: dict[VariableName, Any] = Field(default_factory=dict)
    language: Annotated[str, Field(pattern=LANGUAGE)] | None = None
    next: NodeName | None = None


class HangupStep(_Spec):
    """Hang up, after an optional prompt."""

    prompt: PromptList = ()
    reason: str = "normal"


class CallStep(_Spec):
    """Run a node or another flow as a sub-flow; its ``return`` comes back to ``next``."""

    node: NodeName | None = None
    flow: FlowName | None = None
    next: NodeName | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.node is None) == (self.flow is None):
            raise ValueError("needs exactly one of node, flow")
        return self


class ReturnStep(_Spec):
    """Back to the step after the ``call`` that entered this sub-flow."""


Step = (
    PlayStep | MenuStep | CollectStep | RecognizeStep | LookupStep | BranchStep | HoursStep | QueueStep
    | VoicemailStep | TransferStep | GotoStep | SetStep | HangupStep | CallStep | ReturnStep
)

STEP_MODELS: dict[str, type[_Spec]] = {
    "play": PlayStep,
    "menu": MenuStep,
    "collect": CollectStep,
    "recognize": RecognizeStep,
    "lookup": LookupStep,
    "branch": BranchStep,
    "hours": HoursStep,
    "queue": QueueStep,
    "voicemail": VoicemailStep,
    "transfer": TransferStep,
    "goto": GotoStep,
    "set": SetStep,
    "hangup": HangupStep,
    "call": CallStep,
    "return": ReturnStep,
}
STEP_KINDS = tuple(STEP_MODELS)
WAITING_STEPS = (MenuStep, CollectStep, RecognizeStep)
"""Steps that wait for the caller: a loop must pass one of them."""


class FlowHeader(_Spec):
    """The top of a flow file; ``nodes`` are checked one by one against their step."""

    name: FlowName | None = None
    description: str = ""
    language: Annotated[str, Field(pattern=LANGUAGE)] | None = None
    entry: NodeName
    # The key of the call data that the flow's variables live under
    # (``ivr``; a survey uses ``survey``).
    store: VariableName = "ivr"
    nodes: dict[NodeName, Any] = Field(min_length=1)


# --------------------------------------------------------------------------- references


Loc = tuple[str | int, ...]
RefKind = Literal["node", "prompt", "template", "expression", "value", "phrases", "flow", "calendar", "variable"]


@dataclass(frozen=True, slots=True)
class Ref:
    """Something a step names that the loader checks or compiles: ``loc`` is the path
    from the step's value (prompt lists in their list form)."""

    kind: RefKind
    loc: Loc
    value: Any


def _prompt_refs(name: str, items: tuple[PromptItem, ...]) -> Iterator[Ref]:
    for index, item in enumerate(items):
        if item.prompt is not None:
            yield Ref("prompt", (name, index), item.prompt)
        elif item.text is not None:
            yield Ref("template", (name, index, "text"), item.text)
        elif item.say is not None:
            yield Ref("template", (name, index, "say", item.say.kind), item.say.value)


def _json_refs(value: Any, loc: Loc) -> Iterator[Ref]:
    if isinstance(value, str):
        yield Ref("template", loc, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_refs(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_refs(item, (*loc, index))


_NODE_FIELDS = ("next", "on_failure", "on_error", "found", "not_found", "fallback", "open", "closed",
                "holiday", "node")
_PROMPT_FIELDS = ("prompt", "invalid", "no_input", "no_match")


def refs(step: Step) -> Iterator[Ref]:
    """Every node, prompt, template, expression, phrase list, flow, calendar and variable
    that ``step`` names, with its path."""
    fields = type(step).model_fields
    for name in _NODE_FIELDS:
        if name in fields and getattr(step, name) is not None:
            yield Ref("node", (name,), getattr(step, name))
    for name in _PROMPT_FIELDS:
        if name in fields:
            yield from _prompt_refs(name, getattr(step, name))
    for name in ("variable", "into"):
        if name in fields and getattr(step, name) is not None:
            yield Ref("variable", (name,), getattr(step, name))
    if isinstance(step, MenuStep):
        for index, option in enumerate(step.options):
            yield Ref("node", ("options", index, "next"), option.next)
            if option.say:
                yield Ref("phrases", ("options", index, "say"), option.say)
    elif isinstance(step, RecognizeStep):
        for intent, phrases in step.intents.items():
            yield Ref("phrases", ("intents", intent), phrases)
    elif isinstance(step, LookupStep):
        if step.customer is not None:
            yield Ref("template", ("customer", "value"), step.customer.value)
        if step.http is not None:
            yield Ref("template", ("http", "url"), step.http.url)
            yield Ref("variable", ("http", "into"), step.http.into)
            yield from _json_refs(step.http.json_body, ("http", "json"))
            for key, text in step.http.params.items():
                yield Ref("template", ("http", "params", key), text)
            for key, text in step.http.headers.items():
                yield Ref("template", ("http", "headers", key), text)
    elif isinstance(step, BranchStep):
        for index, condition in enumerate(step.conditions):
            yield Ref("expression", ("conditions", index, "if"), condition.if_)
            yield Ref("node", ("conditions", index, "next"), condition.next)
        yield Ref("node", ("else",), step.else_)
    elif isinstance(step, HoursStep):
        yield Ref("calendar", ("calendar",), step.calendar)
    elif isinstance(step, QueueStep):
        yield Ref("expression", ("priority",), step.priority)
    elif isinstance(step, TransferStep):
        if step.number is not None:
            yield Ref("template", ("number",), step.number)
        if step.flow is not None:
            yield Ref("flow", ("flow",), step.flow)
    elif isinstance(step, CallStep) and step.flow is not None:
        yield Ref("flow", ("flow",), step.flow)
    elif isinstance(step, SetStep):
        for key, value in step.variables.items():
            yield Ref("variable", ("variables", key), key)
            if isinstance(value, str):
                yield Ref("expression", ("variables", key), value)


def targets(step: Step) -> tuple[str, ...]:
    """The nodes ``step`` can go to next (sub-flow ``node`` included)."""
    return tuple(ref.value for ref in refs(step) if ref.kind == "node")
