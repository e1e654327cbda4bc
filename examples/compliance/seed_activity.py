"""Create a day of realistic activity for the compliance job to report on, in this project
(or the one given): deterministic data, real runs, real gate decisions, real failed logins.

    python seed_activity.py [PROJECT_DIR]

1. data/production.db: 50 customers with names, e-mails and countries (seeded, always the same).
2. The project's pipelines as they were set up a week ago (10:00 local on a weekday), and
   one change: pipelines/nightly_export.py's KEEP_DAYS went from 90 to 30 at 02:00 local last
   night. The metadata store takes a version's time from the clock when it first sees it
   (`Store.record_version` has no time argument), so this script records each version through
   the store and then sets its `created_at` to the given time (one UPDATE of
   `pipeline_versions`); the `pipeline.version` audit records keep the real time.
3. Runs: nightly_export succeeds; load_staging copies raw e-mails to staging, the policy gate
   refuses the write and the run fails.
4. Failed logins through lockgate's own login code (`lockgate.auth.accounts.login`, what the web
   UI and the API call): three wrong passwords for user `analyst` and one attempt with a user name
   nobody has (a password typed into the name field: it must never show up in an alert).

Running it again adds runs and failed logins; the versions stay the same.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
from datetime import datetime, time, timedelta
from pathlib import Path

FIRST = ["Ada", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonas"]
LAST = ["Meyer", "Dubois", "Rossi", "Novak", "Larsen", "Silva", "Kowalski", "Byrne"]
COUNTRIES = ["DE", "FR", "IT", "CZ", "DK", "PT", "PL", "IE"]
ANALYST_PASSWORD = "Correct-Horse-Battery-42"
MISTYPED_NAME = "Hunter2-Summer-Secret!"  # a password typed into the user name field
OLD, NEW = "KEEP_DAYS = 90  # ", "KEEP_DAYS = 30  # "


def make_production(path: Path, customers: int = 50, seed: int = 11) -> int:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, "
        "country TEXT, signup_date TEXT)"
    )
    for i in range(1, customers + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        day = datetime(2024, 1, 1) + timedelta(days=rng.randrange(700))
        db.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
            (i, f"{first} {last}", f"{first}.{last}{i}@example.com".lower(),
             rng.choice(COUNTRIES), day.date().isoformat()),
        )  # fmt: skip
    db.commit()
    db.close()
    return customers


def last_0200(tz) -> datetime:
    """02:00 local last night (today's if it is past 02:00 now)."""
    now = datetime.now(tz)
    day = now.date() if now.hour >= 2 else now.date() - timedelta(days=1)
    return datetime.combine(day, time(2, 0), tz)


def record_at(store, pipe, when: datetime) -> int:
    """Record `pipe`'s version through the store, first seen at `when` (see the docstring)."""
    version = store.record_version(pipe)
    with store.db.transaction() as cur:
        cur.execute(
            store.db.sql("UPDATE pipeline_versions SET created_at = ? WHERE id = ?"),
            (when.timestamp(), version),
        )
    return version


def main(root: Path) -> None:
    os.chdir(root)
    from lockgate import Project, api
    from lockgate.auth.accounts import AuthError, create_user, login

    project = Project.load(root)
    store = api.open_store(project)
    rows = make_production(root / "data" / "production.db")
    print(f"data/production.db: {rows} customers")

    tz = api.scheduled_pipeline("compliance_daily", project).tz
    setup_day = datetime.now(tz).date() - timedelta(days=7)
    while setup_day.weekday() >= 5:  # a working day
        setup_day -= timedelta(days=1)
    setup = datetime.combine(setup_day, time(10, 0), tz)
    changed = last_0200(tz)
    export = root / "pipelines" / "nightly_export.py"
    current = export.read_text()
    if NEW not in current:
        sys.exit(f"{export}: expected the line starting {NEW!r}")
    try:
        export.write_text(current.replace(NEW, OLD))  # the file as it was a week ago
        for name in ("compliance_daily", "load_staging", "nightly_export"):
            v = record_at(store, api.scheduled_pipeline(name, project), setup)
            print(f"version {v} of {name}: set up at {setup:%Y-%m-%d %H:%M %Z}")
    finally:
        export.write_text(current)
    v = record_at(store, api.scheduled_pipeline("nightly_export", project), changed)
    print(f"version {v} of nightly_export: KEEP_DAYS 90 -> 30 at {changed:%Y-%m-%d %H:%M %Z}")

    for name in ("nightly_export", "load_staging"):
        result = api.run(api.scheduled_pipeline(name, project), project=project)
        print(f"run {result.run_id} of {name}: {result.state.value}")

    if store.user("analyst") is None:
        create_user(store, "analyst", "viewer", actor="seed", password=ANALYST_PASSWORD)
    for name, password in [("analyst", "wrong-1"), ("analyst", "wrong-2"), ("analyst", "wrong-3")]:
        try:
            login(store, name, password)
        except AuthError:
            print(f"failed login for user {name}")
    try:
        login(store, MISTYPED_NAME, "x")
    except AuthError:
        print("failed login for an unknown user name")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent).resolve())
