"""What the notification tests share: a project with a `[notify]` table, pipelines to notify
about, and events published the way the engine publishes them."""

from __future__ import annotations

import textwrap
import time
from typing import Any

from lockgate import pipeline, shell
from lockgate.config import Project
from lockgate.engine.events import Event, EventBus
from lockgate.model.pipeline import Pipeline
from lockgate.notify import subscriber_for
from lockgate.notify.delivery import Notifier
from lockgate.store.store import Store

FAST = "retries = 3\nbackoff_seconds = 0.01\ntimeout = 5\nclose_wait_seconds = 20\n"
"""Delivery settings that keep retrying tests quick."""


def configure(project: Project, toml: str) -> Project:
    """`project` with `toml` as its lockgate.toml."""
    (project.root / "lockgate.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    return Project.load(project.root)


def webhook_toml(url: str, *, on: str = '["run_failed"]', extra: str = "", rule: str = "") -> str:
    """A project notifying a webhook channel `hook` at `url`."""
    return (
        f"[notify]\n{FAST}{extra}\n"
        f'[notify.channels.hook]\ntype = "webhook"\nurl = "{url}"\n\n'
        f'[[notify.rules]]\non = {on}\nchannels = ["hook"]\n{rule}'
    )


def make_pipeline(
    pid: str = "nightly", tasks: tuple[str, ...] = ("load",), **options: Any
) -> Pipeline:
    with pipeline(pid, **options) as p:
        for tid in tasks:
            shell(tid, "true")
    built: Pipeline = p.pipeline
    return built


def notifier(
    project: Project, pipe: Pipeline | None = None, store: Store | None = None
) -> Notifier:
    found = subscriber_for(project, pipe or make_pipeline(), store)
    assert found is not None
    return found


def publish(
    bus_or_notifier: Any,
    kind: str,
    *,
    run_id: str = "20261124T031400-9f2c1a0b3e4d",
    task_id: str | None = None,
    attempt: int = 0,
    state: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Publish one event as the engine would (to a bus, or straight to a subscriber)."""
    event = Event(kind, run_id, time.time(), task_id, attempt, state, data)
    if isinstance(bus_or_notifier, EventBus):
        bus_or_notifier.publish(event)
    else:
        bus_or_notifier(event)
