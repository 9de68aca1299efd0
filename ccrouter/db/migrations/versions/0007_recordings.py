"""Recordings: one row per recorded card, and the playback audit.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("uniqueid", sa.Text(), nullable=False),
        sa.Column("product", sa.Text(), server_default="", nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("started_at", EPOCH, nullable=False),
        sa.Column("ended_at", EPOCH, nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("deleted_at", EPOCH, nullable=True),
        sa.PrimaryKeyConstraint("card", name="pk_recordings"),
    )
    op.create_index("ix_recordings_started_at", "recordings", ["started_at"])
    op.create_table(
        "recording_plays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("at", EPOCH, nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("range", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recording_plays"),
    )
    op.create_index("ix_recording_plays_card", "recording_plays", ["card"])


def downgrade() -> None:
    op.drop_table("recording_plays")
    op.drop_table("recordings")
