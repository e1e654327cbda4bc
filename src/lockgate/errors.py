"""The one exception hierarchy of lockgate: every user-facing error is a `LockgateError`."""

from __future__ import annotations

from collections.abc import Iterable


def describe(exc: BaseException) -> str:
    """`Type: first line of the message`, for one-line errors about a library's exception."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def did_you_mean(word: object, choices: Iterable[str], known: str = "use one of") -> str:
    """`; did you mean 'x'?` for the closest choice, else `; use one of a, b, c`."""
    import difflib

    options = list(choices)
    hint = difflib.get_close_matches(str(word), options, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else f"; {known} {', '.join(options)}"


class LockgateError(Exception):
    """Base of every error lockgate raises on purpose; its message is one sentence for a user."""


class DefinitionError(LockgateError):
    """A pipeline definition is invalid (cycle, duplicate or unknown id, bad setting)."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.detail = message
        super().__init__(f"{location(file, line, column)}{message}")


def location(file: str | None, line: int | None, column: int | None = None) -> str:
    """`file:line:column: ` (as much of it as is known), the prefix of a definition error."""
    if not file:
        return ""
    if not line:
        return f"{file}: "
    return f"{file}:{line}:{column}: " if column else f"{file}:{line}: "


class TemplateError(LockgateError):
    """A template cannot be rendered: it names the task and the expression."""


class TemplateSecurityError(TemplateError):
    """A template tried to reach something the sandbox forbids (Python internals)."""


class ConfigError(LockgateError):
    """The project configuration, a command-line option or a run parameter is wrong."""


class NotFoundError(LockgateError):
    """A pipeline, run, task or log asked for does not exist."""


class StoreError(LockgateError):
    """The metadata database cannot be opened, migrated or written."""


class SecretError(LockgateError):
    """A secret cannot be read: missing (the message names the backends tried), malformed,
    or its backend is unreachable or refuses access."""


class DataError(LockgateError):
    """A dataset cannot be read or written: the message names the dataset and the cause."""


class PrivacyError(LockgateError):
    """A privacy operation cannot run: unknown column or operation, bad rule, unreadable input."""


class KeyringError(PrivacyError):
    """A key is missing, unreadable or refused (never names the key material, only its id)."""


class PolicyViolationError(DataError):
    """The policy gate refused a dataset write: nothing was written. The message names the
    dataset, its zone, the columns, their classes and the rules, and how to proceed."""
