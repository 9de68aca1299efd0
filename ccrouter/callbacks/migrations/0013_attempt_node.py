"""The node of every callback attempt (several Asterisk nodes: the leg runs on one).

Migration 0008 (cluster) added this column when the chain was one directory; it is the
callbacks' own, so it lives here now: added when missing — a database that ran the earlier
0008 has it already, and is left as it is.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _has_node() -> bool:
    columns = sa.inspect(op.get_bind()).get_columns("callback_attempts")
    return any(c["name"] == "node" for c in columns)


def upgrade() -> None:
    if not _has_node():
        op.add_column("callback_attempts", sa.Column("node", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_attempts") as batch:
        batch.drop_column("node")
