"""The generic JSON webhook connector: one attempt to create a ticket.

POSTs the ticket's fixed body (the same bytes on every attempt) with the extra headers, the
`Idempotency-Key` header and the HMAC signature header; a 2xx answer must carry the ticket
id (and URL). Outcomes: `Created`, `Retry` (timeout, connection refused, 5xx, 408, 429, an
answer that is not the contract) or `Refused` (another 4xx: the helpdesk will not take it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from ccrouter.helpdesk.model import (
    IDEMPOTENCY_HEADER,
    BadAnswer,
    Created,
    encode,
    parse_created,
    sign,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Retry:
    error: str


@dataclass(frozen=True, slots=True)
class Refused:
    error: str


Outcome = Created | Retry | Refused


class JsonWebhook:
    def __init__(self, url: str, secret: str, *, headers: Mapping[str, str],
                 signature_header: str, timeout_s: float) -> None:  # fmt: skip
        self._url, self._secret, self._headers = url, secret, dict(headers)
        self._sig, self._timeout = signature_header, aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def create(self, key: str, body: Mapping[str, object]) -> Outcome:
        raw = encode(body)
        headers = {**self._headers, "Content-Type": "application/json",
                   IDEMPOTENCY_HEADER: key, self._sig: sign(self._secret, raw)}  # fmt: skip
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, data=raw, headers=headers) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            return Retry(f"no answer within {self._timeout.total:g} s")
        except aiohttp.ClientError as exc:
            return Retry(f"{type(exc).__name__}: {exc}")
        if status >= 500 or status in (408, 429):
            return Retry(f"HTTP {status}: {text[:200]}")
        if status >= 300:
            return Refused(f"HTTP {status}: {text[:200]}")
        try:
            return parse_created(json.loads(text))
        except ValueError as exc:  # BadAnswer too
            kind = "bad answer" if isinstance(exc, BadAnswer) else "answer is not JSON"
            return Retry(f"{kind}: {exc}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
