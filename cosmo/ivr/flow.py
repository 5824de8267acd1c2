"""A compiled flow: :class:`Flow`, what the interpreter runs.

A flow is immutable once loaded: a hot reload builds a new one and a call that
started with the old one keeps it to the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cosmo.ivr.expressions import (
    Expression,
    Template,
    compile_expression,
    compile_template,
)
from cosmo.ivr.steps import Step

__all__ = ["Flow"]


def _frozen_empty() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, eq=False)
class Flow:
    """One flow file, validated and compiled.

    ``store`` is the key of the call data its variables live under
    (``port.data["ivr"]``); ``digest`` identifies the file's text (logs show
    which version a call ran).
    """

    name: str
    entry: str
    nodes: Mapping[str, Step]
    language: str = "en"
    store: str = "ivr"
    expressions: Mapping[str, Expression] = field(default_factory=_frozen_empty)  # type: ignore[arg-type]
    templates: Mapping[str, Template] = field(default_factory=_frozen_empty)  # type: ignore[arg-type]
    path: str = ""
    description: str = ""
    digest: str = ""

    def __post_init__(self) -> None:
        for name in ("nodes", "expressions", "templates"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    def expression(self, source: str) -> Expression:
        """The compiled expression of ``source`` (compiled now if the loader did not)."""
        found = self.expressions.get(source)
        return found if found is not None else compile_expression(source)

    def template(self, source: str) -> Template:
        """The compiled template of ``source`` (compiled now if the loader did not)."""
        found = self.templates.get(source)
        return found if found is not None else compile_template(source)

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, {len(self.nodes)} nodes, {self.digest[:12] or 'no digest'})"
