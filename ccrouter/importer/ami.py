"""A running Asterisk's queues over AMI: Login (`Events: off`), `QueueStatus`, Logoff.

One short connection of its own (not the daemon's supervised client): the reply is the list
of `QueueParams` (Queue, Strategy) and `QueueMember` (Queue, Name, Location, StateInterface,
Membership, Penalty) events ending in `QueueStatusComplete`, as in the recorded
`ami-actions.txt`. Every failure is an `AmiImportError` saying what went wrong.
"""

from __future__ import annotations

import asyncio

from ccrouter.importer.model import ImportedMember, ImportedQueue


class AmiImportError(Exception):
    pass


Message = dict[str, str]


def _parse(block: bytes) -> Message:
    out: Message = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep and key not in out:
            out[key] = value.removeprefix(" ")
    return out


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float) -> None:  # fmt: skip
        self.reader, self.writer, self.timeout = reader, writer, timeout

    async def send(self, headers: Message) -> None:
        text = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(text.encode())
        await self.writer.drain()

    async def message(self, action_id: str) -> Message:
        """The next message answering `action_id` (events without it are skipped)."""
        while True:
            try:
                block = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), self.timeout)
            except asyncio.IncompleteReadError:
                raise AmiImportError("Asterisk closed the AMI connection") from None
            except TimeoutError:
                raise AmiImportError(f"no answer from Asterisk within {self.timeout:g} s") from None
            msg = _parse(block)
            if msg.get("ActionID") == action_id:
                return msg


def _queues(items: list[Message]) -> list[ImportedQueue]:
    order: dict[str, str] = {}
    members: dict[str, list[ImportedMember]] = {}
    for item in items:
        queue = item.get("Queue", "")
        if item.get("Event") == "QueueParams":
            order[queue] = item.get("Strategy", "ringall")
            members.setdefault(queue, [])
        elif item.get("Event") == "QueueMember":
            penalty = item.get("Penalty", "0")
            members.setdefault(queue, []).append(ImportedMember(
                interface=item.get("Location", ""), name=item.get("Name", ""),
                penalty=int(penalty) if penalty.lstrip("-").isdigit() else 0,
                state_interface=item.get("StateInterface", ""),
                static=item.get("Membership") == "static",
            ))  # fmt: skip
    return [ImportedQueue(q, order.get(q, "ringall"), tuple(ms)) for q, ms in members.items()]


async def read_queues_ami(host: str, port: int, username: str, secret: str,
                          timeout: float = 10.0) -> list[ImportedQueue]:  # fmt: skip
    where = f"AMI {host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise AmiImportError(f"{where}: cannot connect: {exc or 'timed out'}") from None
    s = _Session(reader, writer, timeout)
    try:
        try:
            banner = await asyncio.wait_for(reader.readline(), timeout)
        except TimeoutError:
            raise AmiImportError(f"{where}: no banner within {timeout:g} s") from None
        if not banner.startswith(b"Asterisk Call Manager"):
            raise AmiImportError(f"{where}: not an Asterisk manager (banner {banner[:60]!r})")
        await s.send({"Action": "Login", "ActionID": "import-1", "Username": username,
                      "Secret": secret, "Events": "off"})  # fmt: skip
        reply = await s.message("import-1")
        if reply.get("Response") != "Success":
            raise AmiImportError(f"{where}: login as {username!r} refused: "
                                 f"{reply.get('Message', 'no reason given')}")  # fmt: skip
        await s.send({"Action": "QueueStatus", "ActionID": "import-2"})
        reply = await s.message("import-2")
        if reply.get("Response") != "Success":
            hint = (" (app_queue not loaded, or Asterisk still booting)"
                    if "unknown command" in reply.get("Message", "").lower() else "")
            raise AmiImportError(f"{where}: QueueStatus refused: "
                                 f"{reply.get('Message', 'no reason given')}{hint}")
        items: list[Message] = []
        while (item := await s.message("import-2")).get("EventList") != "Complete":
            items.append(item)
        await s.send({"Action": "Logoff", "ActionID": "import-3"})
        return _queues(items)
    except AmiImportError as exc:
        if str(exc).startswith(where):
            raise
        raise AmiImportError(f"{where}: {exc}") from None
    finally:
        writer.close()
