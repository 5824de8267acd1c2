"""Tests of cosmo.yamlfile: YAML with line numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cosmo.yamlfile import (
    LineMap,
    YamlSyntaxError,
    dotted,
    read_yaml,
    validation_problems,
)

TEXT = """\
a: 1
b:
  c: [x, y]
  d:
    - e: 1
      f: two
"""


def test_lines_of_nodes() -> None:
    data, lines = read_yaml(TEXT)
    assert data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 1, "f": "two"}]}}
    assert lines.line_of(("a",)) == 1
    assert lines.line_of(("b",)) == 2
    assert lines.line_of(("b", "c", 1)) == 3
    assert lines.line_of(("b", "d", 0)) == 5
    assert lines.line_of(("b", "d", 0, "f")) == 6
    assert lines.line_of(("b", "d", 0, "missing")) == 5
    assert lines.line_of(("nowhere", "deeper")) == 1
    assert lines.line_of(("b", "c", "[key]")) == 3


def test_empty_document() -> None:
    assert read_yaml("") == (None, LineMap({(): 1}, {}))


def test_merge_keys_and_aliases() -> None:
    data, _ = read_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert data == {"base": {"x": 1}, "other": {"x": 1, "y": 2}}


def test_numbers_that_stay_text() -> None:
    data, _ = read_yaml("a: +15550100\nb: 0101\nc: 1_000\nd: 1001\ne: -5\nf: '0101'\ng: 1:30\n")
    assert data == {"a": "+15550100", "b": "0101", "c": "1_000", "d": 1001, "e": -5, "f": "0101", "g": "1:30"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
        ("a: [1\n", 2, "YAML syntax error: while parsing a flow sequence expected ',' or ']', but got '<stream end>'"),
        ("? [a]\n: 1\n", 1, "mapping keys must be plain values"),
        ("~: 1\n", 1, "mapping key must be text or a number: '~'"),
        ("a: 1\n---\nb: 2\n", 2, "YAML syntax error: expected a single document in the stream but found another document"),
        ("[" * 70 + "]" * 70, 1, "nesting too deep"),
    ],
)
def test_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(YamlSyntaxError) as info:
        read_yaml(text)
    assert (info.value.line, info.value.message) == (line, message)


def test_alias_expansion_is_bounded() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i, name in enumerate("bcdefg"):
        previous = "abcdefg"[i]
        text += f"{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
    with pytest.raises(YamlSyntaxError, match="document too large"):
        read_yaml(text)


def test_dotted() -> None:
    assert dotted(("sip", "listen", 0, "port")) == "sip.listen[0].port"
    assert dotted(("numbers", "+1555", "queue")) == "numbers['+1555'].queue"
    assert dotted(("numbers", "x y", "[key]")) == "numbers['x y'] (key)"


class Inner(BaseModel):
    port: int


class Outer(BaseModel):
    items: list[Inner]


def test_validation_problems_point_at_lines() -> None:
    text = "items:\n  - port: 1\n  - port: nope\n  - {}\n"
    data, lines = read_yaml(text)
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(data)
    problems = validation_problems(info.value, data, lines, "f.yaml")
    assert [p.text for p in problems] == [
        "f.yaml:3: items[1].port: Input should be a valid integer, unable to parse string as an integer",
        "f.yaml:4: items[2].port: required setting missing",
    ]
    from_env = validation_problems(info.value, data, lines, "f.yaml", {("items", 1): "ENV_X"})
    assert from_env[0].text == "ENV_X: items[1].port: Input should be a valid integer, unable to parse string as an integer"
    assert from_env[0].line == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{},&*!|>'\"#%@ \n\t?~<.01+"))))
def test_any_text_parses_or_raises_our_error(text: str) -> None:
    try:
        read_yaml(text)
    except YamlSyntaxError:
        pass


def test_a_control_character_is_our_syntax_error() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        read_yaml("a: 1\n\x1f\n")
    assert (caught.value.line, caught.value.column) == (2, 1), caught.value
    assert caught.value.message == "YAML syntax error: unacceptable character #x001f: special characters are not allowed"
