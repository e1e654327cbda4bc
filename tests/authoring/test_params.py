"""Typed run params: declarations, command-line parsing, and the checks every run passes."""

from __future__ import annotations

import pytest

from lockgate import Param, param, pipeline, shell, task
from lockgate.api import coerce_params
from lockgate.errors import ConfigError, DefinitionError
from lockgate.model.params import resolve_params


@task
def show(value: object) -> object:
    return value


def _pipe(**params: object):
    with pipeline("typed", params=params) as p:
        show(param(next(iter(params))))
    return p.build()


def test_plain_defaults_become_params_typed_by_their_value() -> None:
    pipe = _pipe(n=1, ratio=0.5, flag=False, name="x", items=[1], opts={"a": 1}, maybe=None)
    assert {k: v.type for k, v in pipe.params.items()} == {
        "n": "integer",
        "ratio": "number",
        "flag": "boolean",
        "name": "string",
        "items": "array",
        "opts": "object",
        "maybe": None,
    }
    assert coerce_params(pipe, None) == {
        "n": 1,
        "ratio": 0.5,
        "flag": False,
        "name": "x",
        "items": [1],
        "opts": {"a": 1},
        "maybe": None,
    }


@pytest.mark.parametrize(
    ("decl", "text", "value"),
    [
        (Param(1), "42", 42),
        (Param(0.5), "2", 2.0),
        (Param(False), "yes", True),
        (Param(True), "off", False),
        (Param("x"), "[1]", "[1]"),
        (Param([1]), "[2, 3]", [2, 3]),
        (Param({"a": 1}), '{"b": 2}', {"b": 2}),
        (Param(None), "null", None),
        (Param(None), "plain text", "plain text"),
        (Param(None), "[1, 2]", [1, 2]),
        (Param(type="number"), "1.5", 1.5),
        (Param(type="number"), "-2e3", -2000.0),
        (Param(type="integer"), "-12", -12),
    ],
)
def test_command_line_text_is_parsed_by_the_declared_type(decl: Param, text: str, value) -> None:
    assert resolve_params({"p": decl}, {"p": text}, from_text=True) == {"p": value}


@pytest.mark.parametrize(
    ("decl", "given", "message"),
    [
        (Param(1), "abc", "param 'p': expected an integer, got 'abc'"),
        (Param(1), "1_000", "param 'p': expected an integer, got '1_000'"),
        (Param(1), " 7", "param 'p': expected an integer, got ' 7'"),
        (Param(1.0), "nan", "param 'p': expected a number, got 'nan'"),
        (Param(1.0), "1e999x", "param 'p': expected a number, got '1e999x'"),
        (Param(False), "maybe", "param 'p': expected true or false, got 'maybe'"),
        (Param([1]), "{", "param 'p': expected JSON (array), got '{'"),
        (Param([1]), '{"a": 1}', "param 'p' must be of type array, got {'a': 1}"),
        (Param("eu", enum=["eu", "us"]), "asia", "param 'p' must be one of 'eu', 'us', got 'asia'"),
        (Param(5, minimum=1, maximum=10), "11", "param 'p' must be <= 10, got 11"),
        (Param(5, minimum=1, maximum=10), "0", "param 'p' must be >= 1, got 0"),
        (Param("a", pattern=r"[a-z]+"), "A1", "param 'p' 'A1' does not match the pattern [a-z]+"),
        (Param("ab", max_length=3), "abcd", "param 'p' must have at most 3 items/characters"),
        (
            Param(type="string", description="the target"),
            None,
            "param 'p' (the target) is required",
        ),
    ],
)
def test_bad_values_are_rejected_naming_the_param_and_what_was_expected(
    decl: Param, given, message: str
) -> None:
    with pytest.raises(ValueError) as exc:
        resolve_params({"p": decl}, {} if given is None else {"p": given}, from_text=True)
    assert str(exc.value).startswith(message), str(exc.value)


def test_values_from_python_are_checked_without_conversion() -> None:
    pipe = _pipe(n=Param(3, minimum=1))
    assert coerce_params(pipe, {"n": 7}) == {"n": 7}
    with pytest.raises(ConfigError, match="pipeline 'typed': param 'n' must be of type integer"):
        coerce_params(pipe, {"n": "7"})
    with pytest.raises(ConfigError, match="unknown param 'm'; did you mean 'n'|unknown param 'm'"):
        coerce_params(pipe, {"m": 1})
    with pytest.raises(ConfigError, match=r"unknown param 'limt'; did you mean 'limit'\?"):
        coerce_params(_pipe(limit=1), {"limt": 2})


def test_an_integer_is_a_number() -> None:
    assert resolve_params({"p": Param(type="number")}, {"p": 2}) == {"p": 2}


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        (lambda: Param(5, type="integer", maximum=3), "its default must be <= 3"),
        (lambda: Param("x", type="integer"), "its default must be of type integer"),
        (lambda: Param(1, type="int"), "unknown param type 'int'"),
        (lambda: Param("x", pattern="("), "is not a regex"),
    ],
)
def test_bad_declarations_are_refused(decl, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decl()


def test_a_declaration_error_names_the_pipeline_and_param() -> None:
    import datetime

    with (
        pytest.raises(DefinitionError, match=r"pipeline 'p1': param 'day': .* is not JSON"),
        pipeline("p1", params={"day": datetime.date(2026, 1, 1)}),
    ):
        shell("s", "true")


def test_required_params_must_be_given() -> None:
    pipe = _pipe(target=Param(type="string", description="where to load"))
    assert pipe.params["target"].required
    with pytest.raises(
        ConfigError, match="param 'target' \\(where to load\\) is required: give it"
    ):
        coerce_params(pipe, {})
    assert coerce_params(pipe, {"target": "db"}) == {"target": "db"}


def test_param_json_describes_the_declaration() -> None:
    decl = Param("eu", enum=["eu", "us"], description="region")
    assert decl.to_json() == {
        "type": "string",
        "required": False,
        "default": "eu",
        "description": "region",
        "enum": ["eu", "us"],
    }
    assert Param(type=int).to_json() == {"type": "integer", "required": True}
