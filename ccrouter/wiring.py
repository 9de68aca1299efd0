"""The features' declarations, registered with the core they extend.

The core offers seams a feature plugs into without the core knowing it: config sections
(`ccrouter.config.sections`), card fields and their columns (`ccrouter.calls.fields`; a
feature's own tables join the card store's metadata when its `tables` module is imported) and
migrations directories (`ccrouter.db.migrate.add_version_location`).
This module is the one place that names what each feature adds there; `register()` adds it
(idempotent). It runs when this module is imported, which `ccrouter.app` and `ccrouter.cli`
do, so anything that loads the settings or opens the database through them sees every
feature. The demo's per-feature figures are listed here too (`demo_figures`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ccrouter.calls.fields import add_card_fields
from ccrouter.config.sections import add_section
from ccrouter.db.migrate import add_version_location

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ccrouter.config import Settings


def register() -> None:
    """Add every feature's declarations to the core's registries (again: no-op)."""
    from ccrouter.callbacks import tables as callback_tables
    from ccrouter.callbacks.config import SECTION as callbacks

    add_section(callbacks)
    add_card_fields(callback_tables.CARD_COLUMNS, links=callback_tables.LINK_COLUMNS)
    add_version_location(Path(callback_tables.__file__).with_name("migrations"))


class DemoFigures(Protocol):
    """What a feature adds to the demo: a `column` of the per-queue table (`per_queue`), and a
    group `label` of the live status (`status`: name -> count, in the order shown)."""

    column: str
    label: str

    async def per_queue(self, engine: AsyncEngine, settings: Settings, since: float
                        ) -> Mapping[str, int]: ...  # fmt: skip

    async def status(self, engine: AsyncEngine, since: float) -> Mapping[str, int]: ...


def demo_figures() -> Sequence[DemoFigures]:
    """The features' figures in the demo's table and status, in column order."""
    from ccrouter.callbacks.report import FIGURES as callbacks

    return (callbacks,)


register()
