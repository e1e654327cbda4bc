"""What a check found, and turning failed `error` checks into one exception."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockgate.errors import DataError
from lockgate.quality.checks import KINDS

MAX_LISTED = 10
"""Failed checks named in a `QualityCheckFailed` message; more are counted."""


@dataclass(frozen=True)
class CheckResult:
    """One check over one dataset. `failing_rows` is exact; `examples` holds up to 5 failing
    rows as JSON data, classified (raw) values shown as `***`."""

    name: str
    check: str
    severity: str
    passed: bool
    failing_rows: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    dataset: str = ""

    @property
    def blocking(self) -> bool:
        """A failed `error` check: the task fails and nothing is written."""
        return not self.passed and self.severity == "error"

    def summary(self) -> str:
        """`not_null(email) 3 row(s)`; `row_count: 0 row(s); expected at least 1` for checks
        that fail the table rather than rows (or could not run)."""
        if self.failing_rows or (self.passed and KINDS[self.check].row_level):
            return f"{self.name} {self.failing_rows} row(s)"
        return f"{self.name}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """The `QualityChecked` fact: JSON data only."""
        return {
            "dataset": self.dataset,
            "name": self.name,
            "check": self.check,
            "severity": self.severity,
            "passed": self.passed,
            "failing_rows": self.failing_rows,
            "examples": list(self.examples),
            "message": self.message,
        }


class QualityCheckFailed(DataError):
    """`error`-severity checks failed: the task fails and its dataset is not written.
    `results` holds every result of the run of checks, `failed` the blocking ones."""

    def __init__(self, results: Sequence[CheckResult]) -> None:
        self.results = list(results)
        self.failed = [r for r in self.results if r.blocking]
        names = sorted({r.dataset for r in self.failed if r.dataset})
        self.dataset = ", ".join(names) or "the data"
        listed = ", ".join(r.summary() for r in self.failed[:MAX_LISTED])
        more = len(self.failed) - MAX_LISTED
        if more > 0:
            listed += f" and {more} more"
        super().__init__(
            f"{len(self.failed)} data-quality check(s) failed on {self.dataset}: {listed}"
        )


def enforce(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Raise `QualityCheckFailed` when an `error` check failed; else return the failed `warn`
    checks (recorded, and the run goes on)."""
    kept = list(results)
    if any(r.blocking for r in kept):
        raise QualityCheckFailed(kept)
    return [r for r in kept if not r.passed]
