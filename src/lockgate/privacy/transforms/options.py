"""The options a transform takes: their kinds, defaults and validation.

Options come from Python calls and from YAML rules files alike, so values are checked and
normalised here once (`"4"` is not silently an int; `yes`/`no` booleans are YAML's business),
and every error names the operation, the option and what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockgate.errors import PrivacyError, did_you_mean


@dataclass(frozen=True)
class Option:
    """One option of a transform."""

    name: str
    kind: str
    """`int`, `str`, `bool`, `choice`, `strings` (a list of names, or one comma-separated
    string) or `object` (a Python object, checked by `accept`)."""
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    accept: Callable[[Any], bool] | None = None

    def coerce(self, op: str, value: Any) -> Any:
        """The option's value checked and normalised, or a PrivacyError saying what it takes."""
        if value is None:
            return self.default
        where = f"{op}: option {self.name!r}"
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise PrivacyError(f"{where} must be a whole number, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise PrivacyError(f"{where} must be >= {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise PrivacyError(f"{where} must be <= {self.maximum}, got {value}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise PrivacyError(f"{where} must be true or false, got {value!r}")
            return value
        if self.kind == "str":
            if not isinstance(value, str):
                raise PrivacyError(f"{where} must be text, got {value!r}")
            return value
        if self.kind == "choice":
            text = str(value).strip().lower() if isinstance(value, str) else value
            if text not in self.choices:
                raise PrivacyError(
                    f"{where} cannot be {value!r}{did_you_mean(str(value), self.choices)}"
                )
            return text
        if self.kind == "strings":
            items: Sequence[Any] = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, Sequence) or not all(isinstance(i, str) for i in items):
                raise PrivacyError(f"{where} must be a list of names, got {value!r}")
            names = tuple(i.strip() for i in items if i.strip())
            if self.choices:
                for name in names:
                    if name not in self.choices:
                        raise PrivacyError(
                            f"{where}: unknown name {name!r}{did_you_mean(name, self.choices)}"
                        )
            return names
        if self.kind == "object":
            if self.accept is not None and not self.accept(value):
                raise PrivacyError(
                    f"{where} got an object of the wrong kind: {type(value).__name__}"
                )
            return value
        raise AssertionError(f"unknown option kind {self.kind!r}")  # pragma: no cover


def check_options(
    op: str, spec: Sequence[Option], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Every option of `op` with the given values checked and the rest at their defaults."""
    known = {o.name: o for o in spec}
    given = dict(given or {})
    for name in given:
        if name not in known:
            if not known:
                raise PrivacyError(f"{op} takes no options, got {name!r}")
            raise PrivacyError(
                f"{op}: unknown option {name!r}"
                + did_you_mean(name, sorted(known), known="valid options:")
            )
    return {name: option.coerce(op, given.get(name)) for name, option in known.items()}


KEY_OPTION = Option(
    "key",
    "str",
    None,
    "the key id to use (default: the current key); pin it where values must match across "
    "key rotations",
)
