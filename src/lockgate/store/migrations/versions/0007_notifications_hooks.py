"""Operations: notification deliveries (what was sent where, attempts, last error) and inbound
webhook deliveries (replay protection: a delivery id, and a signed body, are accepted once).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pipeline_id", sa.String(128)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("task_id", sa.String(128)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.Float),
        sa.Column("subject", sa.Text),
    )
    op.create_index("ix_notifications_created", "notifications", ["created_at"])
    op.create_index("ix_notifications_run", "notifications", ["run_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("delivery_id", sa.String(128), primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("runs", sa.Text),
        sa.Column("body_sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_received", "webhook_deliveries", ["received_at"])
    op.create_index(
        "ix_webhook_deliveries_body", "webhook_deliveries", ["source", "body_sha256"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_body", "webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_received", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_notifications_run", "notifications")
    op.drop_index("ix_notifications_created", "notifications")
    op.drop_table("notifications")
