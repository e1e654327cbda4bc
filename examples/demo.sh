#!/usr/bin/env bash
# `make demo`: secure test-data provisioning. A deterministic "production" shop database goes
# to the staging zone scanned, masked, checked and through the policy gate, with lineage and
# an audit trail; then the same copy without the mask step is refused.
set -euo pipefail
cd "$(dirname "$0")/provisioning"
LG=../../.venv/bin/lockgate
PY=../../.venv/bin/python
$LG db upgrade >/dev/null  # state kept from an older version's demo is migrated, not refused
echo "== 1. a production database with personal data (deterministic, examples/provisioning/data)"
$PY make_production.py data/production.db
echo
echo "== 2. lockgate run provision_test_data   (examples/provisioning/pipelines/provision_test_data.py)"
$LG run provision_test_data
run_id=$($LG runs --limit 1 --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
echo
echo "== 3. what happened"
$PY summary.py "$run_id"
echo
echo "== 4. the same copy without the mask step:"
echo "   lockgate copy work/customers.parquet 'sqlite:///data/staging.db#customers_unmasked'"
if refusal=$($LG copy work/customers.parquet 'sqlite:///data/staging.db#customers_unmasked' 2>&1); then
    echo "   the gate let unmasked data through: this demo is broken" >&2
    exit 1
fi
echo "   refused: ${refusal:0:230}..."
echo
echo "== 5. look around: lineage, policy decisions, audit trail and runs in the web UI"
echo "   cd examples/provisioning && ../../.venv/bin/lockgate users add you --role admin && ../../.venv/bin/lockgate up"
echo "   then open http://127.0.0.1:8080 (the one-time password is printed by 'users add')"
