"""HTTP API: access tokens (stored hashed) and alert state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Epoch seconds: REAL on SQLite (8 bytes), DOUBLE PRECISION on PostgreSQL (its REAL is 4).
EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=True),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_at", EPOCH, nullable=False),
        sa.Column("revoked_at", EPOCH, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
    )
    op.create_index("ix_api_tokens_token_hash", "api_tokens", ["token_hash"], unique=True)
    op.create_table(
        "alert_state",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("fired_at", EPOCH, nullable=False),
        sa.Column("resolved_at", EPOCH, nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),  # JSON
        sa.PrimaryKeyConstraint("key", name="pk_alert_state"),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
    op.drop_table("api_tokens")  # drops its index with it
