"""Classification rules and response-time targets (``config/email-rules.yaml``).

Theory of operation
-------------------
The file holds two sections.  ``rules`` is an ordered list; each rule has
``when`` (conditions, all of which must hold; a list inside one condition
matches when any of its entries does) and ``set`` (what the rule decides:
``queue``, ``skills``, ``priority``, ``auto_ack``).  The first matching rule
decides and stops the evaluation, unless it says ``continue: true``: then
its decisions stand and later rules may add skills or change queue and
priority.  A message no rule matches keeps the queue of the address (or
mailbox) it came to, no extra skills and priority 0.

Conditions: ``subject``, ``body``, ``text`` (subject or body) — keywords or
phrases, matched as whole words, case-insensitively; ``subject_pattern``,
``body_pattern``, ``pattern`` — regular expressions (searched,
case-insensitively); ``from`` — sender addresses; ``from_domain`` — sender
domains (subdomains included); ``to`` — our addresses; ``queue`` — the
queue so far; ``language`` — ISO 639-1 codes (:mod:`cosmo.email.language`);
``has_attachments`` — true or false.

``targets`` gives a response-time target per queue (``4h``, ``30m``,
``90s`` or seconds).  While a case waits for its answer, its work item's
priority rises by the ``escalate`` steps as the wait reaches fractions of the
target (by default +1 at half, +2 at three quarters, +4 at 90 %, +8 once
overdue): :meth:`ResponseTarget.boost`.

Everything here is pure; :class:`RuleBook` re-reads the file when its
modification time changes and keeps the running rules when the new file is
refused (the problems are logged with their lines).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cosmo.email.errors import RulesError
from cosmo.yamlfile import YamlSyntaxError, dotted, read_yaml, validation_problems

__all__ = [
    "DEFAULT_ESCALATION",
    "Classification",
    "MessageFacts",
    "ResponseTarget",
    "RuleBook",
    "RuleSet",
    "load_rules",
    "parse_duration",
    "parse_rules",
]

log = logging.getLogger(__name__)

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

DEFAULT_ESCALATION: tuple[tuple[float, int], ...] = ((0.5, 1), (0.75, 2), (0.9, 4), (1.0, 8))
"""Priority added as the wait reaches each fraction of the response-time target."""


def parse_duration(value: object) -> float:
    """Seconds in ``4h``, ``30m``, ``90s``, ``2d`` or a plain number.  Raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use 90s, 30m, 4h, 2d or seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    return seconds


# ----------------------------------------------------------------------------- file schema

def _words(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class _When(_Model):
    subject: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    body: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    text: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    subject_pattern: str | None = None
    body_pattern: str | None = None
    pattern: str | None = None
    sender: list[str] = Field(default_factory=list, alias="from")
    from_domain: list[str] = Field(default_factory=list)
    to: list[str] = Field(default_factory=list)
    queue: list[str] = Field(default_factory=list)
    language: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}$")]] = Field(default_factory=list)
    has_attachments: bool | None = None

    @field_validator("subject", "body", "text", "sender", "from_domain", "to", "queue", "language", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _words(value)

    @field_validator("subject_pattern", "body_pattern", "pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> _When:
        if not any(getattr(self, name) not in (None, []) for name in type(self).model_fields):
            raise ValueError("a rule needs at least one condition")
        return self


class _Set(_Model):
    queue: Annotated[str, Field(pattern=_NAME, max_length=64)] | None = None
    skills: dict[Annotated[str, Field(pattern=_NAME)], Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=dict)
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    auto_ack: bool | None = None


class _Rule(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=_NAME)]
    when: _When
    set: _Set
    continue_: bool = Field(default=False, alias="continue")


class _Step(_Model):
    at: float = Field(gt=0, le=10)
    priority: int = Field(ge=-1000, le=1000)


class _Target(_Model):
    target: float
    escalate: list[_Step] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"target": data} if not isinstance(data, dict) else data

    @field_validator("target", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @field_validator("escalate")
    @classmethod
    def _increasing(cls, value: list[_Step] | None) -> list[_Step] | None:
        if value is not None and [s.at for s in value] != sorted({s.at for s in value}):
            raise ValueError("escalate steps must come in increasing 'at' order")
        return value


class _RulesFile(_Model):
    rules: list[_Rule] = Field(default_factory=list)
    targets: dict[Annotated[str, Field(pattern=_NAME)], _Target] = Field(default_factory=dict)


# ----------------------------------------------------------------------------- compiled rules


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What rules look at: the message, the sender, and where it came in."""

    subject: str
    body: str
    sender: str | None
    to: tuple[str, ...]
    queue: str
    language: str | None = None
    has_attachments: bool = False


@dataclass(frozen=True, slots=True)
class Classification:
    """What the rules decided: the queue, extra skills, the base priority, and which rules matched."""

    queue: str
    skills: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    rules: tuple[str, ...] = ()
    auto_ack: bool | None = None
    """``False`` when a rule forbids the acknowledgement; ``None``: the settings decide."""


@dataclass(frozen=True, slots=True)
class ResponseTarget:
    """A queue's response-time target and the priority steps as it nears."""

    target_s: float
    steps: tuple[tuple[float, int], ...] = DEFAULT_ESCALATION

    def boost(self, waited_s: float) -> int:
        """Priority added after waiting ``waited_s`` seconds for an answer."""
        added = 0
        for fraction, priority in self.steps:
            if waited_s >= fraction * self.target_s:
                added = priority
        return added

    def next_step_in(self, waited_s: float) -> float | None:
        """Seconds until the boost next changes (``None``: it never will)."""
        for fraction, _ in self.steps:
            at = fraction * self.target_s
            if waited_s < at:
                return at - waited_s
        return None


def _keywords(words: list[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _regex(pattern: str | None) -> re.Pattern[str] | None:
    return None if pattern is None else re.compile(pattern, re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    subject: re.Pattern[str] | None
    body: re.Pattern[str] | None
    text: re.Pattern[str] | None
    subject_pattern: re.Pattern[str] | None
    body_pattern: re.Pattern[str] | None
    pattern: re.Pattern[str] | None
    senders: frozenset[str]
    domains: tuple[str, ...]
    to: frozenset[str]
    queues: frozenset[str]
    languages: frozenset[str]
    has_attachments: bool | None
    queue: str | None
    skills: Mapping[str, int]
    priority: int | None
    auto_ack: bool | None
    keep_going: bool

    def matches(self, facts: MessageFacts, queue: str) -> bool:
        sender = (facts.sender or "").lower()
        domain = sender.rpartition("@")[2]
        checks = (
            (self.subject, lambda p: p.search(facts.subject)),
            (self.body, lambda p: p.search(facts.body)),
            (self.text, lambda p: p.search(facts.subject) or p.search(facts.body)),
            (self.subject_pattern, lambda p: p.search(facts.subject)),
            (self.body_pattern, lambda p: p.search(facts.body)),
            (self.pattern, lambda p: p.search(facts.subject) or p.search(facts.body)),
        )
        for compiled, test in checks:
            if compiled is not None and not test(compiled):
                return False
        if self.senders and sender not in self.senders:
            return False
        if self.domains and not any(domain == d or domain.endswith("." + d) for d in self.domains):
            return False
        if self.to and not self.to.intersection(facts.to):
            return False
        if self.queues and queue not in self.queues:
            return False
        if self.languages and (facts.language or "") not in self.languages:
            return False
        return self.has_attachments is None or self.has_attachments == facts.has_attachments


class RuleSet:
    """Compiled rules and targets.  ``classify`` is pure."""

    def __init__(self, rules: list[_Compiled] | None = None, targets: Mapping[str, ResponseTarget] | None = None,
                 source: str = "<none>") -> None:
        self._rules = list(rules or [])
        self.targets: dict[str, ResponseTarget] = dict(targets or {})
        self.source = source

    @property
    def names(self) -> list[str]:
        """The rules' names in order."""
        return [rule.name for rule in self._rules]

    def classify(self, facts: MessageFacts) -> Classification:
        """Apply the rules to ``facts`` (see the module documentation)."""
        queue = facts.queue
        skills: dict[str, int] = {}
        priority = 0
        matched: list[str] = []
        auto_ack: bool | None = None
        for rule in self._rules:
            if not rule.matches(facts, queue):
                continue
            matched.append(rule.name)
            if rule.queue is not None:
                queue = rule.queue
            for skill, level in rule.skills.items():
                skills[skill] = max(level, skills.get(skill, 0))
            if rule.priority is not None:
                priority = rule.priority
            if rule.auto_ack is not None:
                auto_ack = rule.auto_ack
            if not rule.keep_going:
                break
        return Classification(queue, skills, priority, tuple(matched), auto_ack)

    def target(self, queue: str) -> ResponseTarget | None:
        """The response-time target of ``queue``."""
        return self.targets.get(queue)


def parse_rules(text: str, *, source: str = "<rules>", queues: Collection[str] | None = None) -> RuleSet:
    """Validate rules file ``text``; ``queues`` (when given) are the queues a rule may name.

    Raises :class:`RulesError` listing every problem as ``source:line: message``.
    """
    try:
        raw, lines = read_yaml(text)
    except YamlSyntaxError as exc:
        raise RulesError(source, [f"{source}:{exc.line}: {exc.message}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RulesError(source, [f"{source}:1: the file must be a mapping with 'rules' and 'targets'"])
    try:
        parsed = _RulesFile.model_validate(raw)
    except ValidationError as exc:
        problems = sorted(validation_problems(exc, raw, lines, source), key=lambda p: p.line)
        raise RulesError(source, [p.text for p in problems]) from None
    problems_at: list[tuple[int, str]] = []

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        line = lines.line_of(loc)
        problems_at.append((line, f"{source}:{line}: {dotted(loc)}: {message}"))

    seen: dict[str, int] = {}
    for index, rule in enumerate(parsed.rules):
        if rule.name in seen:
            problem(("rules", index, "name"), f"duplicate rule name {rule.name!r}")
        seen.setdefault(rule.name, index)
        if queues is not None and rule.set.queue is not None and rule.set.queue not in queues:
            problem(("rules", index, "set", "queue"), f"unknown queue {rule.set.queue!r}")
    if queues is not None:
        for name in parsed.targets:
            if name not in queues:
                problem(("targets", name), f"unknown queue {name!r}")
    if problems_at:
        raise RulesError(source, [text for _, text in sorted(problems_at)])
    compiled = [
        _Compiled(
            name=rule.name,
            subject=_keywords(rule.when.subject),
            body=_keywords(rule.when.body),
            text=_keywords(rule.when.text),
            subject_pattern=_regex(rule.when.subject_pattern),
            body_pattern=_regex(rule.when.body_pattern),
            pattern=_regex(rule.when.pattern),
            senders=frozenset(s.lower() for s in rule.when.sender),
            domains=tuple(d.lower().lstrip("@.") for d in rule.when.from_domain),
            to=frozenset(t.lower() for t in rule.when.to),
            queues=frozenset(rule.when.queue),
            languages=frozenset(code.lower() for code in rule.when.language),
            has_attachments=rule.when.has_attachments,
            queue=rule.set.queue,
            skills=dict(rule.set.skills),
            priority=rule.set.priority,
            auto_ack=rule.set.auto_ack,
            keep_going=rule.continue_,
        )
        for rule in parsed.rules
    ]
    targets = {
        name: ResponseTarget(
            target.target,
            DEFAULT_ESCALATION if target.escalate is None else tuple((s.at, s.priority) for s in target.escalate),
        )
        for name, target in parsed.targets.items()
    }
    return RuleSet(compiled, targets, source)


def load_rules(path: Path, queues: Collection[str] | None = None) -> RuleSet:
    """:func:`parse_rules` on the file at ``path``.  Raises :class:`RulesError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(str(path), [f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise RulesError(str(path), [f"{path}:1: not UTF-8 text: {exc.reason}"]) from None
    return parse_rules(text, source=str(path), queues=queues)


class RuleBook:
    """The rules in force: loaded at start, re-read when the file changes (a bad file is refused whole).

    ``queues`` gives the configured queue names at each (re)load.
    """

    def __init__(self, path: Path | None, queues: Callable[[], Collection[str]]) -> None:
        self.path = path
        self._queues = queues
        self._stamp: tuple[int, int] | None = None
        self._rules = RuleSet()

    def load(self) -> RuleSet:
        """Load the file now.  Raises :class:`RulesError` (the start refuses a bad file)."""
        if self.path is None:
            self._rules = RuleSet()
            return self._rules
        stamp = self._stat()
        self._rules = load_rules(self.path, self._queues())
        self._stamp = stamp
        log.info("e-mail rules: %d rules, %d response targets from %s",
                 len(self._rules.names), len(self._rules.targets), self.path)
        return self._rules

    @property
    def rules(self) -> RuleSet:
        """The rules in force, re-read first when the file changed since the last look."""
        if self.path is not None:
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._rules = load_rules(self.path, self._queues())
                    log.info("e-mail rules reloaded from %s: %d rules", self.path, len(self._rules.names))
                except RulesError as exc:
                    log.error("e-mail rules in %s refused; the running rules stay:\n%s", self.path,
                              "\n".join(exc.problems))
        return self._rules

    def _stat(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)
