"""Callback requests and attempts; the callback columns of cards.

The callbacks' migration, in their package (`ccrouter.wiring` adds this directory to the
chain). `callback_of` was created by 0001 when this chain was one directory; every install is
at 0005 or later, so moving its creation here changes no database.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Epoch seconds: REAL on SQLite (8 bytes), DOUBLE PRECISION on PostgreSQL (its REAL is 4).
EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


def upgrade() -> None:
    op.add_column("cards", sa.Column("callback_of", sa.Text(), nullable=True))
    op.add_column("cards", sa.Column("callback_status", sa.Text(), nullable=True))
    op.add_column("cards", sa.Column("callback_reason", sa.Text(), nullable=True))
    op.create_table(
        "callback_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), server_default="", nullable=False),
        sa.Column("product", sa.Text(), server_default="", nullable=False),
        sa.Column("card", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("place_at", EPOCH, nullable=False),
        sa.Column("due_at", EPOCH, nullable=False),
        sa.Column("created_at", EPOCH, nullable=False),
        sa.Column("updated_at", EPOCH, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("abandons", sa.Integer(), server_default="1", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_callback_requests"),
    )
    op.create_index(
        "ix_callback_requests_state_due_at", "callback_requests", ["state", "due_at"]
    )
    op.create_index(
        "ix_callback_requests_open_number", "callback_requests", ["number"], unique=True,
        sqlite_where=sa.text("state IN ('pending', 'dialing')"),
        postgresql_where=sa.text("state IN ('pending', 'dialing')"),
    )  # fmt: skip
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("action_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("started_at", EPOCH, nullable=False),
        sa.Column("ended_at", EPOCH, nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["callback_requests.id"],
            name="fk_callback_attempts_request_id_callback_requests",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_callback_attempts"),
    )
    op.create_index(
        "ix_callback_attempts_request_id_n", "callback_attempts", ["request_id", "n"], unique=True
    )
    op.create_index("ix_callback_attempts_state", "callback_attempts", ["state"])


def downgrade() -> None:
    op.drop_table("callback_attempts")
    op.drop_table("callback_requests")
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("callback_reason")
        batch.drop_column("callback_status")
        batch.drop_column("callback_of")
