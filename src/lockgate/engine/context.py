"""What a running task can see: its ids, the run's params, a logger, secrets, and `skip()`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

ALERT_TITLE_MAX = 200
ALERT_TEXT_MAX = 4000
_task_root = logging.getLogger("lockgate.task")
_task_root.setLevel(logging.INFO)


class Skip(Exception):
    """Raise (or call `ctx.skip()`) inside a task to end it as skipped instead of failed."""


@dataclass
class TaskContext:
    """Passed to a Python task that declares a `ctx` parameter, and to callbacks."""

    run_id: str
    pipeline_id: str
    task_id: str
    attempt: int
    params: Mapping[str, Any] = field(default_factory=dict)
    log_path: str | None = None
    error: str | None = None
    """For callbacks and compensation tasks: the error of the attempt that failed."""
    failed_task: str | None = None
    """For a compensation task: the id of the task whose failure it compensates."""
    logical_date: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    timeout: float | None = None
    """Seconds this attempt may run (None: no limit)."""

    @property
    def log(self) -> logging.Logger:
        """A logger whose records go to this attempt's log file."""
        return logging.getLogger(f"lockgate.task.{self.task_id}")

    def secret(self, name: str) -> str:
        """The value of secret `name` from the project's secret backends (lockgate.toml
        `[secrets]`; default: `$LOCKGATE_SECRET_<NAME>`, then `lockgate secrets set`). The
        read is audited by name and the value is redacted from this run's logs, results,
        errors and events. SecretError when no backend holds it."""
        from lockgate.secrets import SecretError, get_secret

        try:
            return get_secret(name)
        except SecretError as exc:  # the task's traceback ends here, not in the backends
            raise SecretError(str(exc)) from None

    def alert(self, title: str, text: str = "") -> bool:
        """Raise an alert about what this task found (anomalies, a report's findings): it is
        recorded with the run (a `TaskAlert` event, redacted like everything else) and sent
        to the notification rules `on = ["task_alert"]`; the task goes on. `title` is one line
        (at most 200 characters), `text` the evidence (at most 4,000). False outside a run."""
        from lockgate.model import facts

        title = " ".join(str(title).split())[:ALERT_TITLE_MAX]
        if not title:
            raise ValueError("an alert needs a title: what happened, in one line")
        text = str(text)
        if len(text) > ALERT_TEXT_MAX:
            text = text[: ALERT_TEXT_MAX - 30].rstrip() + "\n[... the rest was cut]"
        return facts.report(facts.TASK_ALERT, {"title": title, "text": text})

    def skip(self, reason: str = "skipped by the task") -> NoReturn:
        raise Skip(reason)
