"""Card fields a feature adds: the field names the call book accepts and the `cards` columns
that store them, added together (so `CARD_FIELDS` and the table never disagree)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ccrouter.calls.model.cards import add_card_fields as add_field_names
from ccrouter.db.tables import add_card_columns


def add_card_fields(columns: Iterable[sa.Column[Any]], links: Iterable[str] = ()) -> None:
    """`columns` join the cards (nullable, written like any card field); `links`: those among
    them holding another card's number (`LINK_FIELDS`)."""
    columns = tuple(columns)
    add_card_columns(*columns)
    add_field_names((c.name for c in columns), links)
