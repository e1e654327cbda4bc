#!/usr/bin/env bash
# `make demo`: run the seed pipeline end to end and show the run, its tasks and their logs.
set -euo pipefail
cd "$(dirname "$0")/.."
LG=.venv/bin/lockgate
$LG db upgrade >/dev/null  # state kept from an older version's demo is migrated, not refused
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
echo "== the seed tutorial's Airflow DAG file, unchanged (no Airflow installed): lockgate run examples/airflow/simple_pipeline.py"
$LG run examples/airflow/simple_pipeline.py
echo
echo "== a YAML pipeline with typed params and templates"
$LG run examples/yaml/daily_report.yaml --logical-date 2024-01-31 -p region=us
report_run=$($LG runs --limit 1 --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
$LG logs "$report_run" publish
echo
echo "State is in ./.lockgate (SQLite). Try: $LG show examples/yaml/daily_report.yaml"
