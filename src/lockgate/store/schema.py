"""The metadata tables (SQLAlchemy Core). Alembic migrations in `migrations/` build the same."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from lockgate.store.ddl import SCHEMA_REVISION  # noqa: E402,F401  (re-exported)

metadata = MetaData()

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline_id", String(128), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("file", Text),
    Column("source", Text),
    Column("created_at", Float, nullable=False),
    Index("ix_pipeline_versions_pipeline_hash", "pipeline_id", "hash", unique=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pipeline_id", String(128), nullable=False),
    Column("version_id", Integer),
    Column("state", String(16), nullable=False),
    Column("params", Text),
    Column("executor", String(32)),
    Column("trigger", String(32)),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("owner", String(255)),
    Column("heartbeat_at", Float),
    Column("error", Text),
    Column("logical_date", Float),
    Column("data_interval_start", Float),
    Column("data_interval_end", Float),
    Column("run_key", String(128)),
    Column("runner", String(16)),
    Index("ix_runs_pipeline_created", "pipeline_id", "created_at"),
    Index("ix_runs_pipeline_key", "pipeline_id", "run_key", unique=True),
    Index("ix_runs_pipeline_logical", "pipeline_id", "logical_date"),
    Index("ix_runs_created", "created_at"),
    Index("ix_runs_state", "state"),
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("task_id", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer),
    Column("updated_at", Float, nullable=False),
    Column("error", Text),
    Column("retry_base", Integer),
)

task_attempts = Table(
    "task_attempts",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("task_id", String(128), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("error", Text),
    Column("log_path", Text),
)

events = Table(
    "events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("task_id", String(128)),
    Column("attempt", Integer, nullable=False),
    Column("state", String(16)),
    Column("data", Text),
    Index("ix_events_run", "run_id", "id"),
)

results = Table(
    "results",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("task_id", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("size", Integer, nullable=False),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("paused", Integer, nullable=False),
    Column("dataset_cursor", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

dataset_events = Table(
    "dataset_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("uri", String(1024), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("task_id", String(128)),
    Column("ts", Float, nullable=False),
    Index("ix_dataset_events_uri", "uri", "id"),
)

schedulers = Table(
    "schedulers",
    metadata,
    Column("owner", String(255), primary_key=True),
    Column("wake_address", String(255)),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("uri", String(1024), primary_key=True),  # as `io.dataset.display` shows it
    Column("kind", String(16), nullable=False),
    Column("schema", Text),  # JSON: [{"name", "type", "tag"}], tags included
    Column("rows", BigInteger),
    Column("run_id", String(64)),
    Column("task_id", String(128)),
    Column("updated_at", Float, nullable=False),
)
"""The catalogue: the last known schema (with classification tags) of every dataset written,
for formats that cannot carry tags themselves (CSV, JSONL, SQL tables) and for lineage."""

lineage = Table(
    "lineage",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(64), nullable=False),
    Column("task_id", String(128), nullable=False),
    Column("input_uri", String(1024), nullable=False),
    Column("output_uri", String(1024), nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_lineage_run", "run_id"),
    Index("ix_lineage_input", "input_uri"),
    Index("ix_lineage_output", "output_uri"),
)
"""One edge per (input, output) of a task that wrote a dataset, per run."""

quality_results = Table(
    "quality_results",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(64), nullable=False),
    Column("task_id", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("dataset", String(1024)),
    Column("name", String(255), nullable=False),
    Column("check_kind", String(32), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("passed", Integer, nullable=False),
    Column("failing_rows", BigInteger),
    Column("detail", Text),  # JSON: message and a few examples, classified values masked
    Column("ts", Float, nullable=False),
    Index("ix_quality_results_run", "run_id", "task_id"),
)

connections = Table(
    "connections",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("url", Text, nullable=False),  # never holds a password
    Column("options", Text),  # JSON
    Column("secret", Text),  # AES-GCM ciphertext (base64) of a JSON object of secret fields
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
