"""Notifications: Slack, Microsoft Teams, e-mail (SMTP) and signed HTTP webhooks, sent when a run
fails or succeeds, a task is retried, a run or task misses its SLA, the policy gate refuses a
write, or data-quality checks fail; configured by lockgate.toml's `[notify]` table
(docs/notifications.md).

`subscriber_for` gives a run its notifier (or None: runs without notifications pay nothing);
`config.py` checks the table, `watch.py` turns events into notices, `messages.py` renders them,
`delivery.py` delivers and records them in a thread of the run's own, `sending.py` and the
channel modules (`slack`, `teams`, `smtp`, `webhook`) send one message once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockgate.notify.config import EVENTS, KINDS, load_config

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.model.pipeline import Pipeline
    from lockgate.notify.delivery import Notifier
    from lockgate.store.store import Store

__all__ = ["EVENTS", "KINDS", "load_config", "subscriber_for"]


def subscriber_for(project: Project, pipeline: Pipeline, store: Store | None) -> Notifier | None:
    """The notifier of one run of `pipeline` (subscribe it to the run's bus, `close()` it when
    the run ends), recording deliveries in `store` when given; None when lockgate.toml has no
    `[notify]` table or no rule matches the pipeline. A bad `[notify]` table is a ConfigError,
    raised here, before the run starts."""
    config = load_config(project)
    if config is None:
        return None
    rules = tuple(r for r in config.rules if r.matches(pipeline))
    if not rules:
        return None
    wanted = {e for r in rules for e in r.on}
    if wanted == {"sla_missed"}:
        run_deadline, task_deadlines = config.deadlines(pipeline)
        if run_deadline is None and not task_deadlines:
            return None  # nothing could ever be sent
    from lockgate.notify.delivery import Notifier

    return Notifier(config, rules, project, pipeline, store)
