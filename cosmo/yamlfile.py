"""YAML files whose errors point at lines: ``read_yaml`` and ``validation_problems``.

Theory of operation
-------------------
Admin-edited YAML (``cosmo.yaml``, IVR flows) is validated by pydantic, whose
errors name a *path* (``loc``) into the data, never a line.  ``read_yaml``
therefore *composes* the text into PyYAML's node tree, whose nodes carry their
position, builds plain Python data from it, and records a :class:`LineMap`
from every path (``("sip", "listen", 0, "port")``) to its line.
``validation_problems`` then turns a ``ValidationError`` into
``file:line: path: message`` texts, pointing at the deepest node that exists
on the error's path (a missing field points at the mapping that lacks it).

Dialect: PyYAML's safe loader, with two changes for telephony files:

* plain scalars YAML 1.1 would read as odd integers are kept as text when they
  look like telephone numbers or extensions: a leading ``+`` or ``0``
  (``+15550100``, ``0101``), or digits with ``_`` or ``:``;
* a key repeated in one mapping is an error, not a silent overwrite.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["LineMap", "Loc", "Problem", "YamlSyntaxError", "data_path", "read_yaml", "validation_problems"]

Loc = tuple[str | int, ...]
"""A path into YAML data: mapping keys and sequence indexes."""

KEY = "[key]"
"""Pydantic's path element for an invalid mapping key."""

_TEXT_NUMBER = re.compile(r"^(\+|0[0-9_]|[0-9][0-9_]*[_:])")
_MAX_DEPTH = 64
_MAX_NODES = 200_000


class YamlSyntaxError(Exception):
    """The text is not YAML we accept (syntax error, duplicate key, too deep)."""

    def __init__(self, line: int, message: str, column: int | None = None) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class LineMap:
    """Line numbers (1-based) of the nodes of one YAML document, by path."""

    lines: Mapping[Loc, int] = field(default_factory=dict)
    key_lines: Mapping[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest existing node on ``loc``.

        A path ending at a mapping entry points at the entry's key, so an
        error about a whole section points at ``section:``.  A path ending
        with pydantic's ``[key]`` marker points at that key.
        """
        path = tuple(loc)
        if path and path[-1] == KEY:
            path = path[:-1]
        while path:
            if path in self.key_lines:
                return self.key_lines[path]
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a file: the line (0 when not from the file) and the full text."""

    line: int
    text: str


def read_yaml(text: str) -> tuple[object, LineMap]:
    """Parse one YAML document into plain data plus the line of every node.

    An empty document gives ``None``.  Raises :class:`YamlSyntaxError`.
    """
    try:
        # The reader checks the characters at once: a control character is an error here.
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlSyntaxError(
            line, f"YAML syntax error: unacceptable character #x{exc.character:04x}: {exc.reason}", column
        ) from None
    lines: dict[Loc, int] = {}
    key_lines: dict[Loc, int] = {}
    visited = 0

    def build(node: yaml.Node, path: Loc, depth: int) -> object:
        nonlocal visited
        line = node.start_mark.line + 1
        if depth > _MAX_DEPTH:
            raise YamlSyntaxError(line, "nesting too deep")
        visited += 1
        if visited > _MAX_NODES:
            # Aliases can make a small text expand enormously ("billion laughs").
            raise YamlSyntaxError(line, f"document too large (more than {_MAX_NODES} values)")
        lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)  # resolves '<<' merge keys
            result: dict[Any, object] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlSyntaxError(key_line, "mapping keys must be plain values")
                key = build(key_node, (*path, KEY), depth + 1)
                if key is None or isinstance(key, bool) or not isinstance(key, str | int | float):
                    raise YamlSyntaxError(key_line, f"mapping key must be text or a number: {key_node.value!r}")
                if key in result:
                    raise YamlSyntaxError(key_line, f"duplicate key {key!r}")
                child = (*path, key) if isinstance(key, str | int) else path
                key_lines.setdefault(child, key_line)
                result[key] = build(value_node, child, depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, index), depth + 1) for index, item in enumerate(node.value)]
        if not isinstance(node, yaml.ScalarNode):
            raise YamlSyntaxError(line, f"unexpected YAML node {node.tag}")
        value = loader.construct_object(node, deep=True)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and node.style is None
            and _TEXT_NUMBER.match(node.value)
        ):
            return node.value
        return value

    try:
        node = loader.get_single_node()
        if node is None:
            return None, LineMap({(): 1}, {})
        return build(node, (), 0), LineMap(lines, key_lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise YamlSyntaxError(line, f"YAML syntax error: {message}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML error: {exc}") from None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level.
        raise YamlSyntaxError(1, "nesting too deep") from None
    finally:
        loader.dispose()


def _message(error: Mapping[str, Any]) -> str:
    """Pydantic's message, shortened where it speaks of Python rather than the file."""
    kind = error["type"]
    if kind == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    if kind == "assertion_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind == "missing":
        return "required setting missing"
    return str(error["msg"])


def dotted(loc: Loc) -> str:
    """``("sip", "listen", 0, "port")`` as ``sip.listen[0].port`` (odd keys quoted)."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == KEY:
            text += " (key)"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]" if text else repr(part)
    return text


def data_path(loc: Loc, data: object) -> Loc:
    """``loc`` without the tags pydantic adds for union members (they are not in the data)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:  # noqa: SIM114 (mypy narrows each branch)
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif part == KEY or isinstance(node, dict | list):
            out.append(part)
            node = None
    return tuple(out)


def validation_problems(
    exc: ValidationError,
    data: object,
    lines: LineMap,
    source: str,
    origins: Mapping[Loc, str] | None = None,
) -> list[Problem]:
    """Each error of ``exc`` as ``source:line: path: message``.

    ``data`` is what was validated (to tell data keys from pydantic's tags).
    ``origins`` names where values under some paths came from instead of the
    file (an environment variable): those errors read ``NAME: path: message``
    and have line 0.
    """
    problems: list[Problem] = []
    for error in exc.errors():
        loc = data_path(tuple(error["loc"]), data)
        message = f"{dotted(loc)}: {_message(error)}" if loc else _message(error)
        origin = None
        if origins:
            origin = next((name for path, name in origins.items() if loc[: len(path)] == path), None)
        if origin is not None:
            problems.append(Problem(0, f"{origin}: {message}"))
        else:
            line = lines.line_of(loc)
            problems.append(Problem(line, f"{source}:{line}: {message}"))
    return problems
