"""Server-sent events: a hub of topics ("wallboard", "operator:<id>") and the stream handler.

`publish()` never blocks: a subscriber whose queue is full (a stalled browser) is dropped and
its stream ends; EventSource reconnects and gets the retained last message of the topic first.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from ccrouter.web.api import dumps

QUEUE_MAX: Final = 64


@dataclass(frozen=True, slots=True)
class Message:
    event: str
    data: str

    def encode(self) -> bytes:
        lines = "".join(f"data: {line}\n" for line in self.data.split("\n"))
        return f"event: {self.event}\n{lines}\n".encode()


class Hub:
    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue[Message | None]]] = {}
        self._retained: dict[str, Message] = {}
        self._closed = False
        self.dropped = 0

    def publish(self, topic: str, event: str, data: object, *, retain: bool = False) -> None:
        self.publish_text(topic, event, dumps(data), retain=retain)

    def publish_text(self, topic: str, event: str, text: str, *, retain: bool = False) -> None:
        """Publish data already serialised to JSON (once, for every subscriber)."""
        msg = Message(event, text)
        if retain:
            self._retained[topic] = msg
        for q in list(self._subs.get(topic, ())):
            try:
                q.put_nowait(msg)
            except asyncio.QueueFull:
                self.dropped += 1
                self._subs[topic].discard(q)
                with contextlib.suppress(asyncio.QueueFull):
                    q.get_nowait()
                    q.put_nowait(None)

    def forget(self, topic: str) -> None:
        """Drop the topic's retained message (it would be stale)."""
        self._retained.pop(topic, None)

    def subscribers(self, topic: str) -> int:
        return len(self._subs.get(topic, ()))

    def subscribe(self, topic: str) -> asyncio.Queue[Message | None]:
        q: asyncio.Queue[Message | None] = asyncio.Queue(QUEUE_MAX)
        if self._closed:
            q.put_nowait(None)
            return q
        retained = self._retained.get(topic)
        if retained is not None:
            q.put_nowait(retained)
        self._subs.setdefault(topic, set()).add(q)
        return q

    def unsubscribe(self, topic: str, q: asyncio.Queue[Message | None]) -> None:
        self._subs.get(topic, set()).discard(q)

    def close(self) -> None:
        """End every stream (at shutdown)."""
        self._closed = True
        for subs in self._subs.values():
            for q in subs:
                with contextlib.suppress(asyncio.QueueFull):
                    while not q.empty():
                        q.get_nowait()
                    q.put_nowait(None)
        self._subs.clear()


async def sse(request: web.Request, hub: Hub, topic: str, keepalive_s: float) -> web.StreamResponse:
    """Stream `topic` to the client until it goes away or the hub closes."""
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    q = hub.subscribe(topic)
    try:
        await resp.prepare(request)
        await resp.write(b"retry: 1000\n\n")
        while True:
            try:
                async with asyncio.timeout(keepalive_s):
                    msg = await q.get()
            except TimeoutError:
                await resp.write(b": keepalive\n\n")
                continue
            if msg is None:
                break
            await resp.write(msg.encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        hub.unsubscribe(topic, q)
    return resp
