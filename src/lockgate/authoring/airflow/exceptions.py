"""Airflow's exceptions that DAG files raise inside tasks (`airflow.exceptions`)."""

from __future__ import annotations


class AirflowException(Exception):
    """The base of Airflow's exceptions: raised in a task, the attempt fails."""


class AirflowSkipException(AirflowException):
    """Raised in a task: the task ends skipped (lockgate's `Skip`)."""


class AirflowFailException(AirflowException):
    """Raised in a task: the attempt fails (lockgate still retries it if retries are left)."""


class AirflowTaskTimeout(AirflowException):
    """Kept for `except` clauses; lockgate reports timeouts itself."""
