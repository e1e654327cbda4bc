"""Where a piece of text lands in a POSIX shell command: in a plain word, or inside quotes,
backticks, a comment, a here-document, `${...}` or `$((...))`.

Template values reach shell commands as environment variable references, which work as
written in a plain word or inside double quotes (also inside `$(...)`, which starts afresh).
This scanner finds the context of each marked position, so a value that would land anywhere
else (where a reference would be literal text, or evaluated as arithmetic by bash) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

WORD = "word"
DQUOTE = '"..." quotes'
_STARTS_COMMENT = frozenset(" \t\n;&|()<>")
_LABELS = {
    "squote": "'...' quotes",
    "dquote": '"..." quotes',
    "ansi": "$'...' quotes",
    "backtick": "`...` backticks",
    "param": "a ${...} expansion",
    "arith": "an arithmetic expression ((...))",
    "bracket": "a [...] (arithmetic, test or subscript)",
    "comment": "a comment",
    "heredoc": "a here-document",
}


def contexts(command: str, marks: Iterable[int]) -> dict[int, str]:
    """For each position in `marks`, `WORD` or a description of where it is instead."""
    wanted = set(marks)
    found: dict[int, str] = {}
    stack = ["top"]  # "top", "cmd" ($(...) or a subshell), or one of _LABELS
    heredoc = False  # a here-document started: anything after it is treated as inside one
    escaped = -1  # the index of the last character escaped by a backslash
    i, n = 0, len(command)
    while i < n:
        if i in wanted:
            found[i] = _context(stack, heredoc)
        char, frame = command[i], stack[-1]
        if frame == "comment":
            if char == "\n":
                stack.pop()
        elif frame == "squote":
            if char == "'":
                stack.pop()
        elif frame in ("ansi", "dquote", "backtick"):
            closing = {"ansi": "'", "dquote": '"', "backtick": "`"}[frame]
            if char == "\\":
                i += 1
            elif char == closing:
                stack.pop()
            elif frame == "dquote" and char == "`":
                stack.append("backtick")
            elif frame == "dquote":
                i = _open_expansion(command, i, stack)
        else:  # a plain context: top level, $(...), ${...}, $((...))
            if char == "\\":
                i += 1
                escaped = i  # e.g. `\ #` is a word with a space in it, not a comment
            elif char == "'":
                stack.append("squote")
            elif char == '"':
                stack.append("dquote")
            elif char == "`":
                stack.append("backtick")
            elif command.startswith("$'", i):
                stack.append("ansi")
                i += 1
            elif command.startswith('$"', i):
                stack.append("dquote")
                i += 1
            elif command.startswith("$[", i) or command.startswith("[[", i):
                stack += ["bracket", "bracket"] if char == "[" else ["bracket"]
                i += 1  # bash evaluates their contents as arithmetic: values are not data there
            elif char == "[" and i > 0 and (command[i - 1].isalnum() or command[i - 1] == "_"):
                stack.append("bracket")  # a[...]: an array subscript is arithmetic in bash
            elif char == "]" and frame == "bracket":
                stack.pop()
            elif char == "$":
                i = _open_expansion(command, i, stack)
            elif command.startswith("((", i):
                stack += ["arith", "arith"]  # bash's arithmetic command
                i += 1
            elif char == "(":
                stack.append("cmd" if frame != "arith" else "arith")
            elif char == ")" and frame in ("cmd", "arith") or char == "}" and frame == "param":
                stack.pop()
            elif char == "#" and (
                i == 0 or (command[i - 1] in _STARTS_COMMENT and escaped != i - 1)
            ):
                stack.append("comment")
            elif command.startswith("<<", i) and not command.startswith("<<<", i):
                heredoc = True
                i += 1
            elif command.startswith("<<<", i):
                i += 2
        i += 1
    for mark in wanted - found.keys():
        found[mark] = _context(stack, heredoc)
    return found


def _open_expansion(command: str, i: int, stack: list[str]) -> int:
    """At a `$`: enter `$((`, `$(` or `${`; returns the index of the last character read."""
    if command.startswith("$((", i):
        stack += ["arith", "arith"]  # each ( is closed by its own )
        return i + 2
    if command.startswith("$(", i):
        stack.append("cmd")
        return i + 1
    if command.startswith("${", i):
        stack.append("param")
        return i + 1
    return i


def _context(stack: list[str], heredoc: bool) -> str:
    if heredoc:
        return _LABELS["heredoc"]
    if "backtick" in stack:
        return _LABELS["backtick"]
    frame = stack[-1]
    return WORD if frame in ("top", "cmd") else _LABELS[frame]
