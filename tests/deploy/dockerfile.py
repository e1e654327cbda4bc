"""Reading deploy/'s files the way their tools do, for the tests: a Dockerfile's instructions
(line continuations, comments, ARG defaults, stages, exec and shell forms), compose's
`${VAR:-default}` interpolation and .dockerignore's patterns."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    keyword: str
    """Upper-cased: FROM, RUN, COPY, ..."""
    text: str
    """Everything after the keyword, continuations joined."""
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array form of CMD, ENTRYPOINT, RUN (HEALTHCHECK: after `CMD`), else None."""
        text = self.text
        if self.keyword == "HEALTHCHECK":
            _, _, text = text.partition(" CMD ")
        text = text.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value

    def options(self) -> dict[str, str]:
        """`--name=value` options before the arguments (COPY --from, HEALTHCHECK --interval)."""
        found = {}
        for word in shlex.split(self.text):
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = value
        return found

    def arguments(self) -> list[str]:
        """The words after the options (shell-split)."""
        words = shlex.split(self.text)
        while words and words[0].startswith("--"):
            words.pop(0)
        return words


@dataclass
class Stage:
    image: str
    """The base image with ARG defaults substituted."""
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, as its parser sees them: `\\` joins lines, comment
    lines (also inside a continued instruction) and blank lines are dropped."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, rest = " ".join(pending).partition(" ")
        found.append(Instruction(keyword.upper(), rest.strip(), start))
        pending = []
    assert not pending, f"the Dockerfile ends inside a continued instruction (line {start})"
    return found


def substitute(text: str, values: dict[str, str]) -> str:
    """`${NAME}` and `$NAME` replaced by their values (unknown names left as they are)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", one, text)


def parse(path: Path) -> Dockerfile:
    """The stages of the Dockerfile at `path`."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(path.read_text(encoding="utf-8")):
        if instruction.keyword == "ARG" and not stages:
            name, _, default = instruction.text.partition("=")
            global_args[name.strip()] = default.strip()
        elif instruction.keyword == "FROM":
            words = instruction.arguments()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(substitute(words[0], global_args), name))
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before any FROM"
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages)


def compose_default(text: str) -> str:
    """Compose's interpolation with an empty environment: `${VAR:-default}` -> default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", text)


def dockerignore_admits(patterns: list[str], path: str) -> bool:
    """Whether a build context path survives .dockerignore (the last matching pattern wins;
    `!` re-includes; a pattern matching a folder covers what is inside it)."""
    admitted = True
    parts = path.strip("/").split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if _matches(body, prefix):
                admitted = negate
                break
    return admitted


def _matches(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        tail = pattern[3:]
        pieces = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(pieces[i:]), tail) for i in range(len(pieces)))
    if "/" not in pattern and "/" in path:
        return False
    return fnmatch.fnmatchcase(path, pattern)
