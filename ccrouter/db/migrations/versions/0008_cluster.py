"""Cluster: the node of every card, one lease row and one live row per node.

(The node of a feature's rows comes in that feature's migrations: until 0013 this one also
added it to a feature's table, which 0013 now does when it is missing.)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.add_column("cards", sa.Column("node", sa.Text(), nullable=True))
    op.create_table(
        "leases",
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("expires_at", EPOCH, nullable=False),
        sa.Column("acquired_at", EPOCH, nullable=False),
        sa.PrimaryKeyConstraint("node", name="pk_leases"),
    )
    op.create_table(
        "live_nodes",
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("updated_at", EPOCH, nullable=False),
        sa.PrimaryKeyConstraint("node", name="pk_live_nodes"),
    )


def downgrade() -> None:
    op.drop_table("live_nodes")
    op.drop_table("leases")
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("node")
