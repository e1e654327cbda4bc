"""One run's events turned into notices: a failed or succeeded run (with the first failed task
and its error), a retried task, a refused write, the failed data-quality checks of a task
attempt (one notice per attempt, not per check), and SLA deadlines: a run or task still running
past its deadline gives one `sla_missed`, unless it finished in time.

Runs in the notifier's own thread, never in the engine's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lockgate.model import events as ev
from lockgate.model import facts
from lockgate.notify.messages import Notice, first_line

ATTEMPT_ENDS = frozenset(
    {ev.TASK_SUCCEEDED, ev.TASK_FAILED, ev.TASK_RETRYING, ev.TASK_LOST, ev.TASK_CANCELLED}
)
"""Events that end a task attempt (its facts came before)."""
TASK_ENDS = frozenset(
    {
        ev.TASK_SUCCEEDED,
        ev.TASK_FAILED,
        ev.TASK_SKIPPED,
        ev.TASK_UPSTREAM_FAILED,
        ev.TASK_CANCELLED,
    }
)
"""Events after which a task runs no more in this run (a retried or lost one will)."""
RUN_ENDS = frozenset({ev.RUN_FINISHED, ev.RUN_REQUEUED})
MAX_LISTED = 20
"""Checks or violations kept in one notice's details."""


@dataclass
class Deadline:
    """An SLA deadline of the run (`task_id` None) or of one task."""

    task_id: str | None
    seconds: float
    started_at: float
    """When the run or task started (epoch seconds)."""
    due: float
    """When it is missed (monotonic seconds)."""


def human_duration(seconds: float) -> str:
    """`0.4s`, `42s`, `1h30m`: short and exact enough for a message."""
    from lockgate.model.durations import format_duration

    if seconds < 10:
        return f"{seconds:.1f}s".replace(".0s", "s")
    return format_duration(float(round(seconds)))


class Watch:
    """The notices of one run of `pipeline_id`, from its events in order."""

    def __init__(
        self,
        pipeline_id: str,
        wanted: frozenset[str],
        run_url: Callable[[str | None], str | None],
        run_deadline: float | None = None,
        task_deadlines: Mapping[str, float] | None = None,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.wanted = wanted
        self.run_url = run_url
        self.run_deadline = run_deadline if "sla_missed" in wanted else None
        self.task_deadlines = dict(task_deadlines or {}) if "sla_missed" in wanted else {}
        self.deadlines: dict[str | None, Deadline] = {}
        self._watched: set[str | None] = set()
        """Deadlines set once in this run (a retried task keeps its first start)."""
        self._failed: dict[str, str | None] = {}
        self._checks: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._run_id: str | None = None
        self._ended = False

    # -- events -----------------------------------------------------------------------------
    def on_event(self, event: ev.Event) -> list[Notice]:
        """The notices `event` completes (often none)."""
        self._run_id = self._run_id or event.run_id
        kind, task = event.kind, event.task_id
        data = event.data if isinstance(event.data, dict) else {}
        found: list[Notice] = []
        if kind == ev.RUN_STARTED:
            if self.run_deadline is not None and None not in self._watched:
                self._watch(None, self.run_deadline, event.ts)
        elif kind in RUN_ENDS:
            found += self._flush_checks()
            self.deadlines.clear()
            self._ended = True
            if kind == ev.RUN_FINISHED:
                found += self._run_finished(event, data)
        elif task is None:
            return found
        elif kind == ev.TASK_STARTED:
            seconds = self.task_deadlines.get(task)
            if seconds is not None and task not in self._watched and not self._ended:
                self._watch(task, seconds, event.ts)
        elif kind == facts.QUALITY_CHECKED:
            if data.get("passed") is False:
                self._checks.setdefault((task, event.attempt), []).append(_check(data))
        elif kind == facts.POLICY_VIOLATION and "policy_violation" in self.wanted:
            found.append(self._violation(event, data))
        elif kind == facts.TASK_ALERT and "task_alert" in self.wanted:
            found.append(
                self._notice(
                    "task_alert",
                    event.run_id,
                    task_id=task,
                    state="alert",
                    error=first_line(str(data.get("title") or "")),
                    details={"title": data.get("title"), "text": data.get("text") or ""},
                )
            )
        if task is not None and kind in ATTEMPT_ENDS:
            found += self._flush_checks((task, event.attempt))
            if kind == ev.TASK_RETRYING and "task_retrying" in self.wanted:
                found.append(self._retrying(event, data))
            if kind == ev.TASK_FAILED:
                self._failed.setdefault(task, first_line(str(data.get("error") or "")))
        if task is not None and kind in TASK_ENDS:
            self.deadlines.pop(task, None)
        return found

    def _notice(self, event: str, run_id: str | None, **fields: Any) -> Notice:
        return Notice(event, self.pipeline_id, run_id, url=self.run_url(run_id), **fields)

    def _run_finished(self, event: ev.Event, data: dict[str, Any]) -> list[Notice]:
        state = event.state or "failed"
        duration = data.get("duration_s")
        details: dict[str, Any] = {}
        if isinstance(duration, int | float):
            details = {
                "duration_s": round(float(duration), 3),
                "duration": human_duration(duration),
            }
        if state == "success" and "run_succeeded" in self.wanted:
            return [self._notice("run_succeeded", event.run_id, state=state, details=details)]
        if state not in ("failed", "lost") or "run_failed" not in self.wanted:
            return []  # a cancelled run is someone's decision, not a failure to report
        failed = [str(t) for t in data.get("failed_tasks") or []] or list(self._failed)
        task = next(iter(self._failed), None) or (failed[0] if failed else None)
        error = first_line(str(data.get("error") or "")) or (
            self._failed.get(task) if task is not None else None
        )
        details["failed_tasks"] = failed[:MAX_LISTED]
        return [
            self._notice(
                "run_failed", event.run_id, task_id=task, state=state, error=error, details=details
            )
        ]

    def _retrying(self, event: ev.Event, data: dict[str, Any]) -> Notice:
        delay = data.get("retry_in_s")
        details: dict[str, Any] = {"attempt": event.attempt}
        if isinstance(delay, int | float) and delay > 0:
            details.update(retry_in_s=round(float(delay), 3), retry_in=human_duration(delay))
        return self._notice(
            "task_retrying",
            event.run_id,
            task_id=event.task_id,
            state=event.state,
            error=first_line(str(data.get("error") or "")),
            details=details,
        )

    def _violation(self, event: ev.Event, data: dict[str, Any]) -> Notice:
        violations = [
            {
                k: v.get(k)
                for k in ("rule", "column", "tag", "class", "form", "zone", "severity", "message")
            }
            for v in data.get("violations") or []
            if isinstance(v, dict)
        ]
        first = violations[0] if violations else {}
        return self._notice(
            "policy_violation",
            event.run_id,
            task_id=event.task_id,
            state="denied",
            error=first_line(str(first.get("message") or first.get("rule") or "")),
            details={
                "dataset": data.get("dataset"),
                "zone": data.get("zone"),
                "source_zones": data.get("source_zones"),
                "violations": violations[:MAX_LISTED],
                "count": len(violations),
            },
        )

    def _flush_checks(self, key: tuple[str, int] | None = None) -> list[Notice]:
        keys = [key] if key is not None else list(self._checks)
        found = []
        for slot in keys:
            checks = self._checks.pop(slot, None)
            if not checks or "quality_failed" not in self.wanted:
                continue
            found.append(
                self._notice(
                    "quality_failed",
                    self._run_id,
                    task_id=slot[0],
                    state="failed",
                    error=first_line(str(checks[0].get("message") or checks[0].get("name"))),
                    details={
                        "checks": checks[:MAX_LISTED],
                        "count": len(checks),
                        "attempt": slot[1],
                    },
                )
            )
        return found

    # -- deadlines --------------------------------------------------------------------------
    def _watch(self, task: str | None, seconds: float, started_at: float) -> None:
        self._watched.add(task)
        due = time.monotonic() + max(0.0, started_at + seconds - time.time())
        self.deadlines[task] = Deadline(task, seconds, started_at, due)

    def next_due(self) -> float | None:
        """When the next deadline is missed (monotonic), or None."""
        return min((d.due for d in self.deadlines.values()), default=None)

    def missed(self, now: float) -> list[Notice]:
        """`sla_missed` notices for the deadlines past at `now` (each once)."""
        found = []
        for key, deadline in list(self.deadlines.items()):
            if deadline.due > now:
                continue
            del self.deadlines[key]
            from datetime import UTC, datetime

            found.append(
                self._notice(
                    "sla_missed",
                    self._run_id,
                    task_id=deadline.task_id,
                    state="running",
                    details={
                        "scope": "run" if deadline.task_id is None else "task",
                        "deadline_s": deadline.seconds,
                        "deadline": human_duration(deadline.seconds),
                        "started_at": datetime.fromtimestamp(deadline.started_at, UTC).isoformat(
                            timespec="seconds"
                        ),
                    },
                )
            )
        return found


def _check(data: dict[str, Any]) -> dict[str, Any]:
    """A failed check as a notice lists it (never its example rows)."""
    return {
        "name": data.get("name") or data.get("check"),
        "check": data.get("check"),
        "dataset": data.get("dataset"),
        "severity": data.get("severity"),
        "failing_rows": data.get("failing_rows"),
        "message": first_line(str(data.get("message") or "")),
    }
