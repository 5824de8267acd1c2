"""Safe expressions and ${...} templates."""

from __future__ import annotations

from typing import Any

import pytest

from cosmo.ivr.errors import ExpressionError
from cosmo.ivr.expressions import (
    CONSTANTS,
    STATIC_FUNCTIONS,
    Record,
    compile_expression,
    compile_template,
    unwrap,
    wrap,
)

NAMES: dict[str, Any] = {
    **CONSTANTS,
    "caller": "+15550100123",
    "customer": wrap({"name": "Ada", "tier": "gold", "attributes": {"balance": "42.50"}, "tags": ["a", "b"]}),
    "account": "123456",
    "count": 3,
}


def evaluate(source: str, names: dict[str, Any] | None = None) -> Any:
    return compile_expression(source).evaluate(NAMES if names is None else names,
                                               {**STATIC_FUNCTIONS, "open": lambda name="business": name == "business"})


@pytest.mark.parametrize(("source", "value"), [
    ('customer.tier == "gold"', True),
    ('customer["tier"] in ("gold", "silver")', True),
    ("customer.attributes.balance", "42.50"),
    ("customer.missing", None),
    ("customer.attributes.missing.deeper", None),
    ("unknown_variable", None),
    ("unknown_variable == null", True),
    ("5 if customer.tier == 'gold' else 0", 5),
    ("count * 2 + 1", 7),
    ("caller.startswith('+1') and len(account) == 6", True),
    ("digits(caller)[-4:]", "0123"),
    ("int(account) > 100000", True),
    ("open() and not open('other')", True),
    ("true and not false", True),
    ("customer.tags[1]", "b"),
    ("'b' in customer.tags", True),
    ("customer.name.upper()", "ADA"),
    ("f'{customer.name}!'", "Ada!"),
])
def test_values(source: str, value: Any) -> None:
    assert evaluate(source) == value


@pytest.mark.parametrize(("source", "message", "offset"), [
    ("1 +", "invalid expression: invalid syntax", 3),
    ("a = 1", "invalid expression: invalid syntax", 2),
    ("  x ==", "invalid expression: invalid syntax", 6),
    ("", "empty expression", 0),
    ("customer.__class__", "attribute '__class__' not allowed", 0),
    ("x.y.__globals__", "attribute '__globals__' not allowed", 0),
    ("__import__('os')", "unknown function '__import__'", 0),
    ("__builtins__", "name '__builtins__' not allowed", 0),
    ("'{}'.format(1)", "attribute 'format' not allowed", 0),
    ("lambda: 1", "lambda not allowed in an expression", 0),
    ("[x for x in y]", "comprehensions not allowed in an expression", 0),
    ("{1: 2}", "dict literals not allowed in an expression", 0),
    ("(y := 1)", "assignments (:=) not allowed in an expression", 1),
    ("a @ b", "operator MatMult not allowed in an expression", 0),
    ("x and eval('1')", "unknown function 'eval'", 6),
    ("opne()", "unknown function 'opne' (did you mean 'open'?)", 0),
    ("open('a', 'b')", "open() takes one calendar name", 0),
    ("(lambda: 1)()", "only named functions can be called", 0),
])
def test_compile_errors(source: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert (caught.value.message, caught.value.offset) == (message, offset)


def test_names_and_calendars_are_known_after_compiling() -> None:
    expression = compile_expression("open('night') or holiday() or x > len(y)")
    assert expression.names == {"x", "y"}
    assert expression.calendars == ("night", "business")


@pytest.mark.parametrize(("source", "error"), [
    ("1 / 0", "1 / 0: division by zero"),
    ("int('abc')", "int('abc'): invalid literal for int() with base 10: 'abc'"),
    ("count > 'a'", "count > 'a': '>' not supported between instances of 'int' and 'str'"),
    ("9 ** 999999999", "9 ** 999999999: Sorry! I don't want to evaluate 9 ** 999999999"),
    ("missing > 1", "missing > 1: '>' not supported between instances of '_Missing' and 'int'"),
])
def test_evaluation_errors(source: str, error: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(source)
    assert str(caught.value) == error


def test_templates() -> None:
    template = compile_template("Hello ${customer.name}, ${count + 1} items; $${literal} and ${'}'} $5")
    assert template.render(NAMES, STATIC_FUNCTIONS) == "Hello Ada, 4 items; ${literal} and } $5"
    assert not template.is_literal
    assert [e.source for e in template.expressions()] == ["customer.name", "count + 1", "'}'"]
    assert compile_template("plain").is_literal
    assert compile_template("${missing}").render(NAMES, STATIC_FUNCTIONS) == ""
    assert compile_template("${customer.attributes}").render(NAMES, STATIC_FUNCTIONS) == "{'balance': '42.50'}"


@pytest.mark.parametrize(("source", "message", "offset"), [
    ("Hi ${name", "unclosed '${'", 3),
    ("Hi ${1 +}", "invalid expression: invalid syntax", 8),
    ("${a.__dict__}", "attribute '__dict__' not allowed", 2),
])
def test_template_errors(source: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template(source)
    assert (caught.value.message, caught.value.offset) == (message, offset)


def test_records() -> None:
    record = Record({"a": {"b": [1, {"c": 2}]}})
    assert record.a.b[1].c == 2
    assert record.missing == None and record["missing"].deeper == None
    assert not record.missing
    assert "a" in record and len(record) == 1 and record
    assert not Record({})
    assert record == {"a": {"b": [1, {"c": 2}]}} and record == Record({"a": {"b": [1, {"c": 2}]}})
    assert unwrap(wrap({"x": [{"y": 1}]})) == {"x": [{"y": 1}]}
    with pytest.raises(AttributeError):
        record._data_missing  # noqa: B018 (private names are not keys)
