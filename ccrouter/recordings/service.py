"""From AMI to the card: the recording's path, start, end and size.

MixMonitor sets MIXMONITOR_FILENAME on the recorded channel (a `VarSet` event) right before
`MixMonitorStart`, which carries no file name; there is no `MixMonitorStop` when the call
hangs up, so the recording ends with that channel's `Hangup`. The file's size is read then
(`recordings.read_directory`); none on disk (MixMonitor option `b`: nothing was bridged) leaves
the card without a recording, with the reason.

A transfer (`CallTransferred`) leaves MixMonitor running on the caller's channel, writing the
same file (app_mixmonitor's audiohook stays on the channel as it leaves the bridge; option `b`
writes only while the caller is bridged again). An attended transfer bridges the caller with
the target at once: the file is linked from the transfer card then. A blind one sends the
caller through the dialplan: reaching ccrouter-record under its transfer card, it gets
StopMixMonitor (`MixMonitorStop`: the rows of the file so far end now) and a MixMonitor named
after the new card, whose `MixMonitorStart` gives the transfer card a file of its own; answered
without that (a queue not recorded), the first file is linked at its `AgentConnect`. Every row
of a channel's file ends when the channel hangs up.
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
LiveCard = Callable[[str], str | None]
"""The card of the live call on a channel (by uniqueid), None when there is none."""


class RecordingService:
    def __init__(self, store: RecordingStore, settings: RecordingSettings,
                 note: NoteCard | None = None,
                 live_card: LiveCard | None = None) -> None:  # fmt: skip
        self.store = store
        self.settings = settings
        self._note = note
        self._live_card = live_card
        self._names: dict[str, str] = {}  # uniqueid -> MIXMONITOR_FILENAME
        self._active: dict[str, list[tuple[str, str]]] = {}  # uniqueid -> [(card, path)]
        self._moved: dict[str, str] = {}  # uniqueid -> a blind transfer's card, not yet bridged
        self._writes = WriteQueue("recording")

    def local(self, path: str) -> str | None:
        s = self.settings
        return local_path(path, s.directory, s.read_directory)

    def on_event(self, e: ev.DomainEvent) -> None:
        if isinstance(e, ev.RecordingNamed):
            self._names[e.chan.uniqueid] = e.filename
        elif isinstance(e, ev.RecordingStarted):
            self._moved.pop(e.chan.uniqueid, None)
            self._started(e)
        elif isinstance(e, ev.RecordingStopped):
            self._end(e.chan.uniqueid, e.at)
        elif isinstance(e, ev.CallTransferred):
            self._transferred(e)
        elif isinstance(e, ev.AgentAnswered) and e.chan.uniqueid in self._moved:
            self._link(e.chan.uniqueid, self._moved.pop(e.chan.uniqueid), e.at)
        elif isinstance(e, ev.ChannelHungUp):
            self._names.pop(e.uniqueid, None)
            self._moved.pop(e.uniqueid, None)
            self._end(e.uniqueid, e.at)

    def _end(self, uniqueid: str, at: float) -> None:
        for card, path in self._active.pop(uniqueid, ()):
            self._submit(self._finisher(card, path, at))

    def _finisher(self, card: str, path: str, at: float) -> Callable[[], Awaitable[None]]:
        return lambda: self._finish(card, path, at)

    def _transferred(self, e: ev.CallTransferred) -> None:
        """The transferred caller's file goes on: linked from the transfer card once the
        caller is bridged again (an attended transfer: now)."""
        uniqueid = e.transferee.uniqueid if e.transferee is not None else ""
        if uniqueid not in self._active or self._live_card is None:
            return
        card = self._live_card(uniqueid)
        if card is None or any(c == card for c, _ in self._active[uniqueid]):
            return
        if e.kind == "attended":
            self._link(uniqueid, card, e.at)
        else:
            self._moved[uniqueid] = card

    def _link(self, uniqueid: str, card: str, at: float) -> None:
        active = self._active.get(uniqueid)
        if not active:
            return
        path = active[-1][1]
        active.append((card, path))
        if self._note is not None:
            self._note(uniqueid, {"recording": path})
        self._submit(lambda: self.store.started(card, path, uniqueid, at))

    def _started(self, e: ev.RecordingStarted) -> None:
        path = self._names.pop(e.chan.uniqueid, "")
        card = card_of(path) if path else None
        if not path or card is None:
            log.warning("recording_unnamed", uniqueid=e.chan.uniqueid, file=path,
                        why="no MIXMONITOR_FILENAME of a ccrouter recording before MixMonitorStart")
            return
        if e.chan.card and e.chan.card != card:
            log.warning("recording_card_mismatch", file=path, channel_card=e.chan.card)
        self._active[e.chan.uniqueid] = [(card, path)]
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
