"""Call cards: the number a caller can quote, the fields, the outcomes, the writes.

A card number is a decimal serial followed by a Damm check digit: all digits (a caller can
type it on the keypad), short, and every single-digit typo or adjacent swap is caught.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

# Damm's quasigroup of order 10 (H. M. Damm, 2004): weakly totally anti-symmetric.
_DAMM: Final = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

CARD_SERIAL_DIGITS: Final = 6
"""Serials are zero-padded to this many digits (then grow): card numbers are 7+ digits."""


def damm_digit(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def card_number(serial: int) -> str:
    """The card number for a serial: zero-padded serial + Damm check digit."""
    if serial < 1:
        raise ValueError(f"card serial must be positive, got {serial}")
    body = f"{serial:0{CARD_SERIAL_DIGITS}d}"
    return body + str(damm_digit(body))


def is_valid_card_number(text: str) -> bool:
    """True when `text` (e.g. DTMF input) is a well-formed card number with a right check digit."""
    return (
        len(text) > CARD_SERIAL_DIGITS
        and text.isascii()
        and text.isdigit()
        and damm_digit(text) == 0
    )


def card_serial(number: str) -> int:
    if not is_valid_card_number(number):
        raise ValueError(f"not a valid card number: {number!r}")
    return int(number[:-1])


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    SHORT_ABANDON = "short_abandon"
    IVR_ONLY = "ivr_only"
    OUT_OF_HOURS = "out_of_hours"
    OVERFLOW = "overflow"  # left the queue on timeout / no members (the dialplan's next step)
    FAILED = "failed"  # routing error, or the call ended in a way we could not classify
    LOST = "lost"  # the call vanished from Asterisk (restart, crash) before it ended


class CardState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CloseReason(StrEnum):
    NORMAL = "normal"
    RECONCILED = "reconciled"  # closed at start-up/resync: the call no longer exists in Asterisk
    LOST_ON_PBX_RESTART = "lost_on_pbx_restart"
    INCOMPLETE = "incomplete"  # closed after a grace period with some events missing


class CardKind(StrEnum):
    """The core's kind of card; a leg a feature originates (`CallBook.open_leg`) carries the
    kind that feature gives it."""

    INBOUND = "inbound"
    TRANSFER = "transfer"  # the part of a call after an operator transferred it (transfer_of)


# The columns of the `cards` table (ccrouter/db/tables.py) that the domain writes: the core's
# below, and those features add (`add_card_fields`; `ccrouter.calls.fields` adds the columns).
CARD_FIELDS: Final[set[str]] = set(
    {
        "number",
        "kind",
        "state",
        "uniqueid",
        "linkedid",
        "channel",
        "caller_num",
        "caller_name",
        "dialled",
        "started_at",
        "answered_at",
        "ended_at",
        "ivr_path",  # JSON list of steps
        "language",
        "product",
        "target",
        "queue",
        "wait_s",
        "ring_s",
        "talk_s",
        "operator",  # the member name
        "interface",  # e.g. PJSIP/1001
        "outcome",
        "end_reason",  # AgentComplete Reason (agent/caller/transfer) or hang-up cause text
        "close_reason",
        "escalation",
        "priority",
        "topic",
        "resolution",
        "notes",
        "csat",
        "recording",
        "repeat_of",
        "last_agent_hit",
        "caller_email",  # the caller's e-mail (operator form, API): ticket mails go there
        "ticket_id",  # the helpdesk feature: the latest ticket's id in the helpdesk
        "ticket_url",
        "ticket_status",  # pending/open/in_progress/resolved/failed
        "node",  # the Asterisk node the call ran on (asterisk.node / asterisk.nodes[].name)
        "completed_at",  # after-call work: when topic and resolution were first both saved
        "transfer_of",  # a transfer card: the card of the call part before the transfer
    }
)


LINK_FIELDS: Final[list[str]] = ["repeat_of", "transfer_of"]
"""Card fields that hold another card's number (a card is shown with the cards it points at
and those pointing at it); features add theirs."""


def add_card_fields(names: Iterable[str], links: Iterable[str] = ()) -> None:
    """Fields a feature adds to every card; `links`: those among them that hold a card number."""
    CARD_FIELDS.update(names)
    for name in links:
        if name not in CARD_FIELDS:
            raise ValueError(f"link field {name!r} is no card field")
        if name not in LINK_FIELDS:
            LINK_FIELDS.append(name)


@dataclass(frozen=True, slots=True)
class CardWrite:
    """One change to one card. `insert` opens the row; later writes update it by `number`."""

    number: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    insert: bool = False

    def __post_init__(self) -> None:
        if not CARD_FIELDS.issuperset(self.fields):
            unknown = set(self.fields) - CARD_FIELDS
            raise ValueError(f"unknown card fields: {sorted(unknown)}")
