"""Checks across the nodes of a flow, and the compiling of its expressions and templates.

:func:`check_graph` runs once the header and every node have passed their
models (see :mod:`cosmo.ivr.loader` for the order of checks).  Loops: a cycle
of nodes none of which waits for the caller (menu, collect, recognize) would
spin without end, so it is an error; a loop through a menu is a normal
"main menu again".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from cosmo.ivr.errors import ExpressionError
from cosmo.ivr.expressions import (
    BUILTIN_NAMES,
    Expression,
    Template,
    compile_expression,
    compile_template,
)
from cosmo.ivr.problems import Report, Severity, suggest
from cosmo.ivr.settings import DEFAULT_CALENDAR
from cosmo.ivr.steps import (
    STEP_MODELS,
    WAITING_STEPS,
    CollectStep,
    FlowHeader,
    MenuStep,
    Ref,
    Step,
    normalise_phrase,
    refs,
    targets,
)
from cosmo.yamlfile import Loc

if TYPE_CHECKING:
    from cosmo.ivr.loader import FlowChecks

__all__ = ["check_graph", "prompt_is_path"]

_CONFIRM_PROMPTS = ("you-entered", "press-1-if-correct")
_KINDS: dict[type, str] = {model: kind for kind, model in STEP_MODELS.items()}


def prompt_is_path(name: str) -> bool:
    """A prompt given as a path (``moh/x.wav``), not a name in the language's directory."""
    return "/" in name or name.endswith(".wav")


def check_graph(
    header: FlowHeader,
    nodes: Mapping[str, Step],
    names: Sequence[str],
    language: str,
    checks: FlowChecks,
    report: Report,
) -> tuple[dict[str, Expression], dict[str, Template]]:
    """Check ``nodes`` together; returns the compiled expressions and templates by text.

    ``names`` are all the file's node names, ``nodes`` those whose step is valid
    (reachability and loops are checked only when every node is).
    """
    expressions: dict[str, Expression] = {}
    templates: dict[str, Template] = {}
    set_variables: set[str] = set()
    used: list[tuple[Loc, str, Expression]] = []
    calendars: list[tuple[Loc, str]] = []
    if header.entry not in names:
        report.at_value(("entry",), f"unknown entry node {header.entry!r}{_suggest(header.entry, names)}")
    for name, step in nodes.items():
        kind = _KINDS[type(step)]
        base: Loc = ("nodes", name, kind)
        for ref in refs(step):
            loc = (*base, *ref.loc)
            if ref.kind == "node" and ref.value not in names:
                report.at_value(loc, f"unknown node {ref.value!r}{_suggest(ref.value, names)}")
            elif ref.kind == "prompt":
                _check_prompt(ref, loc, step, language, checks, report, templates)
            elif ref.kind == "template":
                template = _template(ref.value, loc, report, templates)
                if template is not None:
                    used.extend((loc, ref.value, part) for part in template.expressions())
            elif ref.kind == "expression":
                compiled = _expression(ref.value, loc, report, expressions)
                if compiled is not None:
                    used.append((loc, ref.value, compiled))
            elif ref.kind == "flow" and checks.flows is not None and ref.value not in checks.flows:
                report.at_value(loc, f"unknown flow {ref.value!r}{_suggest(ref.value, checks.flows)}")
            elif ref.kind == "calendar":
                calendars.append((loc, ref.value))
            elif ref.kind == "variable":
                set_variables.add(ref.value)
                if ref.value in BUILTIN_NAMES:
                    report.at_key(loc, f"{ref.value!r} is a reserved name")
        _check_step(step, base, language, checks, report)
    for loc, _, expression in used:
        calendars.extend((loc, name) for name in expression.calendars)
    if checks.calendars is not None:
        for loc, name in calendars:
            if name not in checks.calendars:
                report.at_value(loc, f"unknown calendar {name!r}{_suggest(name, checks.calendars)}")
    known = set_variables | BUILTIN_NAMES
    for loc, _, expression in used:
        for variable in sorted(expression.names - known):
            report.at_value(loc, f"variable {variable!r} is never set in this flow{_suggest(variable, known)}",
                            Severity.WARNING)
    if len(nodes) == len(names):
        _check_reachable(header.entry, nodes, report)
        _check_loops(nodes, report)
    return expressions, templates


def _suggest(word: str, choices: Collection[str]) -> str:
    return suggest(word, [str(choice) for choice in choices])


def _template(source: str, loc: Loc, report: Report, templates: dict[str, Template]) -> Template | None:
    if source in templates:
        return templates[source]
    try:
        template = compile_template(source, default_calendar=DEFAULT_CALENDAR)
    except ExpressionError as exc:
        report.add(report.source.value(loc).shifted(exc.offset or 0, source), exc.message)
        return None
    templates[source] = template
    return template


def _expression(source: str, loc: Loc, report: Report, expressions: dict[str, Expression]) -> Expression | None:
    if source in expressions:
        return expressions[source]
    try:
        expression = compile_expression(source, default_calendar=DEFAULT_CALENDAR)
    except ExpressionError as exc:
        report.add(report.source.value(loc).shifted(exc.offset or 0, source), exc.message)
        return None
    expressions[source] = expression
    return expression


def _check_prompt(ref: Ref, loc: Loc, step: Step, language: str, checks: FlowChecks, report: Report,
                  templates: dict[str, Template]) -> None:
    name = str(ref.value)
    if "${" in name:
        _template(name, loc, report, templates)
        return
    if checks.prompt_exists is None or prompt_is_path(name):
        return
    if not checks.prompt_exists(name, language):
        written = ref.loc[0] in step.model_fields_set
        if written:
            report.at_value(loc, f"prompt {name!r} not found for language {language!r}")
        else:
            report.at_key(loc, f"prompt {name!r} ({ref.loc[0]} by default) not found for language {language!r}",
                          Severity.WARNING)


def _check_step(step: Step, base: Loc, language: str, checks: FlowChecks, report: Report) -> None:
    if isinstance(step, MenuStep):
        keys: dict[str, int] = {}
        phrases: dict[str, int] = {}
        for index, option in enumerate(step.options):
            if option.key is not None:
                if option.key in keys:
                    report.at_value((*base, "options", index, "key"),
                                    f"key {option.key!r} is already used by options[{keys[option.key]}]")
                keys.setdefault(option.key, index)
            for number, phrase in enumerate(option.say):
                normal = normalise_phrase(phrase)
                if not normal:
                    report.at_value((*base, "options", index, "say", number), f"phrase {phrase!r} has no words")
                elif normal in phrases:
                    report.at_value((*base, "options", index, "say", number),
                                    f"phrase {phrase!r} is already used by options[{phrases[normal]}]")
                phrases.setdefault(normal, index)
    if isinstance(step, CollectStep) and step.confirm and checks.prompt_exists is not None:
        for name in _CONFIRM_PROMPTS:
            if not checks.prompt_exists(name, language):
                report.at_value((*base, "confirm"), f"prompt {name!r} (confirm) not found for language {language!r}",
                                Severity.WARNING)
    if checks.unknown_words is not None:
        for ref in refs(step):
            if ref.kind != "phrases":
                continue
            words = list(checks.unknown_words(language, [normalise_phrase(p) for p in ref.value]))
            if words:
                report.at_value((*base, *ref.loc),
                                f"not in the speech vocabulary of {language!r}: {', '.join(words)}",
                                Severity.WARNING)


def _check_reachable(entry: str, nodes: Mapping[str, Step], report: Report) -> None:
    if entry not in nodes:
        return
    seen = {entry}
    todo = [entry]
    while todo:
        for target in targets(nodes[todo.pop()]):
            if target in nodes and target not in seen:
                seen.add(target)
                todo.append(target)
    for name in nodes:
        if name not in seen:
            report.at_key(("nodes", name), f"node {name!r} is never reached from entry {entry!r}",
                          Severity.WARNING)


def _check_loops(nodes: Mapping[str, Step], report: Report) -> None:
    """Report each cycle of steps that never wait for the caller (once per cycle group)."""
    free = [name for name, step in nodes.items() if not isinstance(step, WAITING_STEPS)]
    edges = {name: [t for t in targets(nodes[name]) if t in nodes and not isinstance(nodes[t], WAITING_STEPS)]
             for name in free}
    for component in _strong_components(free, edges):
        members = set(component)
        start = min(component, key=free.index)
        if len(component) == 1 and start not in edges[start]:
            continue
        cycle = _cycle(start, edges, members)
        report.at_key(("nodes", start), f"loop without caller input: {' -> '.join(cycle)}")


def _strong_components(names: list[str], edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (flows may be long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in names:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = edges[node]
            if child < len(successors):
                work.append((node, child + 1))
                successor = successors[child]
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle(start: str, edges: Mapping[str, list[str]], members: set[str]) -> list[str]:
    """A path start -> ... -> start inside one strongly connected component."""
    previous: dict[str, str] = {}
    todo = [start]
    seen = {start}
    while todo:
        node = todo.pop(0)
        for successor in edges[node]:
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor in members and successor not in seen:
                seen.add(successor)
                previous[successor] = node
                todo.append(successor)
    return [start, start]  # pragma: no cover - a component of one node with no self-edge is skipped
