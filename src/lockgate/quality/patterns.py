"""Regex checks are written in Python `re` syntax and run by DuckDB's RE2 engine (vectorised,
no Python per row). RE2 lacks a few Python constructs; `unsupported` names the first one a
pattern uses, so a pattern RE2 would run differently is refused when the check is parsed."""

from __future__ import annotations

import importlib
import re
from typing import Any

_REFUSED_OPS = {
    "ASSERT": "a lookahead or lookbehind",
    "ASSERT_NOT": "a negative lookahead or lookbehind",
    "GROUPREF": "a backreference",
    "GROUPREF_EXISTS": "a conditional group",
    "GROUPREF_IGNORE": "a backreference",
    "GROUPREF_LOC_IGNORE": "a backreference",
    "GROUPREF_UNI_IGNORE": "a backreference",
    "ATOMIC_GROUP": "an atomic group",
    "POSSESSIVE_REPEAT": "a possessive repeat",
}
_FLAG_VERBOSE = re.VERBOSE.value
_FLAG_ASCII = re.ASCII.value
_FLAG_LOCALE = re.LOCALE.value


def compile_pattern(pattern: str) -> str | None:
    """None when `pattern` compiles in Python and RE2 runs it the same way; else the problem,
    e.g. `bad regex 'a(': missing ), unterminated subpattern at position 1`."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"bad regex {pattern!r}: {exc}"
    found = unsupported(pattern)
    if found:
        return (
            f"regex {pattern!r} uses {found}, which the check engine (RE2) cannot run; "
            "rewrite the pattern without it"
        )
    return None


def unsupported(pattern: str) -> str | None:
    """The first construct of `pattern` (valid Python regex) that RE2 does not support."""
    try:  # the stdlib's own parser of patterns (private, hence the guard)
        sre_parse = importlib.import_module("re._parser")
    except ImportError:  # pragma: no cover - a Python without it
        return None
    parsed = sre_parse.parse(pattern)
    flags = parsed.state.flags
    problem = _flag_problem(flags)
    return problem or _walk(list(parsed.data))


def _flag_problem(flags: int) -> str | None:
    if flags & _FLAG_VERBOSE:
        return "the verbose flag (?x)"
    if flags & _FLAG_LOCALE:
        return "the locale flag (?L)"
    if flags & _FLAG_ASCII:
        return "the ASCII flag (?a) (classes are ASCII-only already)"
    return None


def _walk(items: list[tuple[Any, Any]]) -> str | None:
    for op, arg in items:
        name = str(op)
        if name in _REFUSED_OPS:
            return _REFUSED_OPS[name]
        if name == "AT" and str(arg) == "AT_END_STRING":
            return "\\Z (drop it: the whole value is matched anyway)"
        if name == "SUBPATTERN":
            problem = _flag_problem(arg[1])
            if problem:
                return problem
        problem = _walk_arg(arg)
        if problem:
            return problem
    return None


def _walk_arg(arg: Any) -> str | None:
    """Search an opcode's argument: sub-patterns (`.data`) nested in tuples and lists."""
    if hasattr(arg, "data"):
        return _walk(list(arg.data))
    if isinstance(arg, tuple | list):
        for part in arg:
            found = _walk_arg(part)
            if found:
                return found
    return None
