"""`lockgate show RUN`: one run's tasks, the datasets it wrote (with their classification tags
and inputs) and its data-quality results."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

from lockgate.cli.main import _console, _plain
from lockgate.cli.progress import state_text
from lockgate.cli.scheduling import _run_doc

MAX_EXAMPLES = 3


def run_doc(store: Any, run: dict[str, Any]) -> dict[str, Any]:
    """Everything `show RUN --json` prints."""
    run_id = run["id"]
    tasks = sorted(store.task_states(run_id), key=lambda t: t["updated_at"])
    tables = _tables(store.results(run_id))
    docs = []
    for t in tasks:
        doc = {k: t[k] for k in ("task_id", "state", "attempts", "error")}
        if t["task_id"] in tables:
            doc["table"] = tables[t["task_id"]]
        docs.append(doc)
    return {
        "run": _run_doc(run),
        "tasks": docs,
        "datasets": store.datasets_written(run_id),
        "checks": [
            {**{k: v for k, v in c.items() if k != "run_id"}, "passed": bool(c["passed"])}
            for c in store.quality_results(run_id)
        ],
    }


def _tables(results: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The tasks whose result is a table in the artifact store: its reference (uri, rows,
    columns, frame)."""
    from lockgate.io.artifacts import REF_KEY, is_ref

    out = {}
    for task_id, text in results.items():
        if REF_KEY in text:
            with contextlib.suppress(ValueError):
                value = json.loads(text)
                if is_ref(value):
                    out[task_id] = value
    return out


def _tags(schema: list[dict[str, Any]] | None) -> str:
    tagged = [f"{f['name']}={f['tag']}" for f in schema or () if f.get("tag")]
    return ", ".join(tagged) or "-"


def _check_text(check: dict[str, Any]) -> str:
    if check["passed"]:
        return "passed"
    failing = check.get("failing_rows")
    text = f"failed ({failing} row(s))" if failing is not None else "failed"
    return f"[red]{text}[/]" if check["severity"] == "error" else f"[yellow]{text}[/]"


def show_run(store: Any, run: dict[str, Any], json_out: bool) -> None:
    doc = run_doc(store, run)
    if json_out:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    from rich.table import Table

    console = _console()
    took = (
        f"  took {run['ended_at'] - run['started_at']:.2f}s"
        if run["ended_at"] and run["started_at"]
        else ""
    )
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created_at"]))
    console.print(
        f"[bold]run {run['id']}[/]  pipeline {run['pipeline_id']}  "
        f"{state_text(run['state'])}  created {created}{took}"
    )
    if run["error"]:
        console.print(_plain(f"error: {run['error']}"))
    tasks = Table(box=None, pad_edge=False, title="tasks", title_justify="left")
    for col in ("task", "state", "tries", "error or table"):
        tasks.add_column(col, overflow="fold")
    for t in doc["tasks"]:
        ref = t.get("table")
        shown = f"table: {ref['rows']} row(s) ({ref['frame']}) {ref['uri']}" if ref else t["error"]
        tasks.add_row(
            t["task_id"], state_text(t["state"]), str(t["attempts"] or 0), _plain(shown or "")
        )
    console.print(tasks)
    if doc["datasets"]:
        table = Table(box=None, pad_edge=False, title="datasets written", title_justify="left")
        for col in ("task", "dataset", "rows", "mode", "classified columns", "from"):
            table.add_column(col, overflow="fold")
        for d in doc["datasets"]:
            table.add_row(
                d["task_id"],
                _plain(str(d.get("uri"))),
                str(d.get("rows", "-")),
                str(d.get("mode") or "-"),
                _plain(_tags(d.get("schema"))),
                _plain(", ".join(d.get("inputs") or ()) or "-"),
            )
        console.print(table)
    if doc["checks"]:
        table = Table(box=None, pad_edge=False, title="data-quality checks", title_justify="left")
        for col in ("task", "check", "dataset", "severity", "result", "examples"):
            table.add_column(col, overflow="fold")
        for c in doc["checks"]:
            detail = c.get("detail") or {}
            examples = detail.get("examples") or []
            shown = "; ".join(json.dumps(e, default=str) for e in examples[:MAX_EXAMPLES])
            table.add_row(
                c["task_id"],
                _plain(c["name"]),
                _plain(c["dataset"] or "-"),
                c["severity"],
                _check_text(c),
                _plain(shown or detail.get("message") or ""),
            )
        console.print(table)
