"""Call cards and the meta key/value table.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Epoch seconds: REAL on SQLite (8 bytes), DOUBLE PRECISION on PostgreSQL (its REAL is 4).
EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("uniqueid", sa.Text(), nullable=True),
        sa.Column("linkedid", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("caller_num", sa.Text(), nullable=True),
        sa.Column("caller_name", sa.Text(), nullable=True),
        sa.Column("dialled", sa.Text(), nullable=True),
        sa.Column("started_at", EPOCH, nullable=True),
        sa.Column("answered_at", EPOCH, nullable=True),
        sa.Column("ended_at", EPOCH, nullable=True),
        sa.Column("ivr_path", sa.Text(), nullable=True),  # JSON list
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("product", sa.Text(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("queue", sa.Text(), nullable=True),
        sa.Column("wait_s", sa.Integer(), nullable=True),
        sa.Column("ring_s", sa.Integer(), nullable=True),
        sa.Column("talk_s", sa.Integer(), nullable=True),
        sa.Column("operator", sa.Text(), nullable=True),
        sa.Column("interface", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("escalation", sa.Text(), nullable=True),
        sa.Column("priority", sa.Text(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("recording", sa.Text(), nullable=True),
        sa.Column("repeat_of", sa.Text(), nullable=True),
        sa.Column("last_agent_hit", sa.Boolean(), nullable=True),
        sa.Column("created_at", EPOCH, nullable=False),
        sa.Column("updated_at", EPOCH, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cards"),
    )
    op.create_index("ix_cards_number", "cards", ["number"], unique=True)
    op.create_index("ix_cards_linkedid", "cards", ["linkedid"])
    op.create_index("ix_cards_uniqueid", "cards", ["uniqueid"])
    op.create_index("ix_cards_caller_num_started_at", "cards", ["caller_num", "started_at"])
    op.create_index("ix_cards_state", "cards", ["state"])
    op.create_index("ix_cards_started_at", "cards", ["started_at"])
    op.create_index("ix_cards_queue_started_at", "cards", ["queue", "started_at"])
    op.create_table(
        "meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_table("cards")  # drops its indexes with it
