"""Accounts: users (argon2id password hashes, lock-out), API tokens (hashed, scoped, expiring),
per-pipeline grants and browser sessions; run cancellation requests.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("must_change_password", sa.Integer, nullable=False),
        sa.Column("disabled", sa.Integer, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("label", sa.String(128)),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user_name"])
    op.create_table(
        "grants",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("target", sa.String(160), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_index("ix_grants_user", "grants", ["user_name", "target"], unique=True)
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("client", sa.String(64)),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_name"])
    op.create_index("ix_runs_state_created", "runs", ["state", "created_at"])
    op.create_table(
        "run_cancels",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_cancels")
    op.drop_index("ix_runs_state_created", "runs")
    op.drop_index("ix_sessions_user", "sessions")
    op.drop_table("sessions")
    op.drop_index("ix_grants_user", "grants")
    op.drop_table("grants")
    op.drop_index("ix_api_tokens_user", "api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
