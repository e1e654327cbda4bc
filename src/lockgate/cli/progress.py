"""Showing a run as it happens: a live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from lockgate.engine import events as ev
from lockgate.engine.events import Event
from lockgate.model.facts import POLICY_DECISION, QUALITY_CHECKED

_SHOWN = {
    ev.TASK_SUCCEEDED: "ok",
    ev.TASK_FAILED: "FAILED",
    ev.TASK_RETRYING: "retry",
    ev.TASK_SKIPPED: "skipped",
    ev.TASK_UPSTREAM_FAILED: "upstream_failed",
    ev.TASK_CANCELLED: "cancelled",
}
_STYLE = {
    "success": "green",
    "failed": "red",
    "upstream_failed": "red",
    "running": "cyan",
    "queued": "blue",
    "up_for_retry": "yellow",
    "skipped": "bright_black",
    "cancelled": "magenta",
    "lost": "red",
    "pending": "bright_black",
}


def check_warning(e: Event) -> str | None:
    """`accepted_values(country) failed on 338 row(s)` for a failed warn-severity check; the
    warnings and waived rules of a write the policy gate let through."""
    data = e.data or {}
    if e.kind == POLICY_DECISION:
        notes = [
            f"policy {v.get('rule')} (warn): {v.get('message')}"
            for v in data.get("violations") or ()
        ]
        notes += [
            f"policy {v.get('rule')} waived by {v.get('waiver')}: column {v.get('column')!r}"
            for v in data.get("waived") or ()
        ]
        return "; ".join(notes) or None
    if e.kind != QUALITY_CHECKED or data.get("passed") or data.get("severity") != "warn":
        return None
    failing = data.get("failing_rows")
    rows = f" on {failing} row(s)" if isinstance(failing, int) and failing else ""
    return f"{data.get('name') or data.get('check')} failed{rows}"


def state_text(state: str) -> str:
    """A state with its colour as rich markup."""
    return f"[{_STYLE.get(state, 'white')}]{state}[/]"


class PlainProgress:
    """One line per finished task, retry or failure: readable in CI logs."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._started: dict[str, float] = {}
        self._warnings: dict[str, list[str]] = {}
        self._closed = False

    def __call__(self, e: Event) -> None:
        if e.kind == ev.TASK_STARTED and e.task_id:
            self._started[e.task_id] = e.ts
            self._warnings.pop(e.task_id, None)
            return
        warning = check_warning(e)
        if warning is not None and e.task_id:
            self._warnings.setdefault(e.task_id, []).append(warning)
            return
        if e.kind == ev.CALLBACK_FAILED and e.data:
            self._write(
                f"warning: callback {e.data.get('callback')} of task {e.task_id} failed: "
                f"{e.data.get('error')} (traceback in its log)\n"
            )
            return
        label = _SHOWN.get(e.kind)
        if label is None or e.task_id is None:
            return
        took = e.ts - self._started.get(e.task_id, e.ts)
        clock = time.strftime("%H:%M:%S", time.localtime(e.ts))
        detail = ""
        data = e.data or {}
        if data.get("error"):
            detail = f"  {data['error']}"
        if e.kind == ev.TASK_RETRYING:
            detail += f"  (retry in {data.get('retry_in_s', 0):.1f}s)"
        if e.kind == ev.TASK_SKIPPED and data.get("reason"):
            detail = f"  {data['reason']}"
        warnings = self._warnings.pop(e.task_id, [])
        if warnings and e.kind == ev.TASK_SUCCEEDED:
            detail += f"  {len(warnings)} warning(s): {'; '.join(warnings)}"
        attempt = f" #{e.attempt}" if e.attempt > 1 else ""
        timing = f" {took:.2f}s" if e.attempt else ""
        self._write(f"{clock} {label:<15} {e.task_id}{attempt}{timing}{detail}\n")

    def _write(self, line: str) -> None:
        if self._closed:
            return
        try:
            self.out.write(line)
            self.out.flush()
        except BrokenPipeError:  # `lockgate run ... | head`: stop printing, keep running
            self._closed = True

    def stop(self) -> None:
        pass


class LiveProgress:
    """A live table of task states, redrawn a few times a second from the event stream."""

    MAX_ROWS = 18

    def __init__(self, pipeline_id: str, task_ids: list[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.pipeline_id = pipeline_id
        self.states: dict[str, str] = dict.fromkeys(task_ids, "pending")
        self.attempts: dict[str, int] = dict.fromkeys(task_ids, 0)
        self.errors: dict[str, str] = {}
        self.warnings: list[str] = []
        self.started = time.time()
        self._lock = threading.Lock()
        self.console = Console(file=sys.__stdout__)
        self.live = Live(
            console=self.console, refresh_per_second=8, transient=True, get_renderable=self._render
        )
        self.live.start()

    def __call__(self, e: Event) -> None:
        warning = check_warning(e)
        if warning is not None:
            with self._lock:
                self.warnings.append(f"warning: task {e.task_id}: {warning}")
            return
        if e.task_id is None or e.state is None:
            return
        with self._lock:
            self.states[e.task_id] = e.state
            if e.attempt:  # (task ids are not known in advance when resuming)
                self.attempts[e.task_id] = max(self.attempts.get(e.task_id, 0), e.attempt)
            if e.data and e.data.get("error"):
                self.errors[e.task_id] = str(e.data["error"])

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            states = dict(self.states)
        counts: dict[str, int] = {}
        for s in states.values():
            counts[s] = counts.get(s, 0) + 1
        title = f"{self.pipeline_id} · {time.time() - self.started:.1f}s · " + " ".join(
            f"{state_text(k)} {v}" for k, v in sorted(counts.items())
        )
        table = Table(box=None, pad_edge=False)
        table.add_column("task")
        table.add_column("state")
        table.add_column("try", justify="right")
        rows = [t for t, s in states.items() if s not in ("pending", "success", "skipped")]
        rows += [t for t, s in states.items() if s in ("success", "skipped")][-4:]
        for tid in rows[: self.MAX_ROWS]:
            table.add_row(tid, state_text(states[tid]), str(self.attempts.get(tid) or ""))
        return Group(Text.from_markup(title), table)

    def stop(self) -> None:
        self.live.stop()
        for line in self.warnings:  # failed warn-severity checks: the run went on
            self.console.print(line, style="yellow", markup=False, highlight=False)
