"""`GET /api/v1/cards/{number}/recording`: the card's recording, with HTTP range requests
(aiohttp's FileResponse: 206 for a satisfiable `Range`, 416 otherwise), its content type by
format, refused to whom may not hear it, audited on the card (`.../recording/plays`).

The file's path comes only from the card's recording row, checked to be a ccrouter recording
right in `recordings.directory`: nothing in the request names a file.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ccrouter.recordings.model import Listener, content_type, local_path, may_play
from ccrouter.recordings.store import RecordingStore
from ccrouter.web.api import ALL_ROLES, STAFF, ApiError, Call, Endpoint, bad_request
from ccrouter.web.context import WebContext

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon


def _number(call: Call) -> str:
    number = call.path["number"]
    if not number.isascii() or not number.isdigit() or len(number) > 20:
        raise bad_request("number", "number: a card number is digits only")
    return number


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    store = RecordingStore(daemon.engine)

    async def recording_of(call: Call) -> tuple[str, dict[str, Any]]:
        number = _number(call)
        await daemon.writer.flush()
        card = await daemon.store.get(number)
        if card is None:
            raise ApiError(404, f"no card {number}")
        s = ctx.settings.recordings
        who = call.who
        why = may_play(Listener(who.role.value, who.interface), card.get("interface"),
                       s.operators_hear)  # fmt: skip
        if why is not None:
            await store.audit(number, time.time(), who.name, who.role.value, "refused")
            raise ApiError(403, why)
        rec = await store.get(number)
        if rec is None:
            raise ApiError(404, f"card {number} has no recording")
        return number, rec

    async def play(call: Call) -> web.StreamResponse:
        number, rec = await recording_of(call)
        s, who, now = ctx.settings.recordings, call.who, time.time()
        reason = rec["reason"]
        if rec["state"] in ("none", "deleted", "missing"):
            await store.audit(number, now, who.name, who.role.value, rec["state"])
            raise ApiError(404, f"card {number}: recording {rec['state']}: {reason}")
        local = local_path(rec["path"], s.directory, s.read_directory)
        if local is None or not _is_file(local):
            reason = (f"{rec['path']} is not a ccrouter recording in {s.directory}" if local is None
                      else f"the file {local} is not on disk")  # fmt: skip
            await store.mark(number, "missing", reason, now)
            await store.audit(number, now, who.name, who.role.value, "missing")
            raise ApiError(404, f"card {number}: recording missing: {reason}")
        await store.audit(number, now, who.name, who.role.value, "played",
                          call.request.headers.get("Range", ""))  # fmt: skip
        return web.FileResponse(local, headers={"Content-Type": content_type(local),
                                                "Cache-Control": "no-store"})  # fmt: skip

    async def info(call: Call) -> Any:
        number, rec = await recording_of(call)
        return {**rec, "plays": await store.plays(number)}

    num = {"number": "card number"}
    return [
        Endpoint("GET", "/api/v1/cards/{number}/recording", "Play the card's recording "
                 "(HTTP range requests; operators: their own calls by default)", play,
                 ALL_ROLES, path_params=num),
        Endpoint("GET", "/api/v1/cards/{number}/recording/info", "The card's recording: path, "
                 "start, end, size, state and every playback (who, when)", info, STAFF,
                 path_params=num),
    ]
