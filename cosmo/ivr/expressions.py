"""Safe expressions and ``${...}`` templates of the flow language.

Theory of operation
-------------------
Conditions (``customer.tier == "gold"``), priorities and ``set`` values are
expressions; prompt texts, say-as values, look-up values and URLs are templates
with expressions inside ``${...}``.  Every one is compiled when the flow is
loaded, so a bad one is a problem of the file with its line and column, not a
failure on a caller's line.

Compiling parses with :mod:`ast` in ``eval`` mode (no statements) and walks the
tree: only the node types and operators the ``simpleeval`` library evaluates
are accepted, names starting with ``_`` are refused, and called functions must
be the flow language's.  Evaluating hands the parsed tree to ``simpleeval``
(never Python's ``eval``) with the call's names.  Mappings are seen through
:class:`Record`, so ``customer.tier`` reads a key and a missing key is
missing (equal to ``None``, false) rather than an error, and so are its
attributes; an unknown variable is missing too (the validator warns about
names no step sets).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import simpleeval  # type: ignore[import-untyped]

from cosmo.ivr.errors import ExpressionError

__all__ = [
    "BUILTIN_NAMES",
    "CONSTANTS",
    "FUNCTION_NAMES",
    "MISSING",
    "STATIC_FUNCTIONS",
    "Expression",
    "Function",
    "Record",
    "Template",
    "compile_expression",
    "compile_template",
    "unwrap",
    "wrap",
]

Function = Callable[..., Any]

CONSTANTS = {"true": True, "false": False, "null": None, "none": None}
"""YAML's spellings of the constants, beside Python's True, False and None."""
BUILTIN_NAMES = frozenset({"caller", "callee", "customer", "language", "call_id", *CONSTANTS})
"""Names every expression sees besides the flow's variables."""

CALENDAR_FUNCTIONS = frozenset({"open", "holiday"})
"""Functions whose first argument names a business-hours calendar."""


def _digits(value: object) -> str:
    """The digits of ``value`` (``digits(caller)``: ``+1 555`` -> ``1555``)."""
    return "".join(ch for ch in str(value or "") if ch.isdigit())


STATIC_FUNCTIONS: Mapping[str, Function] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "digits": _digits,
}
FUNCTION_NAMES = frozenset(STATIC_FUNCTIONS) | CALENDAR_FUNCTIONS

_ALLOWED_NODES = (
    ast.Constant, ast.Name, ast.Load, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.Call, ast.keyword, ast.Subscript, ast.Attribute, ast.Slice, ast.Tuple, ast.List,
    ast.JoinedStr, ast.FormattedValue, ast.And, ast.Or,
)
_OPERATORS = frozenset(simpleeval.DEFAULT_OPERATORS)
_FORBIDDEN_ATTRIBUTES = frozenset(simpleeval.DISALLOW_METHODS)
_NODE_WORDS = {
    "Lambda": "lambda", "ListComp": "comprehensions", "GeneratorExp": "comprehensions",
    "DictComp": "comprehensions", "SetComp": "comprehensions", "Dict": "dict literals",
    "Set": "set literals", "NamedExpr": "assignments (:=)", "Starred": "* unpacking",
    "Await": "await", "Yield": "yield", "YieldFrom": "yield",
}


class _Missing:
    """What a missing key or variable is in an expression: equal to ``None`` and
    false, and its own attributes and items, so ``customer.attributes.plan`` of a
    caller without a customer record is missing too rather than an error."""

    __slots__ = ()

    def __getattr__(self, name: str) -> _Missing:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: object) -> _Missing:
        return self

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, _Missing)

    def __hash__(self) -> int:
        return hash(None)

    def __str__(self) -> str:
        return ""

    def __repr__(self) -> str:
        return "missing"


MISSING = _Missing()


class Record:
    """A mapping seen by expressions: ``customer.tier`` or ``customer["tier"]``;
    a missing key is missing (equal to ``None``); nested mappings are records too."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return wrap(self._data.get(name))

    def __getitem__(self, key: str) -> Any:
        return wrap(self._data.get(key))

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return dict(self._data) == dict(other._data)
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(unwrap(self))

    def __repr__(self) -> str:
        return f"Record({dict(self._data)!r})"

    def unwrap(self) -> dict[str, Any]:
        """Plain data again (what a ``set`` stores)."""
        return {str(key): unwrap(value) for key, value in self._data.items()}


def wrap(value: Any) -> Any:
    """``value`` as expressions see it: mappings as :class:`Record`, lists as tuples,
    ``None`` as missing."""
    if value is None:
        return MISSING
    if isinstance(value, Mapping):
        return Record(value)
    if isinstance(value, list | tuple):
        return tuple(wrap(item) for item in value)
    return value


def unwrap(value: Any) -> Any:
    """The plain data of an expression's value (records as dicts, tuples as lists)."""
    if isinstance(value, _Missing):
        return None
    if isinstance(value, Record):
        return value.unwrap()
    if isinstance(value, list | tuple):
        return [unwrap(item) for item in value]
    return value


class _Names(dict[str, Any]):
    """Names of one evaluation; an unknown name is missing."""

    def __missing__(self, key: str) -> _Missing:
        return MISSING


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """A compiled expression: its text, parsed tree, the variables it reads and the
    calendars it names."""

    source: str
    tree: ast.expr
    names: frozenset[str]
    calendars: tuple[str, ...]

    def evaluate(self, names: Mapping[str, Any], functions: Mapping[str, Function]) -> Any:
        """The value for ``names`` (see :func:`wrap`), as plain data; raises :class:`ExpressionError`."""
        evaluator = simpleeval.EvalWithCompoundTypes(names=_Names(names), functions=dict(functions))
        try:
            return unwrap(evaluator.eval(self.source, previously_parsed=self.tree))
        except (simpleeval.InvalidExpression, ArithmeticError, TypeError, ValueError, LookupError,
                AttributeError, RecursionError) as exc:
            raise ExpressionError(f"{self.source}: {exc}") from None


def compile_expression(source: str, *, default_calendar: str = "business") -> Expression:
    """Parse and check ``source``.  Raises :class:`ExpressionError` with the 0-based
    offset of the problem in ``source``."""
    stripped = source.lstrip()
    lead = len(source) - len(stripped)
    if not stripped.strip():
        raise ExpressionError("empty expression", 0)
    try:
        tree = ast.parse(stripped, mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"invalid expression: {exc.msg}", lead + _offset(stripped, exc)) from None
    names: set[str] = set()
    calendars: list[str] = []
    lines = _line_starts(stripped)
    for node in ast.walk(tree):
        at = lead + _node_offset(node, lines)
        if not isinstance(node, _ALLOWED_NODES) and not _allowed_operator(node):
            kind = type(node).__name__
            word = _NODE_WORDS.get(kind, f"operator {kind}" if isinstance(node, ast.operator | ast.cmpop) else kind)
            raise ExpressionError(f"{word} not allowed in an expression", at)
        if isinstance(node, ast.Attribute) and (node.attr.startswith("_") or node.attr in _FORBIDDEN_ATTRIBUTES):
            raise ExpressionError(f"attribute {node.attr!r} not allowed", at)
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionError(f"name {node.id!r} not allowed", at)
        if isinstance(node, ast.Call):
            calendars.extend(_check_call(node, at, default_calendar))
        if isinstance(node, ast.Name) and not _is_called(node, tree):
            names.add(node.id)
    return Expression(source, tree, frozenset(names), tuple(calendars))


def _allowed_operator(node: ast.AST) -> bool:
    return isinstance(node, ast.operator | ast.unaryop | ast.cmpop) and type(node) in _OPERATORS


def _check_call(node: ast.Call, at: int, default_calendar: str) -> list[str]:
    if isinstance(node.func, ast.Attribute):
        return []
    if not isinstance(node.func, ast.Name):
        raise ExpressionError("only named functions can be called", at)
    name = node.func.id
    if name not in FUNCTION_NAMES:
        hint = _close(name, FUNCTION_NAMES)
        raise ExpressionError(f"unknown function {name!r}{hint}", at)
    if name not in CALENDAR_FUNCTIONS:
        return []
    if node.keywords or len(node.args) > 1:
        raise ExpressionError(f"{name}() takes one calendar name", at)
    if not node.args:
        return [default_calendar]
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    return []


def _is_called(node: ast.Name, tree: ast.expr) -> bool:
    return any(isinstance(call, ast.Call) and call.func is node for call in ast.walk(tree))


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for match in re.finditer("\n", text):
        starts.append(match.end())
    return starts


def _node_offset(node: ast.AST, lines: list[int]) -> int:
    lineno = getattr(node, "lineno", None)
    col = getattr(node, "col_offset", None)
    if lineno is None or col is None:
        return 0
    return lines[min(lineno, len(lines)) - 1] + col


def _offset(text: str, exc: SyntaxError) -> int:
    if not exc.lineno or not exc.offset:
        return len(text.rstrip())
    lines = _line_starts(text)
    return min(lines[min(exc.lineno, len(lines)) - 1] + exc.offset - 1, len(text))


def _close(name: str, choices: frozenset[str] | set[str]) -> str:
    import difflib

    match = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """Text with ``${expression}`` parts (``$${`` is a literal ``${``)."""

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def is_literal(self) -> bool:
        return all(isinstance(part, str) for part in self.parts)

    def expressions(self) -> Iterator[Expression]:
        return (part for part in self.parts if isinstance(part, Expression))

    def render(self, names: Mapping[str, Any], functions: Mapping[str, Function]) -> str:
        """The text with each expression's value (``None`` as nothing).  Raises
        :class:`ExpressionError`."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part.evaluate(names, functions)
                out.append("" if value is None else str(value))
        return "".join(out)


def compile_template(source: str, *, default_calendar: str = "business") -> Template:
    """Split and compile ``source``.  Raises :class:`ExpressionError` with the 0-based
    offset of the problem in ``source``."""
    parts: list[str | Expression] = []
    literal: list[str] = []
    index = 0
    while index < len(source):
        if source.startswith("$${", index):
            literal.append("${")
            index += 3
            continue
        if not source.startswith("${", index):
            literal.append(source[index])
            index += 1
            continue
        end = _closing_brace(source, index + 2)
        if end < 0:
            raise ExpressionError("unclosed '${'", index)
        try:
            expression = compile_expression(source[index + 2 : end], default_calendar=default_calendar)
        except ExpressionError as exc:
            raise ExpressionError(exc.message, index + 2 + (exc.offset or 0)) from None
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(expression)
        index = end + 1
    if literal:
        parts.append("".join(literal))
    return Template(source, tuple(parts))


def _closing_brace(text: str, start: int) -> int:
    """The index of the ``}`` ending an expression begun at ``start`` (-1: none);
    braces inside quoted strings do not count."""
    depth = 0
    quote = ""
    index = start
    while index < len(text):
        ch = text[index]
        if quote:
            if ch == "\\":
                index += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            if ch == "}" and depth == 0:
                return index
            depth -= 1
        index += 1
    return -1
