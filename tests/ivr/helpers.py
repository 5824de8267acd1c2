"""Helpers shared by the IVR tests: flows from text, scripted ports, a fixed clock."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from cosmo.ivr.flow import Flow
from cosmo.ivr.loader import FlowChecks, parse_flow
from cosmo.ivr.port import Input
from cosmo.ivr.simulator import SimulatedPort

REPO = Path(__file__).resolve().parents[2]
PROMPTS = frozenset(path.stem for path in (REPO / "media" / "prompts" / "en").glob("*.wav"))
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday


def prompt_exists(name: str, language: str) -> bool:
    return language == "en" and name in PROMPTS


def compile_flow(text: str, name: str = "test", **checks: object) -> Flow:
    """A flow from YAML text; fails the test when it has errors."""
    result = parse_flow(textwrap.dedent(text), f"{name}.yaml", FlowChecks(**checks), name=name)  # type: ignore[arg-type]
    assert result.flow is not None, "\n".join(str(p) for p in result.problems)
    return result.flow


def keys(*values: str) -> list[Input]:
    return [Input("digits", value) for value in values]


def port(*script: Input | Iterable[Input], **options: object) -> SimulatedPort:
    flat: list[Input] = []
    for item in script:
        flat.extend([item] if isinstance(item, Input) else item)
    return SimulatedPort(flat, **options)  # type: ignore[arg-type]
