"""Data-quality checks over Arrow data, run by DuckDB: define them from mappings
(`parse_checks`), run them (`run_checks`), fail the task on `error` checks (`enforce`).

    results = run_checks(table, [{"not_null": ["id"]}, {"unique": "id"}], dataset=uri)
    enforce(results)  # QualityCheckFailed when an error-severity check failed

Importing this package is light: pyarrow and DuckDB load when checks run.
"""

from __future__ import annotations

from lockgate.quality.checks import KINDS, SEVERITIES, Check
from lockgate.quality.evaluate import run_checks
from lockgate.quality.parse import CheckDefinitionError, parse_checks
from lockgate.quality.results import CheckResult, QualityCheckFailed, enforce

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Check",
    "CheckDefinitionError",
    "CheckResult",
    "QualityCheckFailed",
    "enforce",
    "parse_checks",
    "run_checks",
]
