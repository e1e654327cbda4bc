"""Typed run parameters: a declared type, default, description and constraints, and the check
every value given for a run (on the command line, through the API, by a trigger) must pass."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lockgate.errors import did_you_mean

PARAM_TYPES = ("string", "integer", "number", "boolean", "array", "object")
_PY_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a param that every run must give."""


def type_of(value: Any) -> str | None:
    """The param type a JSON value has (None for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    for py, name in _PY_TYPES.items():
        if isinstance(value, py):
            return name
    raise ValueError(f"{value!r} is not JSON; use a string, number, boolean, list or dict")


@dataclass(frozen=True)
class Param:
    """A run parameter's declaration: `Param(10, type="integer", minimum=1, description=...)`.

    With no default the param is required. The type is taken from the default when not given.
    """

    default: Any = REQUIRED
    type: str | None = None
    description: str | None = None
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    nullable: bool = field(default=False)

    def __post_init__(self) -> None:
        kind = self.type
        if kind is not None and not isinstance(kind, str):
            kind = _PY_TYPES.get(kind)
            if kind is None:
                raise ValueError(f"param type {self.type!r} is not one of {', '.join(PARAM_TYPES)}")
        if kind is None and self.default is not REQUIRED:
            kind = type_of(self.default)
            if self.default is None:
                object.__setattr__(self, "nullable", True)
        if kind is not None and kind not in PARAM_TYPES:
            raise ValueError(f"unknown param type {kind!r}{did_you_mean(kind, PARAM_TYPES)}")
        object.__setattr__(self, "type", kind)
        if self.enum is not None:
            object.__setattr__(self, "enum", tuple(self.enum))
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"param pattern {self.pattern!r} is not a regex: {exc}") from None
        if self.default is not REQUIRED and self.default is not None:
            self.check(self.default, "its default")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any, what: str = "the value") -> Any:
        """`value` if it satisfies the declaration; else ValueError saying what was expected."""
        if value is None:
            if self.nullable or self.default is None:
                return None
            raise ValueError(f"{what} must not be null")
        kind = self.type
        if kind is not None and type_of(value) != kind:
            if not (kind == "number" and type_of(value) == "integer"):
                raise ValueError(f"{what} must be of type {kind}, got {value!r}")
        else:
            type_of(value)  # JSON at all?
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"{what} {value!r} is not JSON") from None
        if self.enum is not None and value not in self.enum:
            choices = ", ".join(map(repr, self.enum))
            raise ValueError(f"{what} must be one of {choices}, got {value!r}")
        if self.minimum is not None and isinstance(value, int | float) and value < self.minimum:
            raise ValueError(f"{what} must be >= {self.minimum:g}, got {value!r}")
        if self.maximum is not None and isinstance(value, int | float) and value > self.maximum:
            raise ValueError(f"{what} must be <= {self.maximum:g}, got {value!r}")
        if isinstance(value, str | list | dict):
            if self.min_length is not None and len(value) < self.min_length:
                raise ValueError(f"{what} must have at least {self.min_length} items/characters")
            if self.max_length is not None and len(value) > self.max_length:
                raise ValueError(f"{what} must have at most {self.max_length} items/characters")
        if (
            self.pattern is not None
            and isinstance(value, str)
            and not re.fullmatch(self.pattern, value)
        ):
            raise ValueError(f"{what} {value!r} does not match the pattern {self.pattern}")
        return value

    def parse(self, text: str) -> Any:
        """A value typed on a command line (`--param k=v`), converted to the declared type."""
        kind = self.type
        if kind != "string" and self.nullable and text.strip().lower() in ("null", "none"):
            return None
        if kind == "string" or (kind is None and not _looks_like_json(text)):
            return text
        if kind == "boolean":
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if kind == "integer":
            if not _INTEGER.fullmatch(text):
                raise ValueError(f"expected an integer, got {text!r}")
            return int(text)
        if kind == "number":
            if not _NUMBER.fullmatch(text):
                raise ValueError(f"expected a number, got {text!r}")
            return float(text)
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"expected JSON ({kind or 'any value'}), got {text!r}") from None

    def to_json(self) -> dict[str, Any]:
        """The declaration as JSON (shown by `lockgate show --json`, the API and the UI)."""
        out: dict[str, Any] = {"type": self.type, "required": self.required}
        if not self.required:
            out["default"] = self.default
        for key in ("description", "minimum", "maximum", "min_length", "max_length", "pattern"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.enum is not None:
            out["enum"] = list(self.enum)
        return out


_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _looks_like_json(text: str) -> bool:
    return text[:1] in ("[", "{")


def as_param(value: Any) -> Param:
    """A declaration for a pipeline's `params` entry: a `Param` as is, else a default value."""
    return value if isinstance(value, Param) else Param(value)


def resolve_params(
    declared: Mapping[str, Param],
    given: Mapping[str, Any] | None,
    *,
    from_text: bool = False,
) -> dict[str, Any]:
    """The params of one run: declared defaults overlaid with `given`, each value checked.

    Raises ValueError naming the param and what was expected."""
    out: dict[str, Any] = {}
    given = dict(given or {})
    for name in given:
        if name not in declared:
            tip = did_you_mean(name, sorted(declared), "declared params:") if declared else ""
            raise ValueError(f"unknown param {name!r}{tip or '; it declares no params'}")
    for name, decl in declared.items():
        if name in given:
            value = given[name]
            if from_text and isinstance(value, str):
                try:
                    value = decl.parse(value)
                except ValueError as exc:
                    raise ValueError(f"param {name!r}: {exc}") from None
            out[name] = decl.check(value, f"param {name!r}")
        elif decl.required:
            what = f" ({decl.description})" if decl.description else ""
            raise ValueError(f"param {name!r}{what} is required: give it with --param {name}=VALUE")
        else:
            out[name] = decl.default
    return out
