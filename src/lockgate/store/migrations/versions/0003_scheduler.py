"""The scheduler's state: run keys (one run per pipeline and interval), who drives a run,
attempts that do not count against a task's retries, pause flags, dataset update events and the
registry of running schedulers.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("run_key", sa.String(128)))
        batch.add_column(sa.Column("runner", sa.String(16)))
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("retry_base", sa.Integer))
    op.create_index("ix_runs_pipeline_key", "runs", ["pipeline_id", "run_key"], unique=True)
    op.create_index("ix_runs_pipeline_logical", "runs", ["pipeline_id", "logical_date"])
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("paused", sa.Integer, nullable=False),
        sa.Column("dataset_cursor", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "dataset_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("uri", sa.String(1024), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(128)),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ix_dataset_events_uri", "dataset_events", ["uri", "id"])
    op.create_table(
        "schedulers",
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("wake_address", sa.String(255)),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedulers")
    op.drop_index("ix_dataset_events_uri", "dataset_events")
    op.drop_table("dataset_events")
    op.drop_table("pipelines")
    op.drop_index("ix_runs_pipeline_logical", "runs")
    op.drop_index("ix_runs_pipeline_key", "runs")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("retry_base")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("runner")
        batch.drop_column("run_key")
