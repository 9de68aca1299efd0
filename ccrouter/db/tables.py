"""The database schema as SQLAlchemy Core tables (the migrations must produce exactly this).

`cards` holds one row per call card: one column per name in `CARD_COLUMN_ORDER` (the call
book's `CARD_FIELDS`: `ccrouter.calls.card_sql` checks they agree) plus `id`, `created_at` and
`updated_at`, and the columns features add (`ccrouter.calls.fields`). Times are epoch seconds
(`EPOCH`: REAL, DOUBLE PRECISION on PostgreSQL).
`ivr_path` is a JSON list stored as TEXT
(`JsonText` encodes and decodes it). `meta` is a small key/value table (the card-serial
reservation lives there). Later tables (incidents, tokens) are added to this `metadata`
together with a new migration in `migrations/versions/`; a feature's own tables are defined on
it beside the feature, with their migration in the feature's package.
"""

from __future__ import annotations

import json
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

# Deterministic constraint names: SQLite batch migrations need names to alter constraints.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def encode_json(value: Any) -> str | None:
    """How a JSON column's value is stored (NULL stays None)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JsonText(sa.types.TypeDecorator[Any]):
    """A JSON value stored as TEXT: encoded on write, decoded on read (NULL stays None)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return encode_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)


EPOCH: Final[sa.types.TypeEngine[float]] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)
"""Epoch seconds: REAL on SQLite (8 bytes), DOUBLE PRECISION on PostgreSQL (its REAL has 4)."""

metadata: Final = sa.MetaData(naming_convention=NAMING_CONVENTION)

TIME_COLUMNS: Final = frozenset({"started_at", "answered_at", "ended_at", "completed_at"})
INT_COLUMNS: Final = frozenset({"wait_s", "ring_s", "talk_s", "csat"})
JSON_COLUMNS: Final = frozenset({"ivr_path"})
BOOL_COLUMNS: Final = frozenset({"last_agent_hit"})


def _card_column(name: str) -> sa.Column[Any]:
    if name == "number":
        return sa.Column(name, sa.Text, nullable=False)
    if name in TIME_COLUMNS:
        return sa.Column(name, EPOCH)
    if name in INT_COLUMNS:
        return sa.Column(name, sa.Integer)
    if name in JSON_COLUMNS:
        return sa.Column(name, JsonText)
    if name in BOOL_COLUMNS:
        return sa.Column(name, sa.Boolean)
    return sa.Column(name, sa.Text)


# The column order is fixed (not the frozenset's order) so the DDL is stable across runs.
CARD_COLUMN_ORDER: Final = (
    "number", "kind", "state", "uniqueid", "linkedid", "channel", "caller_num", "caller_name",
    "dialled", "started_at", "answered_at", "ended_at", "ivr_path", "language", "product",
    "target", "queue", "wait_s", "ring_s", "talk_s", "operator", "interface", "outcome",
    "end_reason", "close_reason", "escalation", "priority", "topic", "resolution", "notes",
    "csat", "recording", "repeat_of", "last_agent_hit", "caller_email", "ticket_id",
    "ticket_url", "ticket_status", "node", "completed_at", "transfer_of",
)  # fmt: skip
"""The core's card columns; a feature adds its own after them (`add_card_columns`)."""

cards: Final = sa.Table(
    "cards",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    *(_card_column(name) for name in CARD_COLUMN_ORDER),
    sa.Column("created_at", EPOCH, nullable=False),
    sa.Column("updated_at", EPOCH, nullable=False),
    sa.Index("ix_cards_number", "number", unique=True),
    sa.Index("ix_cards_linkedid", "linkedid"),
    sa.Index("ix_cards_uniqueid", "uniqueid"),
    sa.Index("ix_cards_caller_num_started_at", "caller_num", "started_at"),
    sa.Index("ix_cards_state", "state"),
    sa.Index("ix_cards_started_at", "started_at"),
    sa.Index("ix_cards_queue_started_at", "queue", "started_at"),
    sa.Index("ix_cards_ticket_status", "ticket_status"),
)

def add_card_columns(*columns: sa.Column[Any]) -> None:
    """A feature's columns of `cards` (again, for a column already there: no-op)."""
    for column in columns:
        if column.name not in cards.c:
            cards.append_column(column)


def cards_of_node(node: str, *, first: bool) -> Any:
    """The condition for the cards of one Asterisk node; those written before cards named
    their node count as the first node's (`first`)."""
    mine = cards.c.node == node
    return sa.or_(mine, cards.c.node.is_(None)) if first else mine


meta: Final = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

api_tokens: Final = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),  # operator | supervisor | admin | viewer
    sa.Column("operator", sa.Text),  # config operators[].id, for the operator role
    sa.Column("scope", JsonText),  # teams (supervisor), products/targets/personal (viewer)
    sa.Column("token_hash", sa.Text, nullable=False),  # sha256 hex of the secret token
    sa.Column("created_at", EPOCH, nullable=False),
    sa.Column("revoked_at", EPOCH),
    sa.Index("ix_api_tokens_token_hash", "token_hash", unique=True),
)
"""HTTP API tokens (web feature): only a hash of each token is stored."""

alert_state: Final = sa.Table(
    "alert_state",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),  # rule name, or rule name + ":" + queue
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("fired_at", EPOCH, nullable=False),
    sa.Column("resolved_at", EPOCH),
    sa.Column("detail", JsonText),
)
"""Alerts fired and not yet resolved survive a restart (no duplicate notification)."""

incidents: Final = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("products", JsonText, nullable=False),
    sa.Column("prompt", sa.Text),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("starts_at", EPOCH, nullable=False),
    sa.Column("expires_at", EPOCH, nullable=False),
    sa.Column("created_at", EPOCH, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("cleared_at", EPOCH),
    sa.Index("ix_incidents_expires_at", "expires_at"),
)
"""Incident announcements (IVR): `products` is a JSON list, empty for every line; `prompt` is
the sound the IVR plays (None: the text is for the log and the wallboard only)."""

operator_state: Final = sa.Table(
    "operator_state",
    metadata,
    sa.Column("operator_id", sa.Text, primary_key=True),
    sa.Column("logged_in", sa.Boolean, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("pause_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("skills", JsonText),  # null: the config's skills; else {skill: level} replacing them
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", EPOCH, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_operator_state_version", "version", unique=True),
)
"""Routing: operators' desired state, written by the CLI/HTTP API/daemon. Every write takes the
next `version`; the daemon polls max(version) (indexed) to pick up changes promptly."""

helpdesk_tickets: Final = sa.Table(
    "helpdesk_tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("card", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=False),  # sent with every attempt
    sa.Column("status", sa.Text, nullable=False),  # pending|open|in_progress|resolved|failed
    sa.Column("payload", JsonText, nullable=False),  # the request body, fixed at creation
    sa.Column("ticket_id", sa.Text),  # the helpdesk's id, once created
    sa.Column("url", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", EPOCH),  # pending: when the next attempt is due
    sa.Column("last_error", sa.Text),
    sa.Column("created_by", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", EPOCH, nullable=False),
    sa.Column("updated_at", EPOCH, nullable=False),
    sa.Index("ix_helpdesk_tickets_idempotency_key", "idempotency_key", unique=True),
    sa.Index("ix_helpdesk_tickets_card", "card"),
    sa.Index("ix_helpdesk_tickets_ticket_id", "ticket_id"),
    sa.Index("ix_helpdesk_tickets_status_next_at", "status", "next_at"),
)
"""Second-line tickets (helpdesk feature): the outbox row is written before the first attempt,
so a ticket the helpdesk has not taken yet survives a restart."""

helpdesk_history: Final = sa.Table(
    "helpdesk_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket", sa.Integer, sa.ForeignKey("helpdesk_tickets.id"), nullable=False),
    sa.Column("at", EPOCH, nullable=False),
    sa.Column("event", sa.Text, nullable=False),  # requested|attempt_failed|created|status|mail_*
    sa.Column("status", sa.Text),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_helpdesk_history_ticket_at", "ticket", "at"),
)
"""What happened to each ticket, in order (the card shows it)."""

helpdesk_mails: Final = sa.Table(
    "helpdesk_mails",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket", sa.Integer, sa.ForeignKey("helpdesk_tickets.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # created | resolved
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", EPOCH),
    sa.Column("last_error", sa.Text),
    sa.Column("message_id", sa.Text),
    sa.Column("created_at", EPOCH, nullable=False),
    sa.Column("sent_at", EPOCH),
    sa.Index("ix_helpdesk_mails_ticket_kind", "ticket", "kind", unique=True),
    sa.Index("ix_helpdesk_mails_state_next_at", "state", "next_at"),
)
"""Caller mails (one per ticket and kind: a duplicate status event never mails twice)."""


recordings: Final = sa.Table(
    "recordings",
    metadata,
    sa.Column("card", sa.Text, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),  # as Asterisk wrote it (MIXMONITOR_FILENAME)
    sa.Column("uniqueid", sa.Text, nullable=False),
    sa.Column("product", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.Text, nullable=False),  # recording | done | none | missing | deleted
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("started_at", EPOCH, nullable=False),
    sa.Column("ended_at", EPOCH),
    sa.Column("size", sa.Integer),
    sa.Column("deleted_at", EPOCH),
    sa.Index("ix_recordings_started_at", "started_at"),
)
"""One row per recorded card (the card's `recording`): the file's path, start, end and size
from AMI, and what became of it (`reason`: why it is missing or was deleted)."""

recording_plays: Final = sa.Table(
    "recording_plays",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("card", sa.Text, nullable=False),
    sa.Column("at", EPOCH, nullable=False),
    sa.Column("who", sa.Text, nullable=False),  # the token's name
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),  # played | refused | missing
    sa.Column("range", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_recording_plays_card", "card"),
)
"""The playback audit: every request for a card's recording, who, when, and what it got."""

leases: Final = sa.Table(
    "leases",
    metadata,
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),  # cluster.instances[].name
    sa.Column("term", sa.Integer, nullable=False),  # +1 at every change of holder
    sa.Column("expires_at", EPOCH, nullable=False),  # the database's clock
    sa.Column("acquired_at", EPOCH, nullable=False),
)
"""One row per Asterisk node of a cluster: which ccrouter instance serves it, until when."""

live_nodes: Final = sa.Table(
    "live_nodes",
    metadata,
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("payload", JsonText, nullable=False),  # {"queues": [...], "operators": [...], ...}
    sa.Column("updated_at", EPOCH, nullable=False),  # the database's clock
)
"""What each node's lease holder shows live (published every second): every instance's
wallboard and live endpoints show the whole cluster."""

qc_spy: Final = sa.Table(
    "qc_spy",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("card", sa.Text, nullable=False),
    sa.Column("who", sa.Text, nullable=False),  # the supervisor's token name
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),  # listen | whisper | barge
    sa.Column("device", sa.Text, nullable=False),  # the supervisor's phone ChanSpy rang
    sa.Column("spyee", sa.Text, nullable=False),  # the operator's channel
    sa.Column("state", sa.Text, nullable=False),  # ringing | listening | done | failed
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("requested_at", EPOCH, nullable=False),
    sa.Column("started_at", EPOCH),  # ChanSpyStart
    sa.Column("ended_at", EPOCH),  # ChanSpyStop, or the spying channel's Hangup
    sa.Column("spyer_uniqueid", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_qc_spy_card", "card"),
)
"""Live listening: who listened in on a card's call, how (the ChanSpy mode) and how long."""

qc_grades: Final = sa.Table(
    "qc_grades",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("card", sa.Text, nullable=False),
    sa.Column("operator", sa.Text, nullable=False),  # operators[].id, else the member name
    sa.Column("interface", sa.Text, nullable=False, server_default=""),
    sa.Column("queue", sa.Text, nullable=False, server_default=""),
    sa.Column("graded_at", EPOCH, nullable=False),
    sa.Column("graded_by", sa.Text, nullable=False),  # the token's name
    sa.Column("score", EPOCH, nullable=False),  # 0-100 (a double, as the times)
    sa.Column("items", sa.Text, nullable=False),  # JSON: [{id, text, weight, met}]
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_qc_grades_card", "card"),
    sa.Index("ix_qc_grades_operator_graded_at", "operator", "graded_at"),
)
"""QC grades: a supervisor's score of a call against the checklist of that moment."""

report_runs: Final = sa.Table(
    "report_runs",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),  # reports.schedules[].name
    sa.Column("due_at", EPOCH, nullable=False),  # the last run claimed (its scheduled time)
    sa.Column("claimed_by", sa.Text, nullable=True),  # the instance that claimed it
    sa.Column("claimed_at", EPOCH, nullable=True),
    sa.Column("sent_at", EPOCH, nullable=True),  # null: not (yet) sent
    sa.Column("error", sa.Text, nullable=True),  # why the last claimed run was not sent
)
"""One row per scheduled report: the last run claimed, by one conditional UPDATE (`due_at <
the new run's`), so one run is sent once across restarts and instances."""
