"""IVR: incident announcements.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Epoch seconds: REAL on SQLite (8 bytes), DOUBLE PRECISION on PostgreSQL (its REAL is 4).
EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("products", sa.Text(), nullable=False),  # JSON list
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("starts_at", EPOCH, nullable=False),
        sa.Column("expires_at", EPOCH, nullable=False),
        sa.Column("created_at", EPOCH, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("cleared_at", EPOCH, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_expires_at", "incidents", ["expires_at"])


def downgrade() -> None:
    op.drop_table("incidents")
