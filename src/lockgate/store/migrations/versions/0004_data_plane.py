"""The data plane: the dataset catalogue (schemas with classification tags), lineage edges,
data-quality results and named connections (secrets encrypted).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("uri", sa.String(1024), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("schema", sa.Text),
        sa.Column("rows", sa.BigInteger),
        sa.Column("run_id", sa.String(64)),
        sa.Column("task_id", sa.String(128)),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "lineage",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("input_uri", sa.String(1024), nullable=False),
        sa.Column("output_uri", sa.String(1024), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ix_lineage_run", "lineage", ["run_id"])
    op.create_index("ix_lineage_input", "lineage", ["input_uri"])
    op.create_index("ix_lineage_output", "lineage", ["output_uri"])
    op.create_table(
        "quality_results",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("dataset", sa.String(1024)),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("check_kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("failing_rows", sa.BigInteger),
        sa.Column("detail", sa.Text),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ix_quality_results_run", "quality_results", ["run_id", "task_id"])
    op.create_table(
        "connections",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("options", sa.Text),
        sa.Column("secret", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("connections")
    op.drop_index("ix_quality_results_run", "quality_results")
    op.drop_table("quality_results")
    op.drop_index("ix_lineage_output", "lineage")
    op.drop_index("ix_lineage_input", "lineage")
    op.drop_index("ix_lineage_run", "lineage")
    op.drop_table("lineage")
    op.drop_table("datasets")
