"""Runs record their logical date and data interval (templates and resume need them).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("logical_date", sa.Float))
        batch.add_column(sa.Column("data_interval_start", sa.Float))
        batch.add_column(sa.Column("data_interval_end", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("data_interval_end")
        batch.drop_column("data_interval_start")
        batch.drop_column("logical_date")
