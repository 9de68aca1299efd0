"""Quality control: live listening sessions (ChanSpy) and QC grades.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "qc_spy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("spyee", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("requested_at", EPOCH, nullable=False),
        sa.Column("started_at", EPOCH, nullable=True),
        sa.Column("ended_at", EPOCH, nullable=True),
        sa.Column("spyer_uniqueid", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_qc_spy"),
    )
    op.create_index("ix_qc_spy_card", "qc_spy", ["card"])
    op.create_table(
        "qc_grades",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("interface", sa.Text(), server_default="", nullable=False),
        sa.Column("queue", sa.Text(), server_default="", nullable=False),
        sa.Column("graded_at", EPOCH, nullable=False),
        sa.Column("graded_by", sa.Text(), nullable=False),
        sa.Column("score", EPOCH, nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_qc_grades"),
    )
    op.create_index("ix_qc_grades_card", "qc_grades", ["card"])
    op.create_index("ix_qc_grades_operator_graded_at", "qc_grades", ["operator", "graded_at"])


def downgrade() -> None:
    op.drop_table("qc_grades")
    op.drop_table("qc_spy")
