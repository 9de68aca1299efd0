"""From AMI to the card: the recording's path, start, end and size.

MixMonitor sets MIXMONITOR_FILENAME on the recorded channel (a `VarSet` event) right before
`MixMonitorStart`, which carries no file name; there is no `MixMonitorStop` when the call
hangs up, so the recording ends with that channel's `Hangup`. The file's size is read then
(`recordings.read_directory`); none on disk (MixMonitor option `b`: nothing was bridged) leaves
the card without a recording, with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ccrouter.config.recordings import RecordingSettings
from ccrouter.db.write_queue import WriteQueue
from ccrouter.pbx import events as ev
from ccrouter.recordings.model import card_of, local_path
from ccrouter.recordings.store import RecordingStore

log = structlog.get_logger(__name__)

NoteCard = Callable[[str, dict[str, Any]], None]
"""`tracker.note(uniqueid, fields)`: sets the card's `recording` column."""


class RecordingService:
    def __init__(self, store: RecordingStore, settings: RecordingSettings,
                 note: NoteCard | None = None) -> None:  # fmt: skip
        self.store = store
        self.settings = settings
        self._note = note
        self._names: dict[str, str] = {}  # uniqueid -> MIXMONITOR_FILENAME
        self._active: dict[str, tuple[str, str]] = {}  # uniqueid -> (card, path)
        self._writes = WriteQueue("recording")

    def local(self, path: str) -> str | None:
        s = self.settings
        return local_path(path, s.directory, s.read_directory)

    def on_event(self, e: ev.DomainEvent) -> None:
        if isinstance(e, ev.RecordingNamed):
            self._names[e.chan.uniqueid] = e.filename
        elif isinstance(e, ev.RecordingStarted):
            self._started(e)
        elif isinstance(e, ev.ChannelHungUp) and e.uniqueid in self._active:
            card, path = self._active.pop(e.uniqueid)
            self._names.pop(e.uniqueid, None)
            self._submit(lambda: self._finish(card, path, e.at))
        elif isinstance(e, ev.ChannelHungUp):
            self._names.pop(e.uniqueid, None)

    def _started(self, e: ev.RecordingStarted) -> None:
        path = self._names.pop(e.chan.uniqueid, "")
        card = card_of(path) if path else None
        if not path or card is None:
            log.warning("recording_unnamed", uniqueid=e.chan.uniqueid, file=path,
                        why="no MIXMONITOR_FILENAME of a ccrouter recording before MixMonitorStart")
            return
        if e.chan.card and e.chan.card != card:
            log.warning("recording_card_mismatch", file=path, channel_card=e.chan.card)
        self._active[e.chan.uniqueid] = (card, path)
        if self._note is not None:
            self._note(e.chan.uniqueid, {"recording": path})
        self._submit(lambda: self.store.started(card, path, e.chan.uniqueid, e.at))

    async def _finish(self, card: str, path: str, at: float) -> None:
        local = self.local(path)
        size: int | None = None
        reason = ""
        try:
            size = os.stat(local).st_size if local else None
            if local is None:
                reason = f"{path} is not in recordings.directory {self.settings.directory}"
        except FileNotFoundError:
            reason = "no file: nothing was recorded (the call was not answered)"
        except OSError as exc:
            reason = f"cannot read {local}: {exc.strerror}"
        await self.store.finished(card, at, size, reason)
        log.info("recording_finished", card=card, size=size, reason=reason or None)

    def _submit(self, job: Callable[[], Awaitable[None]]) -> None:
        self._writes.submit(job)

    async def drained(self) -> None:
        """Until every event so far is in the database (tests)."""
        await self._writes.drained()

    async def run(self) -> None:
        await self._writes.run()
