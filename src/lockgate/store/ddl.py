"""The schema as plain DDL, so a new database is created without importing SQLAlchemy.

Generated from `store/schema.py` (the source of truth); tests/store/test_store_ddl.py fails
if they differ and prints the statements to paste here."""

from __future__ import annotations

SCHEMA_REVISION = "0004"
"""The Alembic head this code expects; checked on open."""

SQLITE = (
    "CREATE TABLE connections (name VARCHAR(128) NOT NULL, kind VARCHAR(16) NOT NULL, url TEXT NOT NULL, options TEXT, secret TEXT, created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (name))",
    "CREATE TABLE dataset_events (id INTEGER NOT NULL, uri VARCHAR(1024) NOT NULL, run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128), ts FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_dataset_events_uri ON dataset_events (uri, id)",
    "CREATE TABLE datasets (uri VARCHAR(1024) NOT NULL, kind VARCHAR(16) NOT NULL, schema TEXT, rows BIGINT, run_id VARCHAR(64), task_id VARCHAR(128), updated_at FLOAT NOT NULL, PRIMARY KEY (uri))",
    "CREATE TABLE events (id INTEGER NOT NULL, run_id VARCHAR(64) NOT NULL, ts FLOAT NOT NULL, kind VARCHAR(32) NOT NULL, task_id VARCHAR(128), attempt INTEGER NOT NULL, state VARCHAR(16), data TEXT, PRIMARY KEY (id))",
    "CREATE INDEX ix_events_run ON events (run_id, id)",
    "CREATE TABLE lineage (id INTEGER NOT NULL, run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, input_uri VARCHAR(1024) NOT NULL, output_uri VARCHAR(1024) NOT NULL, ts FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_lineage_input ON lineage (input_uri)",
    "CREATE INDEX ix_lineage_output ON lineage (output_uri)",
    "CREATE INDEX ix_lineage_run ON lineage (run_id)",
    "CREATE TABLE pipeline_versions (id INTEGER NOT NULL, pipeline_id VARCHAR(128) NOT NULL, hash VARCHAR(64) NOT NULL, file TEXT, source TEXT, created_at FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE UNIQUE INDEX ix_pipeline_versions_pipeline_hash ON pipeline_versions (pipeline_id, hash)",
    "CREATE TABLE pipelines (id VARCHAR(128) NOT NULL, paused INTEGER NOT NULL, dataset_cursor BIGINT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE TABLE quality_results (id INTEGER NOT NULL, run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, attempt INTEGER NOT NULL, dataset VARCHAR(1024), name VARCHAR(255) NOT NULL, check_kind VARCHAR(32) NOT NULL, severity VARCHAR(8) NOT NULL, passed INTEGER NOT NULL, failing_rows BIGINT, detail TEXT, ts FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_quality_results_run ON quality_results (run_id, task_id)",
    "CREATE TABLE results (run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, value TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (run_id, task_id))",
    'CREATE TABLE runs (id VARCHAR(64) NOT NULL, pipeline_id VARCHAR(128) NOT NULL, version_id INTEGER, state VARCHAR(16) NOT NULL, params TEXT, executor VARCHAR(32), "trigger" VARCHAR(32), created_at FLOAT NOT NULL, started_at FLOAT, ended_at FLOAT, owner VARCHAR(255), heartbeat_at FLOAT, error TEXT, logical_date FLOAT, data_interval_start FLOAT, data_interval_end FLOAT, run_key VARCHAR(128), runner VARCHAR(16), PRIMARY KEY (id))',
    "CREATE INDEX ix_runs_created ON runs (created_at)",
    "CREATE INDEX ix_runs_pipeline_created ON runs (pipeline_id, created_at)",
    "CREATE UNIQUE INDEX ix_runs_pipeline_key ON runs (pipeline_id, run_key)",
    "CREATE INDEX ix_runs_pipeline_logical ON runs (pipeline_id, logical_date)",
    "CREATE INDEX ix_runs_state ON runs (state)",
    "CREATE TABLE schedulers (owner VARCHAR(255) NOT NULL, wake_address VARCHAR(255), started_at FLOAT NOT NULL, heartbeat_at FLOAT NOT NULL, PRIMARY KEY (owner))",
    "CREATE TABLE task_attempts (run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, attempt INTEGER NOT NULL, state VARCHAR(16) NOT NULL, started_at FLOAT, ended_at FLOAT, error TEXT, log_path TEXT, PRIMARY KEY (run_id, task_id, attempt))",
    "CREATE TABLE task_runs (run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, state VARCHAR(16) NOT NULL, attempts INTEGER, updated_at FLOAT NOT NULL, error TEXT, retry_base INTEGER, PRIMARY KEY (run_id, task_id))",
)

POSTGRESQL = (
    "CREATE TABLE connections (name VARCHAR(128) NOT NULL, kind VARCHAR(16) NOT NULL, url TEXT NOT NULL, options TEXT, secret TEXT, created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (name))",
    "CREATE TABLE dataset_events (id BIGSERIAL NOT NULL, uri VARCHAR(1024) NOT NULL, run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128), ts FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_dataset_events_uri ON dataset_events (uri, id)",
    "CREATE TABLE datasets (uri VARCHAR(1024) NOT NULL, kind VARCHAR(16) NOT NULL, schema TEXT, rows BIGINT, run_id VARCHAR(64), task_id VARCHAR(128), updated_at FLOAT NOT NULL, PRIMARY KEY (uri))",
    "CREATE TABLE events (id BIGSERIAL NOT NULL, run_id VARCHAR(64) NOT NULL, ts FLOAT NOT NULL, kind VARCHAR(32) NOT NULL, task_id VARCHAR(128), attempt INTEGER NOT NULL, state VARCHAR(16), data TEXT, PRIMARY KEY (id))",
    "CREATE INDEX ix_events_run ON events (run_id, id)",
    "CREATE TABLE lineage (id BIGSERIAL NOT NULL, run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, input_uri VARCHAR(1024) NOT NULL, output_uri VARCHAR(1024) NOT NULL, ts FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_lineage_input ON lineage (input_uri)",
    "CREATE INDEX ix_lineage_output ON lineage (output_uri)",
    "CREATE INDEX ix_lineage_run ON lineage (run_id)",
    "CREATE TABLE pipeline_versions (id SERIAL NOT NULL, pipeline_id VARCHAR(128) NOT NULL, hash VARCHAR(64) NOT NULL, file TEXT, source TEXT, created_at FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE UNIQUE INDEX ix_pipeline_versions_pipeline_hash ON pipeline_versions (pipeline_id, hash)",
    "CREATE TABLE pipelines (id VARCHAR(128) NOT NULL, paused INTEGER NOT NULL, dataset_cursor BIGINT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE TABLE quality_results (id BIGSERIAL NOT NULL, run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, attempt INTEGER NOT NULL, dataset VARCHAR(1024), name VARCHAR(255) NOT NULL, check_kind VARCHAR(32) NOT NULL, severity VARCHAR(8) NOT NULL, passed INTEGER NOT NULL, failing_rows BIGINT, detail TEXT, ts FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_quality_results_run ON quality_results (run_id, task_id)",
    "CREATE TABLE results (run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, value TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (run_id, task_id))",
    "CREATE TABLE runs (id VARCHAR(64) NOT NULL, pipeline_id VARCHAR(128) NOT NULL, version_id INTEGER, state VARCHAR(16) NOT NULL, params TEXT, executor VARCHAR(32), trigger VARCHAR(32), created_at FLOAT NOT NULL, started_at FLOAT, ended_at FLOAT, owner VARCHAR(255), heartbeat_at FLOAT, error TEXT, logical_date FLOAT, data_interval_start FLOAT, data_interval_end FLOAT, run_key VARCHAR(128), runner VARCHAR(16), PRIMARY KEY (id))",
    "CREATE INDEX ix_runs_created ON runs (created_at)",
    "CREATE INDEX ix_runs_pipeline_created ON runs (pipeline_id, created_at)",
    "CREATE UNIQUE INDEX ix_runs_pipeline_key ON runs (pipeline_id, run_key)",
    "CREATE INDEX ix_runs_pipeline_logical ON runs (pipeline_id, logical_date)",
    "CREATE INDEX ix_runs_state ON runs (state)",
    "CREATE TABLE schedulers (owner VARCHAR(255) NOT NULL, wake_address VARCHAR(255), started_at FLOAT NOT NULL, heartbeat_at FLOAT NOT NULL, PRIMARY KEY (owner))",
    "CREATE TABLE task_attempts (run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, attempt INTEGER NOT NULL, state VARCHAR(16) NOT NULL, started_at FLOAT, ended_at FLOAT, error TEXT, log_path TEXT, PRIMARY KEY (run_id, task_id, attempt))",
    "CREATE TABLE task_runs (run_id VARCHAR(64) NOT NULL, task_id VARCHAR(128) NOT NULL, state VARCHAR(16) NOT NULL, attempts INTEGER, updated_at FLOAT NOT NULL, error TEXT, retry_base INTEGER, PRIMARY KEY (run_id, task_id))",
)
