"""Incident announcements: a supervisor's message in front of one or more product lines.

`IncidentService` is the API for the CLI (`ccrouter incident set|list|clear`), the HTTP API and
the IVR: `set(...)`, `list(...)`, `clear(id)`, `active(now)`. Incidents live in the `incidents`
table, so they survive restarts and a CLI process and the daemon see the same ones.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.tables import incidents
from ccrouter.ivr.model.menus import Announcement

_PROMPT = re.compile(r"^[A-Za-z0-9_./-]+$")
MAX_DURATION_S = 31 * 24 * 3600


class IncidentError(ValueError):
    """A bad incident request (unknown product, no message, bad expiry, no such incident)."""


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_duration(text: str) -> float:
    """How long an incident lasts, as a supervisor says it: `90m`, `1h`, `2h30m`, `1d`,
    `3600` (seconds) -> seconds (`ccrouter incident set --for`, the API's `for`)."""
    m = _DURATION.match(text.strip())
    if m is None or not text.strip() or not any(m.groups()):
        raise IncidentError(f"not a duration: {text!r} (e.g. 90m, 1h, 2h30m, 1d)")
    d, h, mi, sec = (int(g or 0) for g in m.groups())
    seconds = d * 86400 + h * 3600 + mi * 60 + sec
    if seconds <= 0:
        raise IncidentError(f"the duration must be positive: {text!r}")
    return float(seconds)


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    products: tuple[str, ...]
    """Empty: every line."""
    prompt: str | None
    text: str
    starts_at: float
    expires_at: float
    created_at: float
    created_by: str | None
    cleared_at: float | None

    def is_active(self, now: float) -> bool:
        return self.cleared_at is None and self.starts_at <= now < self.expires_at

    def announcement(self) -> Announcement:
        return Announcement(self.id, self.prompt, self.text, frozenset(self.products))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (for the HTTP API)."""
        return {
            "id": self.id, "products": list(self.products), "prompt": self.prompt,
            "text": self.text, "starts_at": self.starts_at, "expires_at": self.expires_at,
            "created_at": self.created_at, "created_by": self.created_by,
            "cleared_at": self.cleared_at,
        }  # fmt: skip


def _row(r: Mapping[Any, Any]) -> Incident:
    return Incident(
        id=int(r["id"]),
        products=tuple(r["products"] or ()),
        prompt=r["prompt"],
        text=r["text"],
        starts_at=float(r["starts_at"]),
        expires_at=float(r["expires_at"]),
        created_at=float(r["created_at"]),
        created_by=r["created_by"],
        cleared_at=r["cleared_at"],
    )


class IncidentService:
    def __init__(
        self,
        engine: AsyncEngine,
        products: Iterable[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._products = tuple(products)
        self._clock = clock

    async def set(
        self,
        *,
        products: Iterable[str] = (),
        prompt: str | None = None,
        text: str = "",
        duration_s: float | None = None,
        expires_at: float | None = None,
        created_by: str | None = None,
    ) -> Incident:
        """Start an incident now until `expires_at` (or for `duration_s`). Empty `products`:
        every line. IncidentError names what is wrong."""
        now = self._clock()
        lines = tuple(dict.fromkeys(p.strip() for p in products if p.strip()))
        unknown = [p for p in lines if p not in self._products]
        if unknown:
            raise IncidentError(
                f"unknown product line(s) {', '.join(unknown)}; known: {', '.join(self._products)}"
            )
        if prompt is not None and not _PROMPT.match(prompt):
            raise IncidentError(f"prompt {prompt!r}: a sound name like ccrouter/outage-wallet")
        if not prompt and not text.strip():
            raise IncidentError("give a prompt to play or a text (or both)")
        if (duration_s is None) == (expires_at is None):
            raise IncidentError("give exactly one of a duration or an expiry time")
        end = expires_at if expires_at is not None else now + float(duration_s or 0)
        if not now < end <= now + MAX_DURATION_S:
            raise IncidentError("the expiry must be in the future, within 31 days")
        values: dict[str, Any] = {
            "products": list(lines), "prompt": prompt or None, "text": text.strip(),
            "starts_at": now, "expires_at": end, "created_at": now, "created_by": created_by,
        }  # fmt: skip
        async with self._engine.begin() as conn:
            result = await conn.execute(incidents.insert().values(values))
            new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        return Incident(id=new_id, products=lines, prompt=values["prompt"], text=values["text"],
                        starts_at=now, expires_at=end, created_at=now, created_by=created_by,
                        cleared_at=None)  # fmt: skip

    async def list(self, *, include_inactive: bool = False) -> list[Incident]:
        """Active incidents (all of them with `include_inactive`), newest first."""
        query = sa.select(incidents).order_by(incidents.c.id.desc())
        if not include_inactive:
            now = self._clock()
            query = query.where(
                incidents.c.cleared_at.is_(None),
                incidents.c.starts_at <= now,
                incidents.c.expires_at > now,
            )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_row(r) for r in rows]

    async def clear(self, incident_id: int) -> Incident:
        """End an incident now. IncidentError when there is no such active incident."""
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                incidents.update()
                .where(incidents.c.id == incident_id, incidents.c.cleared_at.is_(None))
                .values(cleared_at=now)
            )
            if result.rowcount != 1:
                raise IncidentError(f"no incident {incident_id} to clear")
            row = (await conn.execute(
                sa.select(incidents).where(incidents.c.id == incident_id)
            )).mappings().one()  # fmt: skip
        return _row(row)

    async def announcements(self) -> tuple[Announcement, ...]:
        """What the IVR plays: the active incidents, oldest first."""
        active = await self.list()
        return tuple(i.announcement() for i in reversed(active))
