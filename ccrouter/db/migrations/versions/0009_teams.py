"""Teams and outside viewers: a token's scope; after-call work: when a card was completed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("scope", sa.Text(), nullable=True))  # JSON
    op.add_column("cards", sa.Column("completed_at", EPOCH, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("completed_at")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
