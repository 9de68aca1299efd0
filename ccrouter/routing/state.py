"""Operators' desired state (login, pause, skills overrides) in the database, and the service
the CLI, the HTTP API and the daemon use to change it.

Every write takes the next `version` (unique index); the daemon's membership service polls
`max(version)` — one indexed look-up — and reloads when it moved. So `ccrouter operator login
op1001` works against a running daemon with no control socket: it writes the row, and the
daemon applies it within `routing.state_poll_s` — on PostgreSQL at once: the write sends a
NOTIFY that the daemons (every node's lease holder) LISTEN for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.config import Settings
from ccrouter.db.engine import immediate, retry_locked
from ccrouter.db.notify import OPERATOR_STATE, notify
from ccrouter.db.tables import operator_state
from ccrouter.routing.model.skills import OperatorState
from ccrouter.routing.table import configured_operators


class OperatorError(ValueError):
    """A bad operator command (unknown operator or skill, bad level): the message says which."""


@dataclass(frozen=True, slots=True)
class OperatorRow:
    operator_id: str
    logged_in: bool
    paused: bool
    pause_reason: str
    skills: Mapping[str, int] | None
    """None: the config's skills."""
    version: int
    updated_at: float
    updated_by: str


def _row(r: Any) -> OperatorRow:
    return OperatorRow(
        r.operator_id, bool(r.logged_in), bool(r.paused), r.pause_reason or "", r.skills,
        int(r.version), float(r.updated_at), r.updated_by or "",
    )  # fmt: skip


class OperatorStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def version(self) -> int:
        async with self._engine.connect() as conn:
            v = (await conn.execute(sa.select(sa.func.max(operator_state.c.version)))).scalar()
        return int(v or 0)

    async def rows(self) -> dict[str, OperatorRow]:
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.select(operator_state))
            return {r.operator_id: _row(r) for r in result}

    async def update(
        self, operator_id: str, change: Callable[[OperatorRow | None], OperatorRow]
    ) -> OperatorRow:
        """Read one operator's row, `change` it and write it with the next version, in one
        BEGIN IMMEDIATE transaction (so concurrent writers queue on the lock, none loses the
        other's change), retried while the database is locked."""
        what = f"writing operator {operator_id}"
        return await retry_locked(lambda: self._update(operator_id, change), what=what)

    async def _update(
        self, operator_id: str, change: Callable[[OperatorRow | None], OperatorRow]
    ) -> OperatorRow:
        mine = operator_state.c.operator_id == operator_id
        async with immediate(self._engine).begin() as conn:
            found = (await conn.execute(sa.select(operator_state).where(mine))).first()
            top = (await conn.execute(sa.select(sa.func.max(operator_state.c.version)))).scalar()
            row = replace(change(_row(found) if found is not None else None),
                          version=int(top or 0) + 1, updated_at=time.time())  # fmt: skip
            values = {
                "logged_in": row.logged_in, "paused": row.paused, "pause_reason": row.pause_reason,
                "skills": dict(row.skills) if row.skills is not None else None,
                "version": row.version, "updated_at": row.updated_at, "updated_by": row.updated_by,
            }  # fmt: skip
            if found is None:
                insert = operator_state.insert().values(operator_id=operator_id, **values)
                await conn.execute(insert)
            else:
                await conn.execute(operator_state.update().where(mine).values(values))
            await notify(conn, OPERATOR_STATE)  # at commit: every node's holder reloads now
        return row


class OperatorService:
    """Login/logout/pause/skills for the CLI, the HTTP API and the daemon (adopted pauses)."""

    def __init__(self, settings: Settings, store: OperatorStore) -> None:
        self._config = configured_operators(settings)
        self._skill_names = {*settings.languages, *settings.products}
        self.store = store

    @property
    def ids(self) -> list[str]:
        return list(self._config)

    def _check(self, operator_id: str) -> OperatorState:
        op = self._config.get(operator_id)
        if op is None:
            known = ", ".join(self._config) or "(none)"
            raise OperatorError(f"unknown operator {operator_id!r}; configured: {known}")
        return op

    async def states(self) -> dict[str, OperatorState]:
        """Every configured operator with the database's state applied."""
        rows = await self.store.rows()
        return {i: self._apply(op, rows.get(i)) for i, op in self._config.items()}

    async def state(self, operator_id: str) -> OperatorState:
        op = self._check(operator_id)
        return self._apply(op, (await self.store.rows()).get(operator_id))

    @staticmethod
    def _apply(op: OperatorState, row: OperatorRow | None) -> OperatorState:
        if row is None:
            return op
        skills = dict(row.skills) if row.skills is not None else op.skills
        reason = row.pause_reason if row.paused else ""
        return replace(op, logged_in=row.logged_in, paused=row.paused, pause_reason=reason,
                       skills=skills)  # fmt: skip

    async def _write(
        self, operator_id: str, by: str, changes: Callable[[OperatorState], Mapping[str, Any]]
    ) -> OperatorState:
        """`changes(current state)` -> the row's new fields, applied to the row as it is in
        the database at the moment of writing (in the same transaction)."""
        op = self._check(operator_id)

        def change(row: OperatorRow | None) -> OperatorRow:
            row = row or OperatorRow(operator_id, op.logged_in, op.paused, op.pause_reason,
                                     None, 0, 0.0, by)  # fmt: skip
            return replace(row, updated_by=by, **changes(self._apply(op, row)))

        return self._apply(op, await self.store.update(operator_id, change))

    async def login(self, operator_id: str, *, by: str = "cli") -> OperatorState:
        return await self._write(operator_id, by, lambda _: {"logged_in": True})

    async def logout(self, operator_id: str, *, by: str = "cli") -> OperatorState:
        return await self._write(
            operator_id, by, lambda _: {"logged_in": False, "paused": False, "pause_reason": ""}
        )

    async def pause(self, operator_id: str, reason: str = "", *, by: str = "cli") -> OperatorState:
        return await self._write(
            operator_id, by, lambda _: {"paused": True, "pause_reason": reason}
        )

    async def unpause(self, operator_id: str, *, by: str = "cli") -> OperatorState:
        return await self._write(operator_id, by, lambda _: {"paused": False, "pause_reason": ""})

    async def set_skills(
        self, operator_id: str, levels: Mapping[str, int], *, replace_all: bool = False,
        by: str = "cli",
    ) -> OperatorState:  # fmt: skip
        """Change some skill levels (0 removes a skill), or replace them all."""
        for skill, level in levels.items():
            if skill not in self._skill_names:
                known = ", ".join(sorted(self._skill_names))
                raise OperatorError(f"unknown skill {skill!r}; languages and products: {known}")
            if not 0 <= level <= 100:
                raise OperatorError(f"skill {skill}: level must be 0..100, got {level}")

        def skills(current: OperatorState) -> Mapping[str, Any]:
            merged = dict(levels) if replace_all else {**current.skills, **levels}
            return {"skills": {k: v for k, v in merged.items() if v > 0}}

        return await self._write(operator_id, by, skills)

    async def reset_skills(self, operator_id: str, *, by: str = "cli") -> OperatorState:
        return await self._write(operator_id, by, lambda _: {"skills": None})
