"""The doctor's AMI client: one plain connection that keeps every event it reads, so a check
can ask what arrived (FullyBooted after Login, the test call's UserEvent and ChanVariables),
and answers each action with its response and, for list actions, the items up to the
`...Complete` event. Repeated headers (Command's `Output:`) are kept in order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

Message = dict[str, list[str]]


def first(msg: Message, key: str) -> str:
    values = msg.get(key)
    return values[0] if values else ""


class AmiClosed(ConnectionError):
    """Asterisk closed the connection (e.g. after a refused Login)."""


class AmiProbe:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 banner: str, timeout: float) -> None:
        self._reader, self._writer = reader, writer
        self.banner = banner
        self.timeout = timeout
        self.events: list[Message] = []
        self._replies: dict[str, asyncio.Queue[Message]] = {}
        self._new_event = asyncio.Event()
        self._ids = itertools.count(1)
        self._lists: set[str] = set()
        self._task = asyncio.get_running_loop().create_task(self._read())
        self.closed = False

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float) -> AmiProbe:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        banner = await asyncio.wait_for(reader.readline(), timeout)
        return cls(reader, writer, banner.decode("utf-8", "replace").strip(), timeout)

    async def _read(self) -> None:
        try:
            while True:
                block = await self._reader.readuntil(b"\r\n\r\n")
                msg: Message = {}
                for line in block.decode("utf-8", "replace").split("\r\n"):
                    key, sep, value = line.partition(":")
                    if sep:  # `Output:` lines keep their indentation (CLI columns)
                        key = key.strip()
                        text = value.removeprefix(" ") if key == "Output" else value.strip()
                        msg.setdefault(key, []).append(text)
                aid = first(msg, "ActionID")
                queue = self._replies.get(aid)
                # An action's reply is its Response, and for a list action the items too;
                # anything else with its ActionID (an Async Originate's response) is an event.
                if queue is not None and ("Event" not in msg or aid in self._lists):
                    queue.put_nowait(msg)
                elif "Event" in msg:
                    self.events.append(msg)
                    self._new_event.set()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            for queue in self._replies.values():
                queue.put_nowait({})

    async def _send(self, action: str, headers: dict[str, str],
                    is_list: bool = False) -> asyncio.Queue[Message]:
        aid = f"doctor-{next(self._ids)}"
        if is_list:
            self._lists.add(aid)
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._replies[aid] = queue
        if self.closed:
            queue.put_nowait({})
            return queue
        lines = [f"Action: {action}", f"ActionID: {aid}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        return queue

    def _done(self, queue: asyncio.Queue[Message]) -> None:
        """Later messages with this ActionID are events (an Async Originate's response)."""
        for aid, q in list(self._replies.items()):
            if q is queue:
                del self._replies[aid]
                self._lists.discard(aid)

    async def _next(self, queue: asyncio.Queue[Message]) -> Message:
        msg = await asyncio.wait_for(queue.get(), self.timeout)
        if not msg:
            raise AmiClosed("Asterisk closed the AMI connection")
        return msg

    async def action(self, action: str, **headers: str) -> Message:
        """The response to one action (`Response: Success|Error`, `Message`, ...)."""
        queue = await self._send(action, headers)
        try:
            return await self._next(queue)
        finally:
            self._done(queue)

    async def list_action(self, action: str, **headers: str) -> tuple[Message, list[Message]]:
        """The response and, when it starts a list, every item up to its Complete event."""
        queue = await self._send(action, headers, is_list=True)
        try:
            response = await self._next(queue)
            items: list[Message] = []
            if (first(response, "Response") != "Success"
                    or first(response, "EventList") != "start"):
                return response, items
            while True:
                msg = await self._next(queue)
                if first(msg, "EventList").lower() == "complete":
                    return response, items
                items.append(msg)
        finally:
            self._done(queue)

    async def wait_event(self, match: Callable[[Message], bool], timeout: float) -> Message | None:
        """The first event (already read or arriving within `timeout`) that `match`es."""
        loop = asyncio.get_running_loop()
        deadline, seen = loop.time() + timeout, 0
        while True:
            for msg in self.events[seen:]:
                if match(msg):
                    return msg
            seen = len(self.events)
            left = deadline - loop.time()
            if left <= 0:
                return None
            self._new_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), left)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
