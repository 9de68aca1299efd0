"""The callbacks' tables and card columns, on the card store's `metadata` (their migration is
`ccrouter/callbacks/migrations/0004_callbacks.py`). The wiring adds `CARD_COLUMNS` to the
cards (`ccrouter.calls.fields.add_card_fields`)."""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa

from ccrouter.db.tables import EPOCH, metadata

CARD_COLUMNS: Final[tuple[sa.Column[Any], ...]] = (
    sa.Column("callback_of", sa.Text),  # the card of the call this leg calls back
    sa.Column("callback_status", sa.Text),  # pending/dialing/done/failed/cancelled/expired
    sa.Column("callback_reason", sa.Text),  # why: caller_got_through, attempts_used_up, ...
)
LINK_COLUMNS: Final = ("callback_of",)
"""Card columns that hold another card's number (the card page links them)."""

callback_requests: Final = sa.Table(
    "callback_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # callback | outbound
    sa.Column("state", sa.Text, nullable=False),  # pending|dialing|done|failed|cancelled|expired
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False, server_default=""),
    sa.Column("product", sa.Text, nullable=False, server_default=""),
    sa.Column("card", sa.Text),  # the original call's card (callback_of of every attempt)
    sa.Column("message", sa.Text, nullable=False, server_default=""),  # outbound: a sound file
    sa.Column("place_at", EPOCH, nullable=False),  # original join time: the serving order
    sa.Column("due_at", EPOCH, nullable=False),
    sa.Column("created_at", EPOCH, nullable=False),
    sa.Column("updated_at", EPOCH, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("abandons", sa.Integer, nullable=False, server_default="1"),
    sa.Column("reason", sa.Text),  # why it ended: caller_got_through, attempts_used_up, ...
    sa.Index("ix_callback_requests_state_due_at", "state", "due_at"),
    sa.Index(
        "ix_callback_requests_open_number", "number", unique=True,
        sqlite_where=sa.text("state IN ('pending', 'dialing')"),
        postgresql_where=sa.text("state IN ('pending', 'dialing')"),
    ),
)
"""Callback and scheduled outbound requests; at most one open request per number."""

callback_attempts: Final = sa.Table(
    "callback_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("callback_requests.id"), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("card", sa.Text, nullable=False),  # the attempt's own card (kind callback/outbound)
    sa.Column("action_id", sa.Text, nullable=False),  # Originate ActionID
    sa.Column("channel_id", sa.Text, nullable=False),  # Originate ChannelId = the leg's Uniqueid
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # dialing | answered | <final AttemptResult>
    sa.Column("started_at", EPOCH, nullable=False),
    sa.Column("ended_at", EPOCH),
    sa.Column("node", sa.Text),  # the Asterisk node whose Originate dials it
    sa.Index("ix_callback_attempts_request_id_n", "request_id", "n", unique=True),
    sa.Index("ix_callback_attempts_state", "state"),
)
"""One row per Originate: written (committed) before the action is sent."""

