"""The formula parser and the series engine read one function catalog: for every function, every arity and
every argument rule, what the parser accepts the engine binds, and what one refuses the other refuses too,
naming the same argument."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sextant.query.formula_syntax import Call, FormulaSyntaxError, Number, StringLit, parse_formula
from sextant.query.metric_functions import FUNCTIONS, ArgKind, FunctionSpec, Param, arg_kind
from sextant.series.functions import DEFERRED, FunctionArgumentError, lookup

# A valid literal for the string parameters that have no choices.
VALID_TEXT = {
    "shift": "-2w",
    "timezone": "Europe/Paris",
    "alert_window": "last_15m",
    "history": "3d",
    "count_default_zero": "true",
}


def valid_literal(param: Param) -> float | str:
    if arg_kind(param) is ArgKind.NUMBER:
        low = param.minimum if param.minimum is not None else 0
        return float(max(3, math.floor(low) + 1) if param.maximum is None else param.maximum)
    if param.choices:
        return str(param.choices[-1])
    return VALID_TEXT[param.name]


def invalid_literals(param: Param) -> list[float | str]:
    """Values of the right kind that the parameter's rules refuse."""
    if arg_kind(param) is ArgKind.NUMBER:
        bad: list[float | str] = []
        if param.type == "integer":
            bad.append(2.5)
        if param.minimum is not None:
            bad.append(param.minimum if param.exclusive_minimum else param.minimum - 1)
        if param.maximum is not None:
            bad.append(param.maximum + 1)
        return bad
    if param.choices or param.parse is not None or param.type == "boolean":
        return ["not one of them"]
    return []


def text_of(value: float | str) -> str:
    if isinstance(value, str):
        return "'" + value + "'"
    return str(int(value)) if float(value).is_integer() else str(value)


def engine_value(value: float | str) -> float | int | str:
    # What the evaluator passes for a literal (series.evaluate._plain): whole numbers as integers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def sample_args(spec: FunctionSpec, count: int) -> tuple[list[str], list[Any]]:
    texts: list[str] = []
    values: list[Any] = []
    for param in spec.positional[:count]:
        if arg_kind(param) is ArgKind.SERIES:
            texts.append("q")
            values.append(DEFERRED)
        else:
            literal = valid_literal(param)
            texts.append(text_of(literal))
            values.append(engine_value(literal))
    return texts, values


def formula(name: str, args: list[str], named: dict[str, str] | None = None) -> str:
    parts = args + [f"{k}={v}" for k, v in (named or {}).items()]
    return f"{name}({', '.join(parts)})"


NAMES = sorted(FUNCTIONS)


@pytest.mark.parametrize("name", NAMES)
def test_arities_agree(name: str) -> None:
    spec = FUNCTIONS[name]
    for count in range(0, spec.max_args + 2):
        texts, values = sample_args(spec, count)
        while len(texts) < count:  # past the last parameter: one more query
            texts.append("q")
            values.append(DEFERRED)
        accepted = spec.min_args <= count <= spec.max_args
        if accepted:
            ast = parse_formula(formula(name, texts))
            assert isinstance(ast, Call) and len(ast.args) == count
            lookup(name).bind(values)
        else:
            with pytest.raises(FormulaSyntaxError, match="argument"):
                parse_formula(formula(name, texts))
            with pytest.raises(FunctionArgumentError):
                lookup(name).bind(values)


RULES = [
    (name, index, value)
    for name in NAMES
    for index, param in enumerate(FUNCTIONS[name].positional)
    if arg_kind(param) is not ArgKind.SERIES
    for value in invalid_literals(param)
]


@pytest.mark.parametrize(("name", "index", "value"), RULES)
def test_positional_argument_rules_agree(name: str, index: int, value: float | str) -> None:
    spec = FUNCTIONS[name]
    param = spec.positional[index]
    texts, values = sample_args(spec, index + 1)
    texts[index], values[index] = text_of(value), engine_value(value)
    with pytest.raises(FormulaSyntaxError) as parsed:
        parse_formula(formula(name, texts))
    with pytest.raises(FunctionArgumentError) as bound:
        lookup(name).bind(values)
    assert bound.value.argument == param.name
    assert f"for {param.name} (" in parsed.value.expected
    # The same rule, in the same words.
    assert parsed.value.expected.startswith(str(bound.value.allowed)), (parsed.value, bound.value)


NAMED_RULES = [
    (name, param.name, value)
    for name in NAMES
    for param in FUNCTIONS[name].named
    for value in invalid_literals(param)
]


@pytest.mark.parametrize(("name", "keyword", "value"), NAMED_RULES)
def test_named_argument_rules_agree(name: str, keyword: str, value: float | str) -> None:
    spec = FUNCTIONS[name]
    texts, values = sample_args(spec, spec.min_args)
    with pytest.raises(FormulaSyntaxError) as parsed:
        parse_formula(formula(name, texts, {keyword: text_of(value)}))
    with pytest.raises(FunctionArgumentError) as bound:
        lookup(name).bind(values, {keyword: engine_value(value)})
    assert bound.value.argument == keyword
    assert f"for {keyword}= of {name}()" in parsed.value.expected
    assert parsed.value.expected.startswith(str(bound.value.allowed))


@pytest.mark.parametrize("name", [n for n in NAMES if FUNCTIONS[n].named])
def test_valid_named_arguments_parse_and_bind(name: str) -> None:
    spec = FUNCTIONS[name]
    texts, values = sample_args(spec, spec.min_args)
    literals = {p.name: valid_literal(p) for p in spec.named}
    ast = parse_formula(formula(name, texts, {k: text_of(v) for k, v in literals.items()}))
    assert isinstance(ast, Call)
    # The parsed literals, as the evaluator hands them over, bind.
    named = {k: engine_value(v.value) for k, v in ast.kwargs if isinstance(v, Number | StringLit)}
    lookup(name).bind(values, named)
    with pytest.raises(FormulaSyntaxError, match="a named argument of"):
        parse_formula(formula(name, texts, {"nosuch": "1"}))
    with pytest.raises(FunctionArgumentError):
        lookup(name).bind(values, {"nosuch": 1})


@pytest.mark.parametrize("name", NAMES)
def test_a_number_where_a_query_goes_is_refused_by_both(name: str) -> None:
    spec = FUNCTIONS[name]
    first = spec.positional[0]
    texts, values = sample_args(spec, spec.min_args)
    texts[0], values[0] = "5", 5
    if first.type == "series_or_number":  # pow(2, q)
        parse_formula(formula(name, texts))
        lookup(name).bind(values)
        return
    with pytest.raises(FormulaSyntaxError, match="a query or an expression over queries"):
        parse_formula(formula(name, texts))
    with pytest.raises(FunctionArgumentError, match="must be a query"):
        lookup(name).bind(values)


def test_family_members_and_aliases_name_what_they_stand_for() -> None:
    assert FUNCTIONS["top5_mean"].implementation == "top"
    assert dict(FUNCTIONS["bottom10_min"].preset) == {"limit": 10, "by": "min", "dir": "asc"}
    assert FUNCTIONS["hour_before"].implementation == "timeshift"
    assert dict(FUNCTIONS["month_before"].preset) == {"seconds": -28 * 86_400}
    assert FUNCTIONS["ewma_3"].implementation == "ewma"
    assert FUNCTIONS["rate"].implementation == "per_second"
    assert FUNCTIONS["derived"].implementation == "derivative"
    assert FUNCTIONS["count_nonzero_finite"].implementation == "count_nonzero"
    assert FUNCTIONS["abs"].implementation == "abs"
    # A real query from the parser vectors uses top(..., 1, ...): any whole number from 1 is a limit.
    parse_formula("top(q, 1, 'max', 'desc')")
    lookup("top").bind([DEFERRED, 1, "max", "desc"])
