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
    Index("ix_runs_state_created", "state", "created_at"),  # 0006: the server's runs filter
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

# -- governance (migration 0005) ----------------------------------------------------------------
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(1024)),
    Column("run_id", String(64)),
    Column("detail", Text),  # JSON text, exactly as hashed
    Column("key_id", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
    Index("ix_audit_log_ts", "ts"),
)
"""The audit chain: each record's `hash` covers its fields and the previous record's hash;
`mac` is a keyed MAC of `hash` (key `key_id`, from the project keyring)."""

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
    Column("ts", Float, nullable=False),
)
"""The chain's last record (one row, locked by appenders on PostgreSQL), MACed: a dropped tail
is found even when the last records are deleted together."""

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("public_key", String(64), nullable=False),  # Ed25519, hex
    Column("signature", String(128), nullable=False),  # hex
    Column("exported_to", Text),
)
"""Signed checkpoints of the chain (Ed25519 over seq, hash and time); retention cuts here."""

waivers = Table(
    "waivers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("rule", String(128), nullable=False),  # a rule id or pattern (`pci.*`)
    Column("dataset", String(1024), nullable=False),  # a dataset key or glob
    Column("columns", Text),  # JSON list of column names; null: every column
    Column("zone", String(64)),  # null: any target zone
    Column("owner", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("revoked_by", String(255)),
    Column("mac", String(96), nullable=False),  # `key_id:hex` keyed MAC of the columns above
)
"""Explicit, reasoned and expiring exceptions to policy rules (audited on create and revoke;
MACed with the project's key, so a row written or changed behind lockgate's back is ignored)."""

policy_decisions = Table(
    "policy_decisions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(64)),  # null: a write outside a run (`lockgate copy`)
    Column("task_id", String(128)),
    Column("attempt", Integer, nullable=False),
    Column("dataset", String(1024), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("decision", String(16), nullable=False),  # allow, deny, waived
    Column("detail", Text),  # JSON: source zones, columns, violations, waivers used, scan
    Column("ts", Float, nullable=False),
    Index("ix_policy_decisions_ts", "ts"),
    Index("ix_policy_decisions_run", "run_id"),
    Index("ix_policy_decisions_dataset", "dataset", "id"),
)
"""Every gate decision on a dataset write (folded from `PolicyDecision` events)."""


# -- accounts (migration 0006) ------------------------------------------------------------------
users = Table(
    "users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text),  # argon2id; null: no password login (tokens, later OIDC)
    Column("must_change_password", Integer, nullable=False),
    Column("disabled", Integer, nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", Float),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", Float, nullable=False),
)
"""People and service accounts, each with one global role (auth/roles.py)."""

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_name", String(128), nullable=False),
    Column("label", String(128)),
    Column("hash", String(64), nullable=False),  # SHA-256 of the token's secret part
    Column("scopes", Text, nullable=False),  # JSON list of permissions
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
    Index("ix_api_tokens_user", "user_name"),
)
"""API tokens: shown once, stored hashed, with scopes and an expiry."""

grants = Table(
    "grants",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("user_name", String(128), nullable=False),
    Column("target", String(160), nullable=False),  # a pipeline id, or tag:NAME
    Column("role", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255), nullable=False),
    Index("ix_grants_user", "user_name", "target", unique=True),
)
"""A role on some pipelines only (by id or tag), over a user's global role."""

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie's secret
    Column("user_name", String(128), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("client", String(64)),
    Index("ix_sessions_user", "user_name"),
)
"""Browser sessions of the server: the cookie holds a random secret, the row its hash, the
form token (CSRF) and the expiry."""

run_cancels = Table(
    "run_cancels",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("requested_at", Float, nullable=False),
    Column("requested_by", String(255), nullable=False),
)
"""Runs someone asked to cancel (from the server or another process); the scheduler driving
one cancels it and the row goes when the run ends."""

notifications = Table(
    "notifications",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("created_at", Float, nullable=False),
    Column("event", String(32), nullable=False),  # run_failed, sla_missed, ...
    Column("channel", String(128), nullable=False),  # the channel's name in lockgate.toml
    Column("kind", String(16), nullable=False),  # slack, email, teams, webhook
    Column("pipeline_id", String(128)),
    Column("run_id", String(64)),
    Column("task_id", String(128)),
    Column("state", String(16), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("sent_at", Float),
    Column("subject", Text),  # the message's first line, redacted
    Index("ix_notifications_created", "created_at"),
    Index("ix_notifications_run", "run_id"),
)
"""One notification to one channel: its delivery state, attempts and last error."""

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("source", String(32), primary_key=True),  # github
    Column("delivery_id", String(128), primary_key=True),
    Column("event", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("runs", Text),  # JSON list of the run ids it queued
    Column("body_sha256", String(64), nullable=False),  # hex SHA-256 of the raw signed body
    Index("ix_webhook_deliveries_received", "received_at"),
    Index("ix_webhook_deliveries_body", "source", "body_sha256", unique=True),
)
"""Inbound webhook deliveries already accepted: a replayed delivery id, or a replayed signed
body under a new delivery id (the id header is not signed), is refused."""
