"""One AMI connection: its requests (`Message`), what it writes back (responses, list items,
events; one socket write per loop iteration, the first bytes kept for `sent_bytes()`) and
whether an event passes its event classes and filters. The server that accepts connections
and fans events out is in `ami.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from .ami_filter import EventFilter

if TYPE_CHECKING:
    from .ami import AmiServer

RECORD_CAP = 4 * 1024 * 1024
"""Bytes kept per connection for `sent_bytes()`; later bytes are sent but not kept."""


class Message:
    """One AMI request: headers in order; lookups are case-insensitive, first value wins."""

    __slots__ = ("_first", "pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self._first: dict[str, str] = {}
        for key, value in pairs:
            self._first.setdefault(key.lower(), value)

    def get(self, name: str) -> str:
        return self._first.get(name.lower(), "")

    def all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.pairs if k.lower() == low]

    @property
    def action(self) -> str:
        return self.get("Action")



class _Plan:
    """A session's filters as they apply to one event name: `include_hit` / `exclude_hit`,
    a filter of the kind matches on the name alone (`name(X)` with no header or method);
    `includes` / `excludes`, the tests (`test(text)`) of the other filters of the kind that
    may match an event of this name (a legacy regex: its `search`), in the session's order."""

    __slots__ = ("exclude_hit", "excludes", "include_hit", "includes", "may_want")

    def __init__(self, name: str, includes: list[EventFilter],
                 excludes: list[EventFilter]) -> None:
        self.may_want = any(f.event_name is None or f.event_name == name for f in includes)
        self.include_hit, self.includes = _tests(name, includes)
        self.exclude_hit, self.excludes = _tests(name, excludes)


def _tests(name: str, filters: list[EventFilter]) -> tuple[bool, list[Callable[[str], object]]]:
    hit, tests = False, list[Callable[[str], object]]()
    for f in filters:
        if f.event_name is not None and f.event_name != name:
            continue  # EventFilter.matches: never for this name
        if f.header is None and f.method == "none":
            hit = True
        elif f.header is None and f.method == "regex" and f.regex is not None:
            tests.append(f.regex.search)  # EventFilter.matches on the whole text
        else:
            tests.append(partial(f.matches, name))
    return hit, tests


class AmiSession:
    """One AMI connection."""

    def __init__(self, index: int, writer: asyncio.StreamWriter, server: AmiServer) -> None:
        self.index = index
        self.writer = writer
        self.server = server
        self.authenticated = False
        self.username = ""
        self.event_classes: frozenset[str] | None = None  # None = all
        self.includes: list[EventFilter] = []
        self.excludes: list[EventFilter] = []
        self._plans: dict[str, _Plan] = {}
        self._plans_for = (0, 0)  # (len(includes), len(excludes)) the plans were made for
        self.record = bytearray()
        self.actions: list[str] = []
        """The name of every action received, in order (tests: what a client asked)."""
        self.closed = False
        self._out = bytearray()
        self._flush_handle: asyncio.Handle | None = None

    # -- writing -------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closed or self.server.half_open:
            return
        if len(self.record) < RECORD_CAP:
            self.record += data
        self._out += data  # one socket write per loop iteration, not one per event
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        # is_closing: the peer went away (uvloop raises on a write to a closed transport).
        if self._out and not self.closed and not self.writer.is_closing():
            self.writer.write(bytes(self._out))
        self._out.clear()

    def respond(self, msg: Message, response: str, message: str | None, extra: str = "") -> None:
        aid = msg.get("ActionID")
        head = f"Response: {response}\r\n" + (f"ActionID: {aid}\r\n" if aid else "")
        body = f"Message: {message}\r\n" if message is not None else ""
        self.write(f"{head}{body}{extra}\r\n".encode())

    def ok(self, msg: Message, message: str | None) -> None:
        self.respond(msg, "Success", message)

    def error(self, msg: Message, message: str) -> None:
        self.respond(msg, "Error", message)

    def list_start(self, msg: Message, message: str) -> None:
        aid = msg.get("ActionID")
        idline = f"ActionID: {aid}\r\n" if aid else ""
        self.write(f"Response: Success\r\n{idline}EventList: start\r\nMessage: {message}\r\n\r\n"
                   .encode())

    def list_item(self, msg: Message, event: str, body: str, id_first: bool = False) -> None:
        aid = msg.get("ActionID")
        idline = f"ActionID: {aid}\r\n" if aid else ""
        if id_first:
            self.write(f"Event: {event}\r\n{idline}{body}\r\n".encode())
        else:
            self.write(f"Event: {event}\r\n{body}{idline}\r\n".encode())

    def list_complete(self, msg: Message, event: str, count: int) -> None:
        aid = msg.get("ActionID")
        idline = f"ActionID: {aid}\r\n" if aid else ""
        self.write(f"Event: {event}\r\n{idline}EventList: Complete\r\nListItems: {count}\r\n\r\n"
                   .encode())

    # -- events --------------------------------------------------------------------------
    def may_want(self, name: str) -> bool:
        """Cheap pre-check before an event is formatted (name-only include filters)."""
        if not self.includes or self.excludes:
            return True
        return self._plan(name).may_want

    def should_send(self, name: str, text: str) -> bool:
        """manager.c `should_send_event`."""
        plan = self._plan(name)
        if self.includes and not plan.include_hit:
            for test in plan.includes:
                if test(text):
                    break
            else:
                return False
        if plan.exclude_hit:
            return False
        for test in plan.excludes:  # noqa: SIM110 - a loop, not any(genexpr): once per event
            if test(text):
                return False
        return True

    def _plan(self, name: str) -> _Plan:
        """The filters that can match an event named `name` (kept per name until a filter is
        added)."""
        seen = (len(self.includes), len(self.excludes))
        if seen != self._plans_for:
            self._plans.clear()
            self._plans_for = seen
        plan = self._plans.get(name)
        if plan is None:
            plan = self._plans[name] = _Plan(name, self.includes, self.excludes)
        return plan

    def close(self) -> None:
        if not self.closed:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self.flush()
            self.closed = True
            self.writer.close()

