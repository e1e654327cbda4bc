"""The scheduler daemon end to end on SQLite: real project folders, pipeline files written while
it runs, runs and task attempts read back from the store, tasks that append to files."""

from __future__ import annotations

import logging
import math
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lockgate import api
from lockgate.config import Project
from lockgate.errors import ConfigError
from lockgate.scheduler.daemon import Scheduler

from .conftest import LONG_AGO, Lab, echo, iso, wait_until, whole_seconds_ago


def _logicals(runs: list[dict[str, Any]]) -> list[float]:
    return [r["logical_date"] for r in runs]


def _ids(runs: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in runs]


# -- 1. interval schedules ------------------------------------------------------------------------
DATES = "{{ run_id }}|{{ ds }}|{{ ts }}|{{ data_interval_end }}"


def test_interval_runs_cover_each_interval_and_tasks_see_their_dates(lab: Lab) -> None:
    for pid, zone in (("tick", None), ("tokyo_tick", "Asia/Tokyo")):
        lab.write_yaml(
            pid,
            schedule="every 1s",
            start_date=LONG_AGO,
            **({"timezone": zone} if zone else {}),
            tasks={"t": {"shell": echo(lab.out(f"{pid}.txt"), DATES)}},
        )
    lab.start()
    for pid, zone in (("tick", UTC), ("tokyo_tick", ZoneInfo("Asia/Tokyo"))):
        runs = wait_until(
            lambda pid=pid: (done := lab.finished(pid)) and len(done) >= 3 and done[:3],
            what=f"3 runs of {pid}",
        )
        seen = {line.split("|")[0]: line.split("|")[1:] for line in lab.lines(f"{pid}.txt")}
        for n, run in enumerate(runs):
            logical, end = run["logical_date"], run["data_interval_end"]
            assert run["trigger"] == "schedule"
            assert logical == math.floor(logical)  # aligned on the start date's whole seconds
            assert run["data_interval_start"] == logical
            assert end == logical + 1
            # created at its due time (the end of its interval), not before; the first one is
            # the interval due most recently when the scheduler started, up to 1 s before
            assert end <= run["created_at"] < end + (1.5 if n == 0 else 1.0), run
            # the task sees its run's dates, in the pipeline's time zone
            moment = datetime.fromtimestamp(logical, zone)
            assert seen[run["id"]] == [
                moment.strftime("%Y-%m-%d"),
                moment.isoformat(),
                str(datetime.fromtimestamp(end, zone)),
            ]


# -- 2. catchup -----------------------------------------------------------------------------------
def test_catchup_creates_one_run_per_missed_interval_then_keeps_up(lab: Lab) -> None:
    start = whole_seconds_ago(4)
    lab.write_yaml(
        "caught",
        schedule="every 1s",
        start_date=iso(start),
        catchup=True,
        tasks={"t": {"shell": "true"}},
    )
    begun = time.time()
    lab.start()
    # the 4 missed intervals at once, then one more at each due time
    runs = wait_until(
        lambda: (r := lab.runs("caught")) and r[-1]["logical_date"] >= start + 6 and r,
        what="runs up to the 7th interval",
    )
    assert _logicals(runs) == [start + i for i in range(len(runs))]  # no gap, no duplicate
    assert all(r["trigger"] == "schedule" for r in runs)
    assert all(r["data_interval_end"] == r["logical_date"] + 1 for r in runs)
    # the missed ones at once, when the scheduler started
    created = [r["created_at"] for r in runs[:4]]
    assert max(created) - min(created) < 0.1 and min(created) < begun + 2.0, created
    wait_until(
        lambda: all(r["state"] == "success" for r in lab.runs("caught")[:7]),
        what="the first 7 runs to succeed",
    )


def test_without_catchup_only_the_latest_interval_then_one_per_due_time(lab: Lab) -> None:
    lab.write(
        "latest.py",
        """
        from datetime import datetime

        from lockgate import pipeline, shell

        with pipeline("latest", schedule="every 1s", start_date=datetime(2024, 1, 1)):
            shell("t", "true")
        """,
    )
    begun = time.time()
    lab.start()
    runs = wait_until(lambda: len(r := lab.runs("latest")) >= 4 and r, what="4 runs")
    first = runs[0]
    # not the intervals since 2024: the one due most recently when the scheduler started
    assert first["data_interval_end"] <= first["created_at"] < first["data_interval_end"] + 1.5
    assert first["logical_date"] >= math.floor(begun) - 1
    assert _logicals(runs) == [first["logical_date"] + i for i in range(len(runs))]
    assert all(r["trigger"] == "schedule" for r in runs)


def test_a_restarted_scheduler_creates_no_interval_twice_and_once_runs_once(lab: Lab) -> None:
    lab.write_yaml(
        "every", schedule="every 1s", start_date=LONG_AGO, tasks={"t": {"shell": "true"}}
    )
    lab.write_yaml(
        "one_time", schedule="@once", start_date=LONG_AGO, tasks={"t": {"shell": "true"}}
    )
    first = lab.start()
    wait_until(lambda: len(lab.finished("every")) >= 2, what="2 runs")
    wait_until(lambda: lab.finished("one_time"), what="the @once run")
    first.stop()
    before = _ids(lab.runs("every"))
    lab.start()
    wait_until(lambda: len(lab.runs("every")) >= len(before) + 2, what="2 more runs")
    runs = lab.runs("every")
    assert _ids(runs)[: len(before)] == before
    assert len({r["logical_date"] for r in runs}) == len(runs), "an interval ran twice"
    assert [r["logical_date"] for r in lab.runs("one_time")] == [
        datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    ]


# -- 3. max_active_runs ---------------------------------------------------------------------------
def test_max_active_runs_one_runs_one_at_a_time_and_queued_runs_wait(lab: Lab) -> None:
    start = whole_seconds_ago(3)
    lab.write_yaml(
        "serial",
        schedule="every 1s",
        start_date=iso(start),
        end_date=iso(start + 3),  # runs starting at start .. start+3: 4 runs
        catchup=True,
        max_active_runs=1,
        tasks={"slow": {"shell": "sleep 0.6"}},
    )
    lab.start()
    runs = wait_until(
        lambda: len(done := lab.finished("serial")) == 4 and done, timeout=15, what="4 runs"
    )
    assert _logicals(lab.runs("serial")) == [start + i for i in range(4)]
    attempts = sorted(
        (a for r in runs for a in lab.store.attempts(r["id"])), key=lambda a: a["started_at"]
    )
    assert len(attempts) == 4
    for before, after in zip(attempts, attempts[1:], strict=False):
        assert before["ended_at"] <= after["started_at"], (before, after)
    by_start = sorted(runs, key=lambda r: r["started_at"])
    assert by_start == runs  # oldest logical date first
    for before, after in zip(by_start, by_start[1:], strict=False):
        assert before["ended_at"] <= after["started_at"]
        # it was queued while the previous run ran, and waited for it
        assert after["created_at"] < before["ended_at"]


# -- 4. pause -------------------------------------------------------------------------------------
def test_paused_pipelines_get_no_runs_and_unpausing_does_not_catch_up(lab: Lab) -> None:
    for pid in ("pausable", "ticker"):
        lab.write_yaml(
            pid, schedule="every 1s", start_date=LONG_AGO, tasks={"t": {"shell": "true"}}
        )
    lab.start()
    wait_until(lambda: lab.runs("pausable"), what="a first run")
    assert api.set_paused("pausable", True, project=lab.project) == ("pausable", True)
    ticks = len(lab.runs("ticker"))
    # once the scheduler has created a run after the pause, it knows of the pause
    wait_until(lambda: len(lab.runs("ticker")) > ticks, what="a tick after the pause")
    before = _ids(lab.runs("pausable"))
    ticks = len(lab.runs("ticker"))
    wait_until(lambda: len(lab.runs("ticker")) >= ticks + 3, what="3 more ticks")
    assert _ids(lab.runs("pausable")) == before, "a paused pipeline got a run"
    # a run triggered by hand waits in the queue while the pipeline is paused
    manual = lab.trigger("pausable")
    ticks = len(lab.runs("ticker"))
    wait_until(lambda: len(lab.runs("ticker")) >= ticks + 2, what="2 more ticks")
    record = lab.store.get_run(manual)
    assert (record["state"], record["owner"]) == ("queued", None), record

    unpaused = time.time()
    assert api.set_paused("pausable", False, project=lab.project) == ("pausable", True)
    assert lab.wait_run(manual)["state"] == "success"
    new = wait_until(
        lambda: [
            r for r in lab.runs("pausable") if r["id"] not in before and r["trigger"] == "schedule"
        ],
        what="a scheduled run after unpausing",
    )
    # the latest interval only, none of the ones missed while paused
    assert new[0]["logical_date"] >= math.floor(unpaused) - 1, (new, unpaused)
    assert _logicals(new) == [new[0]["logical_date"] + i for i in range(len(new))]


# -- 5. manual triggers ---------------------------------------------------------------------------
def test_a_trigger_wakes_the_scheduler_and_wait_for_run_returns_the_final_record(
    lab: Lab,
) -> None:
    out = lab.out("manual.txt")
    lab.write_yaml("by_hand", tasks={"t": {"shell": echo(out, "{{ run_id }}")}})
    lab.write_yaml("broken_by_hand", tasks={"t": {"shell": "exit 3"}})
    lab.start()
    # a scheduler with nothing due sleeps until its periodic check (every 2 s): a trigger
    # wakes it, so each run starts at once
    for _ in range(5):
        run_id = lab.trigger("by_hand")
        record = lab.wait_run(run_id)
        assert record["id"] == run_id and record["state"] == "success"
        assert record["trigger"] == "manual" and record["ended_at"] is not None
        assert record["started_at"] - record["created_at"] < 1.0, record
        assert lab.lines("manual.txt")[-1] == run_id
    failed = lab.wait_run(lab.trigger("broken_by_hand"))
    assert failed["state"] == "failed", failed
    assert failed["started_at"] - failed["created_at"] < 1.0, failed
    assert [t["state"] for t in lab.store.task_states(failed["id"])] == ["failed"]


def test_a_trigger_passes_params_and_a_logical_date_to_the_run(lab: Lab) -> None:
    out = lab.out("params.txt")
    lab.write_yaml(
        "greet",
        params={"who": "world"},
        tasks={"t": {"shell": echo(out, "{{ params.who }}", "{{ ds }}")}},
    )
    lab.start()
    first = lab.wait_run(lab.trigger("greet"))
    day = datetime(2025, 3, 1, 12, tzinfo=UTC)
    second = lab.wait_run(lab.trigger("greet", params={"who": "lockgate"}, logical_date=day))
    assert first["state"] == second["state"] == "success"
    assert second["logical_date"] == day.timestamp()
    today = datetime.fromtimestamp(first["logical_date"], UTC).strftime("%Y-%m-%d")
    assert lab.lines("params.txt") == [f"world {today}", "lockgate 2025-03-01"]


def test_a_cleared_run_is_run_again_by_the_scheduler(lab: Lab) -> None:
    marker, out = lab.out("fixed"), lab.out("cleared.txt")
    lab.write_yaml(
        "flaky",
        tasks={
            "first": {"shell": echo(out, "first")},
            "second": {"shell": f"test -e {marker} && echo second >> {out}", "depends_on": "first"},
        },
    )
    lab.start()
    run_id = lab.trigger("flaky")
    assert lab.wait_run(run_id)["state"] == "failed"
    marker.touch()
    assert api.clear(run_id, project=lab.project) == (run_id, ["second"])
    record = lab.wait_run(run_id)
    assert record["state"] == "success", record
    assert lab.lines("cleared.txt") == ["first", "second"]  # the task that succeeded kept
    assert [(a["task_id"], a["attempt"], a["state"]) for a in lab.store.attempts(run_id)] == [
        ("first", 1, "success"),
        ("second", 1, "failed"),
        ("second", 2, "success"),
    ]


# -- 6. dataset triggers --------------------------------------------------------------------------
def _settle(lab: Lab) -> None:
    """Return once the scheduler has gone through a whole pass started after this call: the
    second probe run is claimed by a pass that began after the first one was claimed."""
    for _ in range(2):
        assert lab.wait_run(lab.trigger("probe"))["state"] == "success"


def test_a_dataset_pipeline_runs_once_after_each_of_its_datasets_was_updated(lab: Lab) -> None:
    uri_a, uri_b = "s3://lake/a.parquet", "file:///data/b.csv"
    lab.write(
        "make_a.py",
        f"""
        from lockgate import pipeline, shell

        with pipeline("make_a"):
            shell("write", "true", produces=[{uri_a!r}])
        """,
    )
    lab.write_yaml("make_b", tasks={"write": {"shell": "true", "produces": [uri_b]}})
    lab.write_yaml("make_b_badly", tasks={"write": {"shell": "exit 1", "produces": [uri_b]}})
    lab.write_yaml(
        "make_b_never",
        tasks={"write": {"shell": "exit 99", "skip_exit_codes": [99], "produces": [uri_b]}},
    )
    lab.write_yaml("probe", tasks={"t": {"shell": "true"}})
    out = lab.out("consumed.txt")
    lab.write_yaml(
        "consumer", schedule=[uri_a, uri_b], tasks={"t": {"shell": echo(out, "{{ run_id }}")}}
    )
    lab.start()

    def produce(pipeline_id: str, state: str = "success") -> None:
        assert lab.wait_run(lab.trigger(pipeline_id))["state"] == state

    produce("make_a")
    _settle(lab)
    assert lab.runs("consumer") == [], "one of two datasets updated: no run yet"
    produce("make_b_badly", "failed")
    produce("make_b_never")  # its task was skipped
    _settle(lab)
    assert lab.runs("consumer") == [], "a failed or skipped task updates no dataset"

    produce("make_b")
    wait_until(lambda: lab.finished("consumer"), what="the consumer's run")
    _settle(lab)
    runs = lab.runs("consumer")
    assert len(runs) == 1 and runs[0]["trigger"] == "dataset", runs
    assert lab.lines("consumed.txt") == [runs[0]["id"]]

    # the next round: a updated twice, b once -> one more run
    produce("make_a")
    produce("make_a")
    _settle(lab)
    assert len(lab.runs("consumer")) == 1
    produce("make_b")
    wait_until(lambda: len(lab.finished("consumer")) == 2, what="the second consumer run")
    _settle(lab)
    runs = lab.runs("consumer")
    assert len(runs) == 2 and all(r["trigger"] == "dataset" for r in runs), runs
    assert lab.lines("consumed.txt") == [
        r["id"] for r in sorted(runs, key=lambda r: r["created_at"])
    ]


# -- 7. pipeline files changing under a running daemon --------------------------------------------
def _python_pipeline(out: Path, version: str, schedule: str) -> str:
    command = echo(out, version, "{{ run_id }}")
    return f"""
        from datetime import datetime

        from lockgate import pipeline, shell, template

        with pipeline("edited", schedule={schedule!r}, start_date=datetime(2024, 1, 1)):
            shell("t", template({command!r}))
        """


def _versions(lab: Lab) -> dict[str, str]:
    """The version word each run of `edited` wrote, by run id."""
    return {line.split()[1]: line.split()[0] for line in lab.lines("edited.txt")}


def test_pipeline_files_added_changed_and_removed_while_the_daemon_runs(lab: Lab) -> None:
    lab.write_yaml(
        "ticker", schedule="every 1s", start_date=LONG_AGO, tasks={"t": {"shell": "true"}}
    )
    served = lab.start()
    registry = served.scheduler.registry
    out = lab.out("edited.txt")
    assert "edited" not in registry.pipelines

    # added: its runs start
    lab.write("edited.py", _python_pipeline(out, "v1", "every 1s"))
    wait_until(lambda: "v1" in _versions(lab).values(), what="a run of the added file")

    # a task's command changed: the runs after the change use the new one
    lab.write("edited.py", _python_pipeline(out, "v2", "every 1s"))
    wait_until(
        lambda: list(_versions(lab).values()).count("v2") >= 2, what="2 runs of the new command"
    )
    words = [line.split()[0] for line in lab.lines("edited.txt")]
    assert words == sorted(words), f"an old definition ran after the new one: {words}"
    by_word: dict[str, set[int]] = {}
    for run in lab.runs("edited"):
        word = _versions(lab).get(run["id"])
        if word is not None:
            by_word.setdefault(word, set()).add(run["version_id"])
    assert len(by_word["v1"]) == len(by_word["v2"]) == 1 and by_word["v1"] != by_word["v2"]

    # the schedule changed: the next runs cover the new intervals
    changed = time.time()
    lab.write("edited.py", _python_pipeline(out, "v3", "every 500ms"))
    wait_until(
        lambda: list(_versions(lab).values()).count("v3") >= 2, what="2 runs on the new schedule"
    )
    runs = lab.runs("edited")
    new = [r for r in runs if _versions(lab).get(r["id"]) == "v3"]
    assert all(r["data_interval_end"] - r["logical_date"] == 0.5 for r in new), new
    assert all(r["data_interval_end"] - r["logical_date"] == 1 for r in runs if r not in new)
    assert all(r["created_at"] > changed for r in new)
    assert len({r["logical_date"] for r in runs}) == len(runs)

    # removed: no new runs (the file's removal is seen once the registry drops it)
    (lab.pipelines / "edited.py").unlink()
    wait_until(lambda: "edited" not in registry.pipelines, what="the removal to be seen")
    before = _ids(lab.runs("edited"))
    ticks = len(lab.runs("ticker"))
    wait_until(lambda: len(lab.runs("ticker")) >= ticks + 2, what="2 more ticks")
    assert _ids(lab.runs("edited")) == before
    assert served.alive


def test_a_file_written_just_after_start_is_loaded(lab: Lab) -> None:
    # the first load used to run before the folder watcher's first scan: a file written in
    # between was in that scan, so it was never reported as a change and never loaded (seen
    # in about 1 start in 60 on a busy 2-core machine)
    for i in range(15):
        served = lab.start()
        lab.write_yaml(f"late_{i}", tasks={"t": {"shell": "true"}})
        wait_until(
            lambda i=i, loaded=served.scheduler.registry: f"late_{i}" in loaded.pipelines,
            timeout=5,
            what=f"late_{i} to be loaded",
        )
        served.stop()


def test_a_broken_file_keeps_its_last_good_definition_and_the_daemon_runs_on(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    out = lab.out("edited.txt")
    path = lab.write("edited.py", _python_pipeline(out, "v1", "every 1s"))
    served = lab.start()
    wait_until(lambda: "v1" in _versions(lab).values(), what="a first run")

    lab.write(
        "edited.py", "from lockgate import pipeline\n\nwith pipeline('edited'  # unfinished\n"
    )
    wait_until(lambda: str(path) in served.scheduler.registry.errors, what="the error to be seen")
    seen = len(lab.runs("edited"))
    wait_until(lambda: len(lab.finished("edited")) >= seen + 2, what="2 more runs")
    assert set(_versions(lab).values()) == {"v1"}
    assert served.alive
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "edited.py" in r.getMessage()]
    assert errors and "keeping the last good definition of edited" in errors[0].getMessage()

    # fixed (with a new command): the next runs use it
    lab.write("edited.py", _python_pipeline(out, "v2", "every 1s"))
    wait_until(lambda: "v2" in _versions(lab).values(), what="a run of the fixed file")
    assert str(path) not in served.scheduler.registry.errors
    assert served.alive


# -- 8. run_timeout -------------------------------------------------------------------------------
def test_run_timeout_fails_the_run_quickly_naming_the_timeout(lab: Lab) -> None:
    pid_file = lab.out("nap.pid")
    lab.write_yaml(
        "too_slow",
        run_timeout="1s",
        tasks={"nap": {"shell": f"echo $$ > {pid_file}; exec sleep 30"}},
    )
    lab.start()
    record = lab.wait_run(lab.trigger("too_slow"), timeout=15)
    assert record["state"] == "failed", record
    assert record["error"] == "the run timed out after 1s (run_timeout)", record
    assert record["ended_at"] - record["started_at"] < 3, record
    [task] = lab.store.task_states(record["id"])
    assert task["state"] == "cancelled" and "run_timeout" in task["error"], task
    # the task's process was stopped, not left sleeping
    pid = int(pid_file.read_text())
    wait_until(lambda: not _running(pid), timeout=5, what=f"process {pid} to end")


def _running(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# -- 9. crash safety ------------------------------------------------------------------------------
SLOW_TASK = """
    import time
    from datetime import UTC, datetime

    from lockgate import pipeline, task

    OUT = {out!r}


    @task
    def slow(ctx):
        with open(OUT, "a") as fh:
            fh.write(f"start {{ctx.run_id}} {{ctx.attempt}}\\n")
        time.sleep(1.0)
        with open(OUT, "a") as fh:
            fh.write(f"end {{ctx.run_id}} {{ctx.attempt}}\\n")


    with pipeline(
        "crashy",
        schedule="every 1s",
        start_date=datetime.fromtimestamp({start}, UTC),
        catchup=True,
    ):
        slow()
    """


def test_a_killed_schedulers_runs_are_adopted_and_each_interval_runs_once(lab: Lab) -> None:
    start = whole_seconds_ago(2)
    lab.write("crashy.py", SLOW_TASK.format(out=str(lab.out("slow.txt")), start=start))
    proc = lab.spawn()
    first = wait_until(
        lambda: next((line for line in lab.lines("slow.txt") if line.startswith("start")), None),
        what="the subprocess scheduler to start a run",
        details=lambda: lab.log_of(proc),
    )
    run_id = first.split()[1]
    assert first == f"start {run_id} 1"
    # killed once the attempt is recorded (events are committed in batches every few ms: an
    # attempt killed before its batch is not known, and simply runs again as attempt 1)
    wait_until(
        lambda: (
            [(a["attempt"], a["state"]) for a in lab.store.attempts(run_id)] == [(1, "running")]
        ),
        what="the attempt to be recorded",
    )
    running = lab.store.get_run(run_id)
    assert running["state"] == "running" and f":{proc.pid}:" in running["owner"], running
    lab.kill(proc)
    killed = time.time()
    # opening the store finds the dead process's runs: they are queued again for the next
    # scheduler, and their running attempts are lost
    interrupted = {
        r["id"]
        for r in lab.runs("crashy")
        if any(a["state"] == "lost" for a in lab.store.attempts(r["id"]))
    }
    assert run_id in interrupted
    record = lab.store.get_run(run_id)
    assert (record["state"], record["owner"]) == ("queued", None), record

    lab.start()

    def caught_up() -> list[dict[str, Any]] | None:
        runs = lab.runs("crashy")
        done = [r for r in runs if r["logical_date"] <= killed]
        if runs[-1]["logical_date"] >= killed + 1 and all(r["state"] == "success" for r in done):
            return runs
        return None

    runs = wait_until(caught_up, timeout=15, what="the adopted runs and the missed ones")
    # every interval since the start date exactly once, across the two schedulers
    assert _logicals(runs) == [start + i for i in range(len(runs))]
    assert all(r["owner"] == lab.store.owner for r in runs if r["id"] in interrupted)
    lines = lab.lines("slow.txt")
    for run in runs:
        attempts = [(a["attempt"], a["state"]) for a in lab.store.attempts(run["id"])]
        if run["id"] in interrupted:  # its task was running in the killed process
            assert attempts == [(1, "lost"), (2, "success")], (run, attempts)
            assert f"end {run['id']} 1" not in lines
            assert f"end {run['id']} 2" in lines
        elif run["logical_date"] <= killed:
            assert attempts == [(1, "success")], (run, attempts)


def test_a_second_scheduler_on_sqlite_refuses_to_start_until_the_first_is_dead(lab: Lab) -> None:
    lab.write_yaml("by_hand", tasks={"t": {"shell": "true"}})
    proc = lab.spawn()
    wait_until(
        lambda: any(f":{proc.pid}:" in s["owner"] for s in lab.store.live_schedulers()),
        what="the subprocess scheduler to register",
        details=lambda: lab.log_of(proc),
    )
    second = Scheduler(Project.load(lab.root))
    with pytest.raises(ConfigError) as info:
        second.start()
    message = str(info.value)
    assert f":{proc.pid})" in message and "another scheduler" in message, message
    assert "SQLite" in message

    lab.kill(proc)
    lab.start()
    assert lab.wait_run(lab.trigger("by_hand"))["state"] == "success"


def test_a_second_scheduler_in_the_same_process_refuses_to_start_too(lab: Lab) -> None:
    lab.write_yaml("by_hand", tasks={"t": {"shell": "true"}})
    first = lab.start()
    second = Scheduler(Project.load(lab.root))
    with pytest.raises(ConfigError) as info:
        second.start()
    host_pid = ":".join(lab.store.owner.split(":")[:2])
    assert str(info.value) == (
        f"another scheduler ({host_pid}, this process) is running on this SQLite database; "
        "stop it first, or use PostgreSQL to run several schedulers"
    )
    # the first one still registered, and still woken by triggers
    assert [s["owner"] for s in lab.store.live_schedulers()] == [lab.store.owner]
    assert lab.wait_run(lab.trigger("by_hand"))["state"] == "success"
    first.stop()
    lab.start()
    assert lab.wait_run(lab.trigger("by_hand"))["state"] == "success"


# -- 10. graceful stop ----------------------------------------------------------------------------
def test_stopping_requeues_a_running_run_and_the_next_scheduler_finishes_it(lab: Lab) -> None:
    marker, out = lab.out("marker"), lab.out("done.txt")
    # the first attempt sleeps; the next one finds the marker and finishes at once
    command = f"if [ -e {marker} ]; then echo done >> {out}; else touch {marker}; sleep 30; fi"
    lab.write_yaml("stoppable", tasks={"t": {"shell": command}})
    served = lab.start()
    run_id = lab.trigger("stoppable")
    wait_until(marker.exists, what="the task to start")
    stopping = time.monotonic()
    served.stop()
    assert time.monotonic() - stopping < 5
    record = lab.store.get_run(run_id)
    assert (record["state"], record["owner"]) == ("queued", None), record

    lab.start()
    record = lab.wait_run(run_id)
    assert record["state"] == "success", record
    assert lab.lines("done.txt") == ["done"]
    assert [(a["attempt"], a["state"]) for a in lab.store.attempts(run_id)] == [
        (1, "cancelled"),
        (2, "success"),
    ]


def test_sigterm_stops_a_scheduler_process_and_requeues_its_run(lab: Lab) -> None:
    marker, out = lab.out("marker"), lab.out("done.txt")
    command = f"if [ -e {marker} ]; then echo done >> {out}; else touch {marker}; sleep 30; fi"
    lab.write_yaml("stoppable", tasks={"t": {"shell": command}})
    proc = lab.spawn()
    wait_until(
        lambda: any(f":{proc.pid}:" in s["owner"] for s in lab.store.live_schedulers()),
        what="the subprocess scheduler to register",
        details=lambda: lab.log_of(proc),
    )
    run_id = lab.trigger("stoppable")
    wait_until(marker.exists, what="the task to start", details=lambda: lab.log_of(proc))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, lab.log_of(proc)
    record = lab.store.get_run(run_id)
    assert (record["state"], record["owner"]) == ("queued", None), record
    assert lab.store.live_schedulers() == []

    lab.start()
    assert lab.wait_run(run_id)["state"] == "success"
    assert lab.lines("done.txt") == ["done"]


def test_the_daemon_survives_a_database_failure_and_carries_on(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    lab.write_yaml("ticking", schedule="every 1s", tasks={"t": {"shell": "true"}})
    served = lab.start()
    wait_until(lambda: lab.finished("ticking"), what="a first run")
    # a real failure of the metadata database: the table every pass reads disappears
    with sqlite3.connect(lab.root / ".lockgate" / "lockgate.db") as con:
        con.execute("ALTER TABLE pipelines RENAME TO pipelines_away")
    with caplog.at_level(logging.ERROR, logger="lockgate.scheduler"):
        wait_until(
            lambda: "the metadata database failed" in caplog.text, what="the failure to be logged"
        )
    with sqlite3.connect(lab.root / ".lockgate" / "lockgate.db") as con:
        con.execute("ALTER TABLE pipelines_away RENAME TO pipelines")
    before = len(lab.finished("ticking"))
    wait_until(lambda: len(lab.finished("ticking")) >= before + 2, timeout=15, what="new runs")
    assert served.alive
