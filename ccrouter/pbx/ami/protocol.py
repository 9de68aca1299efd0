"""A faster AMI wire parser plugged into panoramisk through its `protocol_factory`.

panoramisk 1.4 decodes every chunk, builds a case-insensitive `Message` for every event and
matches it against fnmatch patterns: about 45 000 events/s here. This protocol splits the raw
bytes on the blank line itself, hands events to one sink as plain dicts (keys exactly as Asterisk
spells them; a repeated header becomes a list), and builds panoramisk `Message` objects only for
replies to actions, so panoramisk's action futures keep working unchanged. A read holding more
than MESSAGES_PER_TURN messages is handled that many per turn of the event loop, reading paused
meanwhile, so FastAGI sessions get their turns in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from sys import intern
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

AmiMessage = dict[str, Any]
EventSink = Callable[[AmiMessage], None]

_SEP = b"\r\n\r\n"
_BANNER = "Asterisk Call Manager/"
MESSAGES_PER_TURN = 16
"""Messages handled per turn of the event loop. One read can hold thousands (256 KB after the
loop was busy a moment: ~1 000 events, 30-50 ms of tracker work measured at ~1 300 calls/s);
handled in one loop turn they held up every FastAGI accept and reply behind them, so the rest
waits in order for the next turns while reading is paused. 16 (~0.2 ms at ~10 us a message)
rather than 64: at ~1 250 calls/s AMI handling was over a quarter of the loop's busy stretches
longer than 5 ms (py-spy), and a FastAGI hop ready meanwhile waits for the turn in progress."""


class Headers(dict[str, str]):
    """A parsed message in which every header came once, so every value is a str: readers
    (`ccrouter.pbx.ami.translate`) can skip checking for the list a repeated header gives."""

    __slots__ = ()


def parse_block(block: bytes) -> AmiMessage:
    """One AMI message (without its terminating blank line) -> dict of headers.

    The common case takes one split per line and one dict (a `Headers`): every line holds
    ": " and no header repeats. Otherwise (a line without ": " makes `dict` raise ValueError,
    a repeated header makes the dict shorter than the line list) the line-by-line reference
    decides, so both paths agree by construction: the key is what precedes a line's first
    ": ", the value all that follows.
    """
    text = block.decode("utf-8", "replace")
    lines = text.split("\r\n")
    try:
        msg: AmiMessage = Headers([line.split(": ", 1) for line in lines])
    except ValueError:
        return _parse_block_slow(text)
    if len(msg) != len(lines):
        return _parse_block_slow(text)
    return msg


def _parse_block_slow(text: str) -> AmiMessage:
    msg: AmiMessage = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":") and line[:-1] and " " not in line:  # "Header:" with no value
                key, value = line[:-1], ""
            else:
                continue
        old = msg.get(key)
        if old is None:
            msg[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            msg[key] = [old, value]
    return msg


class ReplyMessage(Message):  # type: ignore[misc]  # panoramisk has no type hints
    """A panoramisk `Message` over the parsed headers themselves.

    panoramisk's own Message copies every header into a lower-cased key -> (key, value) store:
    about 4 KB per QueueStatus item, 100+ MB for a 5 000-operator floor. This one keeps the
    parsed dict as it came (keys as Asterisk spells them) and looks a key up case-insensitively
    only when the exact spelling misses (panoramisk asks for `event`, `response`, ...).
    """

    def __init__(self, headers: AmiMessage) -> None:  # no super().__init__: nothing to copy
        self._store = headers
        self.manager = None

    def _key(self, key: str) -> str:
        store = self._store
        if key in store:
            return key
        low = key.lower()
        exact = _CANONICAL.get(low)
        if exact is not None and exact in store:
            return exact
        for name in store:
            if name.lower() == low:
                return str(name)
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        return self._store[self._key(key)]

    def __setitem__(self, key: str, value: Any) -> None:
        with contextlib.suppress(KeyError):
            key = self._key(key)
        self._store[key] = value

    def __delitem__(self, key: str) -> None:
        del self._store[self._key(key)]

    def __contains__(self, key: object) -> bool:
        try:
            self._key(str(key))
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def copy(self) -> ReplyMessage:
        return ReplyMessage(dict(self._store))

    def lower_items(self) -> Iterator[tuple[str, Any]]:
        return ((k.lower(), v) for k, v in self._store.items())


_CANONICAL = {name.lower(): name for name in (
    "Event", "Response", "Message", "ActionID", "CommandID", "EventList", "SubEvent", "Async",
)}  # fmt: skip
"""The headers panoramisk reads by lower-case attribute (`msg.event`, `resp.message`, ...)."""


class FastAMIProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk has no type hints
    """Set `sink` before data arrives; `version` holds the banner's AMI version."""

    sink: EventSink | None = None
    version: str | None = None
    max_buffer: int = 4 * 1024 * 1024

    transport: Any = None  # panoramisk sets it in connection_made
    _backlog: deque[bytes] | None = None
    """Complete messages read but not handled yet (more than MESSAGES_PER_TURN came at once)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._buf = b""

    def connection_lost(self, exc: Exception | None) -> None:
        while self._backlog:  # what was read before the loss is still handled, in order
            self._handle(self._turn())
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if self.version is None and buf.startswith(_BANNER.encode()):
            line, sep, buf = buf.partition(b"\r\n")
            if not sep:  # banner not complete yet
                self._buf = line
                return
            self.version = line.decode("ascii", "replace")[len(_BANNER) :].strip()
        blocks = buf.split(_SEP)
        self._buf = blocks.pop()
        if len(self._buf) > self.max_buffer:  # a peer that never ends a message
            self.log.error("ami_message_too_large", size=len(self._buf))
            self._buf = b""
            self.transport.close()
            return
        if self._backlog:  # an earlier read is still being handled: keep the order
            self._backlog.extend(blocks)
            return
        if len(blocks) > MESSAGES_PER_TURN and self.transport is not None:
            self._backlog = deque(blocks)
            self.transport.pause_reading()
            self._next_turn()  # this turn's share now, the rest in the next turns
            return
        self._handle(blocks)

    def _turn(self) -> list[bytes]:
        """The next MESSAGES_PER_TURN messages of the backlog (taken out of it)."""
        backlog = self._backlog
        assert backlog is not None
        return [backlog.popleft() for _ in range(min(len(backlog), MESSAGES_PER_TURN))]

    def _next_turn(self) -> None:
        if not self._backlog:
            return
        blocks = self._turn()
        if self._backlog:
            asyncio.get_running_loop().call_soon(self._next_turn)
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        self._handle(blocks)

    def _handle(self, blocks: list[bytes]) -> None:
        responses, sink = self.responses, self.sink
        for block in blocks:
            if not block:
                continue
            msg = parse_block(block)
            action_id = msg.get("ActionID")  # most events have none
            if action_id is not None and isinstance(action_id, str) and action_id in responses:
                # (a repeated ActionID: a list, no match). Keys interned: a list reply holds
                # thousands of items with the same 15-20 header names.
                reply = ReplyMessage({intern(k): v for k, v in msg.items()})
                self._deliver(responses[action_id], reply)
            elif "Event" in msg:
                if sink is not None:
                    sink(msg)
            elif "Response" in msg:
                self.log.debug("ami_unmatched_response", response=msg.get("Response"))

    def _deliver(self, action: Any, reply: ReplyMessage) -> None:
        """A reply to a pending action. panoramisk completes a list action only once a second
        message came, so a list action whose only reply is `Response: Error` (QueueStatus while
        Asterisk still boots: app_queue not loaded yet) would wait forever: it ends here with
        that one reply (as a one-item list, like any list action's result)."""
        if action.as_list and not action.responses and reply.get("Response") == "Error":
            for key in (action.id, action.action_id):
                self.responses.pop(key, None)
            if not action.future.done():
                action.future.set_result([reply])
            return
        self.handle_message(reply)
