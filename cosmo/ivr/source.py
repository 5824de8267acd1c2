"""Flow files with positions: :func:`read_source` gives the data and the line and
column of every key and value.

Theory of operation
-------------------
:func:`cosmo.yamlfile.read_yaml` reads the file in the house dialect (telephone
numbers stay text, duplicate keys are errors) and knows lines only.  A flow
problem points at a column too (``main.yaml:12:15: unknown node 'menu2'``), so
the text is composed a second time into PyYAML's node tree and walked beside
the data: the n-th entry of a mapping node is the n-th entry of its dict.
Scalars keep their style, so an error inside an expression can point into a
plain or quoted value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from cosmo.yamlfile import Loc, YamlSyntaxError, read_yaml

__all__ = ["Position", "SourceMap", "read_source"]


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column; ``style`` of a scalar (``None`` plain, ``'`` or ``"``
    quoted, ``|`` or ``>`` block), ``collection`` for mappings and sequences."""

    line: int
    column: int
    style: str | None = None
    collection: bool = False

    def shifted(self, offset: int, text: str) -> Position:
        """The position ``offset`` characters into the scalar ``text`` this position starts.

        Exact for one-line plain and quoted scalars without escapes; elsewhere the
        start of the value.
        """
        if self.collection or self.style not in (None, "'", '"') or "\n" in text[:offset]:
            return self
        return Position(self.line, self.column + offset + (1 if self.style else 0), self.style)


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Positions of the values and keys of one YAML document, by path."""

    values: Mapping[Loc, Position]
    keys: Mapping[Loc, Position]

    def key(self, loc: Loc) -> Position:
        """Where the entry ``loc`` is named: its key, else the nearest existing ancestor's."""
        path = tuple(loc)
        while path:
            if path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Position(1, 1))

    def value(self, loc: Loc) -> Position:
        """Where the value at ``loc`` starts (a mapping or list under a key: the key);
        for a path that does not exist, the nearest existing scalar above it, or the
        key of the nearest existing collection."""
        path = tuple(loc)
        exact = self.values.get(path)
        if exact is not None:
            return self.keys.get(path, exact) if exact.collection else exact
        while path:
            path = path[:-1]
            found = self.values.get(path)
            if found is not None:
                return self.key(path) if found.collection and path else found
        return self.values.get((), Position(1, 1))


def _position(node: yaml.Node) -> Position:
    mark = node.start_mark
    if isinstance(node, yaml.ScalarNode):
        return Position(mark.line + 1, mark.column + 1, node.style)
    return Position(mark.line + 1, mark.column + 1, collection=True)


def read_source(text: str) -> tuple[object, SourceMap]:
    """Parse one YAML document into plain data (as :func:`read_yaml`) and its positions.

    Raises :class:`SourceError` (a :class:`YamlSyntaxError` with a column).
    """
    try:
        data, _ = read_yaml(text)
    except YamlSyntaxError as exc:
        column = exc.column if exc.column is not None else _syntax_column(text, exc.line)
        raise SourceError(exc.line, column, exc.message) from None
    values: dict[Loc, Position] = {}
    keys: dict[Loc, Position] = {}
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return data, SourceMap({(): Position(1, 1)}, {})

        def walk(node: yaml.Node, value: object, path: Loc) -> None:
            values.setdefault(path, _position(node))
            if isinstance(node, yaml.MappingNode) and isinstance(value, dict):
                loader.flatten_mapping(node)
                for (key_node, value_node), (key, child) in zip(node.value, value.items(), strict=False):
                    if isinstance(key, str | int) and not isinstance(key, bool):
                        keys.setdefault((*path, key), _position(key_node))
                        walk(value_node, child, (*path, key))
            elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
                for index, (item_node, item) in enumerate(zip(node.value, value, strict=False)):
                    walk(item_node, item, (*path, index))

        walk(root, data, ())
    finally:
        loader.dispose()
    return data, SourceMap(values, keys)


class SourceError(YamlSyntaxError):
    """A flow file that is not YAML we accept, with the column of the problem."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(line, message)
        self.column = column


def _syntax_column(text: str, line: int) -> int:
    """The column of a syntax error: PyYAML's mark when it has one on ``line``, else
    the first character of that line (a duplicate key, say)."""
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is not None and mark.line + 1 == line:
            return mark.column + 1
    except (yaml.YAMLError, RecursionError):
        pass
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        content = lines[line - 1]
        return len(content) - len(content.lstrip()) + 1
    return 1
