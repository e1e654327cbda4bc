"""Commands of the scheduler: `scheduler`, `up`, `trigger`, `backfill`, `pause`, `unpause`,
`clear`. Registered on the main `app` when `cli.main` is imported."""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer

from lockgate.cli.main import (
    ConcurrencyOpt,
    DaskAddressOpt,
    DateOpt,
    ExecutorOpt,
    JsonOpt,
    ParamOpt,
    _console,
    _logical_date,
    _pairs,
    _plain,
    app,
    fail,
    pick_executor,
)
from lockgate.cli.server import CertOpt, HostOpt, KeyOpt, MetricsPortOpt, NoUiOpt, PortOpt
from lockgate.config import Project

PipelineArg = Annotated[
    str,
    typer.Argument(metavar="PIPELINE", help="A pipeline id (or its file in the pipelines folder)."),
]


def _log_to_stderr() -> None:
    """The daemon's log: one line per event, with the time. Only the scheduler's own logger:
    what tasks log (`lockgate.task.*`) goes to their attempt logs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    daemon = logging.getLogger("lockgate.scheduler")
    daemon.handlers[:] = [handler]
    daemon.setLevel(logging.INFO)
    daemon.propagate = False


def _ready_executor(project: Project, executor: str | None, concurrency: int | None) -> None:
    """A long-running process checks its executor once at start (e.g. that the Dask cluster
    answers and its workers run this version), rather than failing every run later."""
    from lockgate.execution import executor_for

    executor_for(executor, project, concurrency).prepare()


def _serve(executor: str | None, concurrency: int | None) -> None:
    from lockgate.scheduler.daemon import Scheduler

    project = Project.load()
    _ready_executor(project, executor, concurrency)
    _log_to_stderr()
    scheduler = Scheduler(project, executor=executor, concurrency=concurrency)
    scheduler.start()
    log = logging.getLogger("lockgate.scheduler")
    count = len(scheduler.registry.pipelines)
    log.info(
        "scheduler started: %d pipeline(s) from %s, database %s; Ctrl-C stops",
        count,
        project.pipelines_dir,
        scheduler.store.db.shown_url,
    )
    pressed = 0

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal pressed
        pressed += 1
        if pressed == 1:
            log.info("stopping: runs in progress are cancelled and queued again (again to force)")
            scheduler.stop()
        else:
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    scheduler.serve()
    log.info("scheduler stopped")


@app.command()
def scheduler(
    executor: ExecutorOpt = None,
    dask_address: DaskAddressOpt = None,
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Run the scheduler until stopped: scheduled, dataset-triggered and queued runs.

    It watches the pipelines folder (added, changed and removed files are picked up) and sleeps
    until the next run is due or something happens. On PostgreSQL several schedulers may share
    the database; on SQLite one runs at a time."""
    _serve(pick_executor(executor, dask_address), concurrency)


@app.command()
def up(
    executor: ExecutorOpt = None,
    dask_address: DaskAddressOpt = None,
    concurrency: ConcurrencyOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    cert: CertOpt = None,
    key: KeyOpt = None,
    no_ui: NoUiOpt = False,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Start lockgate for this project: create or upgrade its database, then serve the web UI
    and REST API and run the scheduler, in one process, until Ctrl-C or SIGTERM.

    Options as for `lockgate serve` and `lockgate scheduler`."""
    from lockgate.cli.main import upgrade_db
    from lockgate.cli.server import start_server
    from lockgate.store.db import safe_url

    project = Project.load()
    executor = pick_executor(executor, dask_address)
    _ready_executor(project, executor, concurrency)
    before, after = upgrade_db(project)
    if before != after:
        sys.stderr.write(
            f"{safe_url(project.db_url)}: upgraded from {before or 'empty'} to revision {after}\n"
        )
    start_server(
        with_scheduler=True,
        host=host,
        port=port,
        cert=cert,
        key=key,
        no_ui=no_ui,
        metrics_port=metrics_port,
        executor=executor,
        concurrency=concurrency,
        project=project,
    )


@app.command()
def trigger(
    pipeline: PipelineArg,
    param: ParamOpt = None,
    logical_date: DateOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run; exit 0 if it succeeded, else 1.")
    ] = False,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="With --wait: give up after this long (e.g. 10m); exit 1.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            help="Queue it on this lockgate server through its REST API (from CI), not in "
            "the project here.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            help="With --server: the API token. Default: $LOCKGATE_TOKEN, which is better "
            "(CI systems mask variables; a command line is visible to other processes).",
        ),
    ] = None,
    ca_cert: Annotated[
        str | None,
        typer.Option(
            "--ca-cert",
            metavar="FILE",
            help="With --server: the certificate (PEM) of the private CA that signed the server's.",
        ),
    ] = None,
    allow_insecure_http: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-http",
            help="With --server: allow a plain http:// URL to another machine, which sends the "
            "token in clear (refused otherwise; http:// to this machine needs no flag).",
        ),
    ] = False,
) -> None:
    """Queue a run for the scheduler (use `lockgate run` to run it here instead).

    With --server, on a lockgate server (for CI jobs). With --wait the exit code is the run's result: 0 it succeeded, 1 it failed, was cancelled or --timeout passed; 2 means it could not be queued or followed (connection, token, permission, params).
    """  # noqa: E501  (one paragraph: the help text is wrapped to the terminal)
    from lockgate import api

    if server is not None:
        _trigger_remote(
            pipeline,
            param,
            logical_date,
            wait,
            timeout,
            json_out,
            server,
            token,
            ca_cert,
            allow_insecure_http,
        )
    if token is not None or ca_cert is not None:
        fail("--token and --ca-cert go with --server URL")
    if allow_insecure_http:
        fail("--allow-insecure-http goes with --server URL")
    project = Project.load()
    limit = _wait_limit(timeout, wait)
    run_id = api.trigger(
        pipeline,
        params=_pairs(param, "--param"),
        from_text=True,
        logical_date=_logical_date(logical_date),
        project=project,
    )
    db = api.open_store(project)
    record = db.get_run(run_id)
    assert record is not None
    pipe_id = record["pipeline_id"]
    from lockgate.cli import audit as audit_cli

    audit_cli.record(
        project,
        "run.trigger",
        pipe_id,
        {"params": sorted(_pairs(param, "--param")), "logical_date": logical_date},
        run_id=run_id,
        store=db,
    )
    if not json_out:
        sys.stdout.write(f"queued run {run_id} of {pipe_id}\n")
        sys.stdout.flush()
    if not db.live_schedulers():
        sys.stderr.write(
            "note: no scheduler is running for this project; the run waits until one starts "
            "(`lockgate scheduler`), or run it here with `lockgate resume " + run_id + "`\n"
        )
    paused = db.pipeline_flags().get(pipe_id, {}).get("paused")
    if paused:
        sys.stderr.write(
            f"note: {pipe_id} is paused; the run waits until `lockgate unpause {pipe_id}`\n"
        )
    if not wait:
        if json_out:
            sys.stdout.write(json.dumps(_run_doc(record)) + "\n")
        return
    try:
        final = api.wait_for_run(run_id, project, timeout=limit)
    except TimeoutError:
        record = db.get_run(run_id) or record
        if json_out:
            sys.stdout.write(json.dumps(_run_doc(record)) + "\n")
        sys.stderr.write(
            f"run {run_id} did not finish within {timeout} (it is {record['state']}; it goes on)\n"
        )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        fail(f"stopped waiting; run {run_id} goes on (see `lockgate runs`)", 130)
    if json_out:
        sys.stdout.write(json.dumps(_run_doc(final)) + "\n")
    else:
        from lockgate.cli.progress import state_text

        took = (final["ended_at"] or 0) - (final["started_at"] or final["created_at"])
        error = f": {_plain(final['error'])}" if final["error"] else ""
        _console().print(f"run {run_id}: {state_text(final['state'])} in {took:.2f}s{error}")
        _console().print(f"logs: lockgate logs {run_id}")
    raise typer.Exit(0 if final["state"] == "success" else 1)


def _trigger_remote(
    pipeline: str,
    param: list[str] | None,
    logical_date: str | None,
    wait: bool,
    timeout: str | None,
    json_out: bool,
    server: str,
    token: str | None,
    ca_cert: str | None,
    allow_insecure_http: bool,
) -> NoReturn:
    """`trigger --server`: through the server's REST API (cli/remote.py); exits."""
    import os

    from lockgate.cli import remote

    limit = _wait_limit(timeout, wait)
    when = _logical_date(logical_date)
    code = remote.trigger(
        pipeline,
        server=server,
        token=token if token is not None else os.environ.get(remote.TOKEN_VARIABLE),
        ca_cert=ca_cert,
        params=_pairs(param, "--param"),
        logical_date=when.isoformat() if when is not None else None,
        wait=wait,
        timeout=limit,
        timeout_text=timeout,
        json_out=json_out,
        allow_insecure_http=allow_insecure_http,
    )
    raise typer.Exit(code)


def _wait_limit(timeout: str | None, wait: bool) -> float | None:
    """`--timeout` in seconds (it needs `--wait`); None without one."""
    from lockgate.model.durations import parse_duration

    if timeout is None:
        return None
    try:
        limit = parse_duration(timeout)
    except ValueError as exc:
        fail(f"--timeout: {exc}")
    if not wait:
        fail("--timeout needs --wait")
    return limit


def _run_doc(record: dict[str, Any]) -> dict[str, Any]:
    """A run as `runs --json` shows it."""

    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()

    return {
        "run_id": record["id"],
        "id": record["id"],
        "pipeline": record["pipeline_id"],
        "state": record["state"],
        "trigger": record["trigger"],
        "logical_date": iso(record["logical_date"] or record["created_at"]),
        "data_interval_start": iso(record["data_interval_start"]),
        "data_interval_end": iso(record["data_interval_end"]),
        "executor": record["executor"],
        "created_at": record["created_at"],
        "started_at": record["started_at"],
        "ended_at": record["ended_at"],
        "error": record["error"],
    }


def _range_date(text: str, option: str, tz: Any) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {text!r} is not a date; use YYYY-MM-DD or an ISO 8601 date-time")
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


@app.command()
def backfill(
    pipeline: PipelineArg,
    start: Annotated[
        str,
        typer.Option(
            "--start",
            metavar="DATE",
            help="First logical date (YYYY-MM-DD or date-time; the pipeline's time zone).",
        ),
    ],
    end: Annotated[
        str, typer.Option("--end", metavar="DATE", help="Last logical date (included).")
    ],
    parallel: Annotated[
        int, typer.Option("--parallel", "-n", min=1, max=256, help="Runs at once.")
    ] = 1,
    rerun_failed: Annotated[
        bool,
        typer.Option(
            "--rerun-failed", help="Re-run the failed tasks of intervals whose run failed."
        ),
    ] = False,
    executor: ExecutorOpt = None,
    dask_address: DaskAddressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run one run per data interval between two dates, here, `--parallel` at a time.

    Intervals that already succeeded are skipped; run it again after an interruption and it
    continues where it stopped."""
    from lockgate.cli.main import _load
    from lockgate.model.timetables import zone
    from lockgate.scheduler.backfill import Backfill

    project = Project.load()
    pipe = _load(pipeline, project)
    tz = zone(pipe.timezone)
    job = Backfill(
        pipe,
        _range_date(start, "--start", tz),
        _range_date(end, "--end", tz),
        project=project,
        parallel=parallel,
        rerun_failed=rerun_failed,
        executor=pick_executor(executor, dask_address),
    )
    todo = job.todo
    total = len(job.report.intervals)
    from lockgate.cli import audit as audit_cli

    audit_cli.record(
        project,
        "pipeline.backfill",
        pipe.id,
        {
            "start": start,
            "end": end,
            "intervals": total,
            "to_run": len(todo),
            "parallel": parallel,
            "rerun_failed": rerun_failed,
        },
    )
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, frame: Any) -> None:
        job.cancel()

    for sig in previous:
        signal.signal(sig, on_signal)
    console = _console()
    if not json_out:
        console.print(
            f"backfill of {pipe.id}: {total} interval(s), {len(todo)} to run, {parallel} at a time"
        )
    try:
        if json_out or not todo:
            job.run()
        else:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as bar:
                task = bar.add_task(pipe.id, total=len(todo))

                def done(item: Any) -> None:
                    bar.advance(task)
                    if item.state not in ("success", None):
                        bar.console.print(
                            f"  {item.run.start.isoformat()}: {item.state}"
                            + (f": {_plain(item.error)}" if item.error else "")
                        )

                job.run(on_done=done)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    report = job.report
    if json_out:
        doc = {
            "pipeline": pipe.id,
            "ok": report.ok,
            "intervals": [
                {
                    "logical_date": i.run.start.astimezone(UTC).isoformat(),
                    "data_interval_end": i.run.end.astimezone(UTC).isoformat(),
                    "run_id": i.run_id,
                    "action": i.action,
                    "state": i.state,
                    "error": i.error,
                }
                for i in report.intervals
            ],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items()))
        console.print(f"backfill of {pipe.id}: {counts}")
        if job.cancelled:
            console.print("interrupted: run the same command again to continue")
        elif any(i.state == "failed" for i in report.intervals) and not rerun_failed:
            console.print("some intervals failed: --rerun-failed re-runs their failed tasks")
        if any(i.action == "busy" for i in report.intervals):
            console.print(
                "some intervals are run by another process (see `lockgate runs`): run the "
                "backfill again once they are done"
            )
    raise typer.Exit(0 if report.ok else 1)


def _set_paused(pipeline: str, paused: bool) -> None:
    from lockgate import api
    from lockgate.cli import audit as audit_cli

    project = Project.load()
    pid, changed = api.set_paused(pipeline, paused, project=project)
    action = "pipeline.pause" if paused else "pipeline.unpause"
    audit_cli.record(project, action, pid, {"changed": changed})
    verb = "paused" if paused else "unpaused"
    sys.stdout.write(f"{pid} {verb}\n" if changed else f"{pid} was already {verb}\n")


@app.command()
def pause(pipeline: PipelineArg) -> None:
    """Stop starting runs of a pipeline; runs in progress finish.

    Scheduled and dataset-triggered runs are not created; queued runs wait."""
    _set_paused(pipeline, True)


@app.command()
def unpause(pipeline: PipelineArg) -> None:
    """Let a paused pipeline run again.

    Without catchup, only its latest due interval runs."""
    _set_paused(pipeline, False)


@app.command()
def clear(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="A finished run (id or unique prefix).")
    ],
    task: Annotated[
        str | None,
        typer.Argument(
            metavar="[TASK]",
            help="The task to run again (default: every task that did not succeed).",
        ),
    ] = None,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Also clear the tasks downstream of TASK.")
    ] = False,
) -> None:
    """Re-run tasks of a finished run (the failed ones, or TASK).

    The run is queued: a scheduler picks it up, or `lockgate resume RUN_ID` runs it here. The
    cleared tasks get their retries afresh; the others keep their results."""
    from lockgate import api

    project = Project.load()
    full_id, tasks = api.clear(run_id, task, downstream=downstream, project=project)
    from lockgate.cli import audit as audit_cli

    detail = {"tasks": tasks, "downstream": downstream}
    audit_cli.record(project, "run.clear", None, detail, run_id=full_id)
    sys.stdout.write(f"cleared {len(tasks)} task(s) of run {full_id}: {', '.join(tasks)}\n")
    if not api.open_store(project).live_schedulers():
        sys.stdout.write(
            f"no scheduler is running: start one (`lockgate scheduler`) or run `lockgate resume {full_id}`\n"
        )
