"""Print a short summary of a `provision_test_data` run: rows moved, columns masked by
operation, checks, policy decisions and the audit chain (read through lockgate's own CLI).

    python summary.py RUN_ID
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOCKGATE = str(Path(sys.executable).with_name("lockgate"))


def lockgate(*args: str) -> str:
    done = subprocess.run([LOCKGATE, *args], capture_output=True, text=True, check=True)
    return done.stdout


def main(run_id: str) -> None:
    shown = json.loads(lockgate("show", run_id, "--json"))
    run = shown["run"]
    took = run["ended_at"] - run["started_at"]
    print(f"run {run_id}: {run['state']} in {took:.1f}s")
    staged = [d for d in shown["datasets"] if "staging.db" in d["uri"]]
    moved = ", ".join(f"{d['uri'].rsplit('#', 1)[-1]} {d['rows']:,}" for d in staged)
    print(f"  rows in the staging zone: {moved}")
    for task in ("mask_customers", "mask_orders"):  # each mask task logs what it did
        said = [ln for ln in lockgate("logs", run_id, task).splitlines() if "masked " in ln]
        if said:
            what = said[-1].split(" - ", 1)[-1]
            print(f"  {task}: {what.split(': ', 1)[-1]}")
    checks = shown["checks"]
    passed = sum(1 for c in checks if c["passed"])
    print(f"  checks: {passed} of {len(checks)} passed ({', '.join(c['name'] for c in checks)})")
    decisions = lockgate("policy", "decisions", "--run", run_id).splitlines()
    allowed = sum(1 for line in decisions if "  allow " in line)
    print(f"  policy gate: {allowed} write(s) allowed, {len(decisions) - allowed} refused")
    print(f"  {lockgate('audit', 'verify').strip().splitlines()[-1]}")


if __name__ == "__main__":
    main(sys.argv[1])
