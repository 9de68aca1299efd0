"""Helpdesk: second-line tickets, their history and the caller's mails; card columns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Epoch seconds: REAL on SQLite (8 bytes), DOUBLE PRECISION on PostgreSQL (its REAL is 4).
EPOCH: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)

CARD_COLUMNS = ("caller_email", "ticket_id", "ticket_url", "ticket_status")


def upgrade() -> None:
    for name in CARD_COLUMNS:
        op.add_column("cards", sa.Column(name, sa.Text(), nullable=True))
    op.create_index("ix_cards_ticket_status", "cards", ["ticket_status"])
    op.create_table(
        "helpdesk_tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),  # JSON
        sa.Column("ticket_id", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", EPOCH, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", EPOCH, nullable=False),
        sa.Column("updated_at", EPOCH, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_helpdesk_tickets"),
    )
    op.create_index("ix_helpdesk_tickets_idempotency_key", "helpdesk_tickets",
                    ["idempotency_key"], unique=True)  # fmt: skip
    op.create_index("ix_helpdesk_tickets_card", "helpdesk_tickets", ["card"])
    op.create_index("ix_helpdesk_tickets_ticket_id", "helpdesk_tickets", ["ticket_id"])
    op.create_index("ix_helpdesk_tickets_status_next_at", "helpdesk_tickets",
                    ["status", "next_at"])  # fmt: skip
    op.create_table(
        "helpdesk_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.Integer(), nullable=False),
        sa.Column("at", EPOCH, nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["ticket"], ["helpdesk_tickets.id"],
                                name="fk_helpdesk_history_ticket_helpdesk_tickets"),
        sa.PrimaryKeyConstraint("id", name="pk_helpdesk_history"),
    )
    op.create_index("ix_helpdesk_history_ticket_at", "helpdesk_history", ["ticket", "at"])
    op.create_table(
        "helpdesk_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", EPOCH, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("created_at", EPOCH, nullable=False),
        sa.Column("sent_at", EPOCH, nullable=True),
        sa.ForeignKeyConstraint(["ticket"], ["helpdesk_tickets.id"],
                                name="fk_helpdesk_mails_ticket_helpdesk_tickets"),
        sa.PrimaryKeyConstraint("id", name="pk_helpdesk_mails"),
    )
    op.create_index("ix_helpdesk_mails_ticket_kind", "helpdesk_mails", ["ticket", "kind"],
                    unique=True)  # fmt: skip
    op.create_index("ix_helpdesk_mails_state_next_at", "helpdesk_mails", ["state", "next_at"])


def downgrade() -> None:
    op.drop_table("helpdesk_mails")
    op.drop_table("helpdesk_history")
    op.drop_table("helpdesk_tickets")
    op.drop_index("ix_cards_ticket_status", table_name="cards")
    with op.batch_alter_table("cards") as batch:
        for name in reversed(CARD_COLUMNS):
            batch.drop_column(name)
