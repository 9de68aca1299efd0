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
from typing import TYPE_CHECKING, Final, Protocol

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


# The features' commands: command -> (module adding its parser, that function, help). Only the
# module of the command run is imported (`ccrouter operator login` needs neither aiohttp nor
# a feature's service); every other gets a parser with just its help line, for `--help`.
FEATURE_COMMANDS: Final[dict[str, tuple[str, str, str]]] = {
    "incident": ("ccrouter.ivr.cli", "add_parser", "set, list or clear incident announcements"),
    "callback": ("ccrouter.callbacks.cli", "add_parsers", "list or cancel callback requests"),
    "outbound": ("ccrouter.callbacks.cli", "add_parsers",
                 "schedule or list outbound calls (reminders)"),
    "token": ("ccrouter.web.cli", "add_parser", "create, list or revoke HTTP API tokens"),
    "operator": ("ccrouter.routing.cli", "add_parser",
                 "log operators in/out, pause them, change their skills"),
    "import": ("ccrouter.importer.cli", "add_parser",
               "write a starter config from an existing Asterisk's queues (AMI or queues.conf)"),
    "recordings": ("ccrouter.recordings.cli", "add_parser",
                   "prune call recordings older than recordings.keep_days (--dry-run: list)"),
    "doctor": ("ccrouter.doctor.cli", "add_parser",
               "check a running Asterisk against the config; exit 1 on any failed check"),
    "report": ("ccrouter.digest.cli", "add_parser",
               "scheduled KPI report mail: send one now (report send NAME), list them"),
    "cluster": ("ccrouter.cluster.cli", "add_parser",
                "several instances: which one serves which Asterisk node (exit 1: one unserved)"),
}  # fmt: skip


register()
