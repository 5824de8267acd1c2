"""Reading and validating flow files: :func:`load_flow`, :func:`parse_flow`.

Theory of operation
-------------------
Validation reports every problem of a file at once, each at its
``file:line:column``:

1. YAML syntax (:mod:`cosmo.ivr.source`), then the header (``entry``,
   ``nodes`` ...) against :class:`~cosmo.ivr.steps.FlowHeader`;
2. each node: exactly one known step (a misspelt one gets a suggestion), its
   fields against the step's model;
3. across nodes (:mod:`cosmo.ivr.graph`): targets that exist, expressions and
   templates that compile, prompts that exist, menu keys and phrases used
   once, speech words the recogniser knows, known sub-flows and calendars,
   variables that some step sets, nodes reachable from ``entry``, and no loop
   that never waits for the caller.

Errors refuse the file; warnings (an unreachable node, an unknown word) are
reported and the flow is used.  A file without errors becomes a
:class:`~cosmo.ivr.flow.Flow` with every expression and template compiled.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cosmo.ivr.flow import Flow
from cosmo.ivr.graph import check_graph
from cosmo.ivr.problems import Problem, Report, Severity, suggest
from cosmo.ivr.source import SourceError, read_source
from cosmo.ivr.steps import (
    NAME_RULES,
    STEP_KINDS,
    STEP_MODELS,
    FlowHeader,
    GotoStep,
    Step,
)
from cosmo.yamlfile import KEY, Loc, data_path, dotted

__all__ = ["FlowChecks", "LoadResult", "load_flow", "parse_flow"]

PromptExists = Callable[[str, str], bool]
"""``(prompt name, language) -> bool``."""
UnknownWords = Callable[[str, Sequence[str]], Sequence[str]]
"""``(language, phrases) -> words of the phrases the speech model does not know``."""


@dataclass(frozen=True, slots=True)
class FlowChecks:
    """What a flow is checked against beyond its own file; ``None`` skips a check."""

    prompt_exists: PromptExists | None = None
    unknown_words: UnknownWords | None = None
    calendars: Collection[str] | None = None
    flows: Collection[str] | None = None
    default_language: str = "en"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A flow (``None`` when the file has errors) and every problem found."""

    flow: Flow | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


def load_flow(path: Path, checks: FlowChecks | None = None, *, display: str | None = None) -> LoadResult:
    """Read and validate the flow file ``path`` (its name is the file name without
    ``.yaml``).  Problems name the file as ``display`` (default: ``path``)."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(None, (Problem(shown, 1, 1, f"cannot read the file: {exc}"),))
    return parse_flow(text, shown, checks, name=path.stem)


def parse_flow(text: str, path: str = "<flow>", checks: FlowChecks | None = None, *,
               name: str | None = None) -> LoadResult:
    """Validate the flow ``text``; ``name`` is the flow's name by its file (the file's
    own ``name:`` must agree)."""
    checks = checks or FlowChecks()
    try:
        data, source = read_source(text)
    except SourceError as exc:
        return LoadResult(None, (Problem(path, exc.line, exc.column or 1, exc.message),))
    report = Report(path, source)
    if not isinstance(data, dict):
        report.at_value((), "a flow file is a mapping with entry and nodes")
        return LoadResult(None, tuple(report.problems))
    header = _header(data, report)
    flow_name = name or (header.name if header is not None else None) or Path(path).stem
    if header is not None and header.name is not None and name is not None and header.name != name:
        report.at_value(("name",), f"name {header.name!r} differs from the file name {name + '.yaml'!r}")
    raw_nodes = data.get("nodes")
    nodes = _nodes(raw_nodes, report)
    if header is None:
        return LoadResult(None, tuple(sorted(report.problems)))
    language = header.language or checks.default_language
    names = [name for name in raw_nodes if isinstance(name, str)] if isinstance(raw_nodes, dict) else []
    expressions, templates = check_graph(header, nodes, names, language, checks, report)
    if report.has_errors:
        return LoadResult(None, tuple(sorted(report.problems)))
    flow = Flow(
        name=flow_name, entry=header.entry, nodes=nodes, language=language, store=header.store,
        expressions=expressions, templates=templates, path=path, description=header.description,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
    return LoadResult(flow, tuple(sorted(report.problems)))


def _header(data: dict[str, Any], report: Report) -> FlowHeader | None:
    try:
        return FlowHeader.model_validate(data)
    except ValidationError as exc:
        pydantic_problems(exc, FlowHeader, (), data, report, "")
        return None


def _nodes(raw: object, report: Report) -> dict[str, Step]:
    nodes: dict[str, Step] = {}
    if not isinstance(raw, dict):
        return nodes
    for name, value in raw.items():
        if not isinstance(name, str):
            continue  # the header reported it
        step = _node(str(name), value, report)
        if step is not None:
            nodes[name] = step
    return nodes


def _node(name: str, value: object, report: Report) -> Step | None:
    loc: Loc = ("nodes", name)
    kinds = ", ".join(STEP_KINDS)
    if not isinstance(value, dict) or not value:
        report.at_key(loc, f"node {name!r} needs one step: {kinds}")
        return None
    known = [key for key in value if key in STEP_MODELS]
    for key in value:
        if key not in STEP_MODELS:
            report.at_key((*loc, key), f"unknown step {key!r}{suggest(str(key), STEP_KINDS)}")
    if len(known) > 1:
        report.at_key((*loc, known[1]), f"node {name!r} has more than one step: {', '.join(known)}")
        return None
    if not known or len(known) != len(value):
        return None
    kind = known[0]
    raw = value[kind]
    step_loc: Loc = (*loc, kind)
    if kind == "goto":
        if not isinstance(raw, str):
            report.at_value(step_loc, "goto: needs a node name")
            return None
        raw = {"next": raw}
    elif raw is None:
        raw = {}
    if not isinstance(raw, dict):
        report.at_value(step_loc, f"{kind}: needs a mapping of its fields")
        return None
    model = STEP_MODELS[kind]
    try:
        return model.model_validate(raw)  # type: ignore[return-value]
    except ValidationError as exc:
        if model is GotoStep:
            report.at_value(step_loc, "goto: needs a node name")
        else:
            pydantic_problems(exc, model, step_loc, raw, report, kind)
        return None


def pydantic_problems(exc: ValidationError, model: type[BaseModel], base: Loc, data: object, report: Report,
                      label: str) -> None:
    """Each error of ``exc`` (validating ``data`` at ``base`` with ``model``) as a problem."""
    errors = exc.errors()
    locs = [data_path(tuple(error["loc"]), data) for error in errors]
    for error, loc in zip(errors, locs, strict=True):
        kind = error["type"]
        if kind == "too_short" and any(other != loc and other[: len(loc)] == loc for other in locs):
            continue  # an invalid item left the list short: the item's own error says why
        if kind == "extra_forbidden":
            field_name = str(loc[-1])
            allowed = _field_names(model, loc[:-1])
            context = _context(label, loc[:-1])
            report.at_key((*base, *loc), f"{context}unknown field {field_name!r}{suggest(field_name, allowed)}")
        elif kind == "missing":
            context = _context(label, loc[:-1])
            report.at_key((*base, *loc[:-1]), f"{context}missing field {str(loc[-1])!r}")
        elif loc and loc[-1] == KEY:
            context = _context(label, loc[:-2])
            report.at_key((*base, *loc[:-1]), f"{context}{_message(error)}")
        else:
            report.at_value((*base, *loc), f"{_context(label, loc)}{_message(error)}")


def _context(label: str, loc: Loc) -> str:
    text = dotted(tuple(part for part in loc))
    if label and text:
        text = f"{label}.{text}" if not text.startswith("[") else f"{label}{text}"
    else:
        text = label or text
    return f"{text}: " if text else ""


def _message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in NAME_RULES:
        return f"{error['input']!r} is not a valid {NAME_RULES[ctx['pattern']]}"
    return str(error["msg"])


def _field_names(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names (aliases) of the model found at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or part == KEY:
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        fields = current.model_fields
        info = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if info is None:
            return []
        current = _inner_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return []


def _inner_model(annotation: Any) -> Any:
    """The pydantic model inside ``X | None``, ``tuple[X, ...]``, ``dict[str, X]``, ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
