"""Governance: the audit chain (records, head, signed checkpoints), policy waivers and the
gate's decisions.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(1024)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("detail", sa.Text),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("exported_to", sa.Text),
    )
    op.create_table(
        "waivers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(1024), nullable=False),
        sa.Column("columns", sa.Text),
        sa.Column("zone", sa.String(64)),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("revoked_by", sa.String(255)),
        sa.Column("mac", sa.String(96), nullable=False),
    )
    op.create_table(
        "policy_decisions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64)),
        sa.Column("task_id", sa.String(128)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("dataset", sa.String(1024), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ix_policy_decisions_ts", "policy_decisions", ["ts"])
    op.create_index("ix_policy_decisions_run", "policy_decisions", ["run_id"])
    op.create_index("ix_policy_decisions_dataset", "policy_decisions", ["dataset", "id"])


def downgrade() -> None:
    op.drop_index("ix_policy_decisions_dataset", "policy_decisions")
    op.drop_index("ix_policy_decisions_run", "policy_decisions")
    op.drop_index("ix_policy_decisions_ts", "policy_decisions")
    op.drop_table("policy_decisions")
    op.drop_table("waivers")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_ts", "audit_log")
    op.drop_table("audit_log")
