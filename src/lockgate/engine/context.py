"""What a running task can see: its ids, the run's params, a logger, secrets, and `skip()`."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

PUBLISHED_TYPES = {
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".csv": "text/csv",
    ".json": "application/json",
    ".txt": "text/plain",
}
"""What `ctx.publish` accepts, by extension, and the media type the web UI serves it as."""
PUBLISHED_MAX_BYTES = 20 << 20
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

    def publish(self, path: str | os.PathLike[str], title: str | None = None) -> bool:
        """Publish a file this task wrote (a report, a chart) for people to read on the run's
        page of the web UI: Markdown, HTML, SVG, PNG, CSV, JSON or text, inside the project
        folder, at most 20 MB. The UI serves it only while it is unchanged, sandboxed (no
        script runs). False outside a run; ValueError naming what is wrong."""
        from lockgate.model import facts
        from lockgate.model.workplace import project_root

        root = Path(project_root() or os.getcwd()).resolve()
        file = (root / path).resolve()
        if not file.is_relative_to(root):
            raise ValueError(f"{path}: only files inside the project folder {root} are published")
        media = PUBLISHED_TYPES.get(file.suffix.lower())
        if media is None:
            kinds = ", ".join(sorted(PUBLISHED_TYPES))
            raise ValueError(f"{path}: publish a file of one of these kinds: {kinds}")
        if not file.is_file():
            raise ValueError(f"{path}: no such file (write it before publishing it)")
        data = file.read_bytes()
        if len(data) > PUBLISHED_MAX_BYTES:
            raise ValueError(f"{path}: {len(data):,} bytes, more than the 20 MB published at most")
        shown = " ".join(str(title or file.name).split())[:ALERT_TITLE_MAX]
        return facts.report(
            facts.REPORT_PUBLISHED,
            {
                "path": str(file),
                "title": shown,
                "media_type": media,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )

    def skip(self, reason: str = "skipped by the task") -> NoReturn:
        raise Skip(reason)
