"""Routing: operator state and skills overrides.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Epoch seconds: REAL on SQLite (8 bytes), DOUBLE PRECISION on PostgreSQL (its REAL is 4).
EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "operator_state",
        sa.Column("operator_id", sa.Text(), nullable=False),
        sa.Column("logged_in", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("pause_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("skills", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", EPOCH, nullable=False),
        sa.Column("updated_by", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("operator_id", name="pk_operator_state"),
    )
    op.create_index("ix_operator_state_version", "operator_state", ["version"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_operator_state_version", table_name="operator_state")
    op.drop_table("operator_state")
