"""Initial schema: pipeline versions, runs, task states and attempts, events, results.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline_id", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("file", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_pipeline_versions_pipeline_hash",
        "pipeline_versions",
        ["pipeline_id", "hash"],
        unique=True,
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("pipeline_id", sa.String(128), nullable=False),
        sa.Column("version_id", sa.Integer),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", sa.Text),
        sa.Column("executor", sa.String(32)),
        sa.Column("trigger", sa.String(32)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("owner", sa.String(255)),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_runs_pipeline_created", "runs", ["pipeline_id", "created_at"])
    op.create_index("ix_runs_created", "runs", ["created_at"])
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_table(
        "task_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "task_attempts",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("log_path", sa.Text),
    )
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(128)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16)),
        sa.Column("data", sa.Text),
    )
    op.create_index("ix_events_run", "events", ["run_id", "id"])
    op.create_table(
        "results",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("results", "events", "task_attempts", "task_runs", "runs", "pipeline_versions"):
        op.drop_table(table)
