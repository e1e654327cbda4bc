#!/usr/bin/env bash
# `make demo`: run the seed pipeline end to end and show the run, its tasks and their logs.
set -euo pipefail
cd "$(dirname "$0")/.."
LG=.venv/bin/lockgate
echo "== lockgate run examples/simple_pipeline.py"
$LG run examples/simple_pipeline.py
echo
echo "== lockgate runs --limit 3"
$LG runs --limit 3
run_id=$($LG runs --limit 1 --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
echo
echo "== lockgate logs $run_id"
$LG logs "$run_id"
echo
echo "State is in ./.lockgate (SQLite). Try: $LG show examples/simple_pipeline.py"
