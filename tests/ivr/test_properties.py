"""Invariants over arbitrary input: the validator and the compiler answer with problems, never crash."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosmo.ivr.errors import ExpressionError
from cosmo.ivr.expressions import compile_expression, compile_template
from cosmo.ivr.loader import parse_flow
from cosmo.ivr.steps import STEP_KINDS
from tests.ivr.helpers import REPO

MAIN = (REPO / "ivr_flows" / "main.yaml").read_text()
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text(max_size=12),
                    st.sampled_from(["welcome", "next", "menu", "${caller}", "1", "#", "main-menu"]))
KEYS = st.one_of(st.sampled_from([*STEP_KINDS, "prompt", "next", "options", "key", "say", "variable", "if",
                                  "conditions", "else", "queue", "entry", "nodes", "a", "b"]), st.text(max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, VALUES, max_size=4), st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES,
                                                                  max_size=3))
def test_any_structure_gives_a_result(header: dict[str, object], nodes: dict[str, object]) -> None:
    data = {"entry": "a", **header, "nodes": nodes}
    result = parse_flow(yaml.safe_dump(data, allow_unicode=True), "p.yaml")
    assert (result.flow is None) == bool(result.errors)
    for problem in result.problems:
        assert problem.line >= 1 and problem.column >= 1


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(MAIN)), st.text(max_size=8))
def test_edits_of_the_demo_flow_give_a_result(at: int, inserted: str) -> None:
    result = parse_flow(MAIN[:at] + inserted + MAIN[at:], "main.yaml", name="main")
    assert (result.flow is None) == bool(result.errors)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_text_compiles_or_is_refused(text: str) -> None:
    for compile_ in (compile_expression, compile_template):
        try:
            compile_(text)
        except ExpressionError as exc:
            assert exc.offset is not None and 0 <= exc.offset <= len(text)
