"""API tokens: created by `ccrouter token create`, stored as SHA-256 hashes, one role each.

A token is `ccr_` + 43 URL-safe random characters (256 bits), so a plain SHA-256 is a safe
stored form (no salt or slow hash needed for a random secret of that size). The secret is shown
once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ccrouter.db.tables import api_tokens

TOKEN_PREFIX: Final = "ccr_"


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the token's name and role, and for operators their id/interface."""

    token_id: int
    name: str
    role: Role
    operator: str | None
    interface: str | None
    mask_numbers: bool


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: Role
    operator: str | None
    created_at: float
    revoked_at: float | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(row.id, row.name, Role(row.role), row.operator, row.created_at,
                     row.revoked_at)


class TokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, name: str, role: Role, operator: str | None = None) -> tuple[str, int]:
        """A new token: (the secret, shown once; its id)."""
        if role is Role.OPERATOR and not operator:
            raise ValueError("an operator token needs --operator (an operators[].id)")
        if role is not Role.OPERATOR and operator:
            raise ValueError(f"a {role} token is not tied to an operator")
        token = new_token()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_tokens.insert().values(
                    name=name, role=role.value, operator=operator,
                    token_hash=hash_token(token), created_at=time.time(),
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        return token, int(key[0])

    async def lookup(self, token: str) -> TokenInfo | None:
        """The live (not revoked) token with this secret, or None."""
        query = sa.select(api_tokens).where(
            api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _info(row)

    async def list(self) -> list[TokenInfo]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))).all()
        return [_info(r) for r in rows]

    async def revoke(self, token_id: int) -> bool:
        """False when there is no live token with this id."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return result.rowcount == 1


def mask_number(number: str | None) -> str | None:
    """7900***4567: keep the first 4 and last 4 digits of a long number, else the last 2."""
    if not number:
        return number
    if len(number) >= 10:
        return number[:4] + "***" + number[-4:]
    return "***" + number[-2:] if len(number) > 2 else "***"
