"""API tokens: created by `ccrouter token create`, stored as SHA-256 hashes, one role each,
and a scope: the teams of a supervisor, the product lines / targets of an outside viewer.

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
    VIEWER = "viewer"
    """Outside the centre (a business unit, the client): read-only reports and cards of its
    product lines / targets."""


@dataclass(frozen=True, slots=True)
class TokenScope:
    """What a token is limited to, stored with it: a supervisor's teams, a viewer's product
    lines and targets and whether it sees callers' personal data (numbers, names, e-mails)."""

    teams: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    personal_data: bool = False

    def to_json(self) -> dict[str, Any] | None:
        if self == TokenScope():
            return None
        out: dict[str, Any] = {k: list(getattr(self, k)) for k in ("teams", "products",
                                                                  "targets")
                               if getattr(self, k)}  # fmt: skip
        if self.personal_data:
            out["personal_data"] = True
        return out

    @classmethod
    def from_json(cls, value: Any) -> TokenScope:
        if not isinstance(value, dict):
            return cls()
        def names(key: str) -> tuple[str, ...]:
            return tuple(str(x) for x in value.get(key) or ())

        return cls(names("teams"), names("products"), names("targets"),
                   personal_data=value.get("personal_data") is True)  # fmt: skip

    def describe(self) -> str:
        parts = [f"{k}={','.join(getattr(self, k))}" for k in ("teams", "products", "targets")
                 if getattr(self, k)]  # fmt: skip
        return " ".join([*parts, *(["personal_data"] if self.personal_data else [])]) or "-"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the token's name and role, for operators their id/interface, and
    the token's scope resolved against the config (`ccrouter.web.scope` decides with it)."""

    token_id: int
    name: str
    role: Role
    operator: str | None
    interface: str | None
    mask_numbers: bool
    teams: frozenset[str] | None = None
    """A team-scoped supervisor's teams (None: not team-scoped, sees every operator)."""
    members: frozenset[str] = frozenset()
    """The operators (ids) of those teams."""
    member_interfaces: frozenset[str] = frozenset()
    """Their interfaces (a card belongs to a team by the interface that took the call)."""
    products: frozenset[str] | None = None
    """A viewer's product lines (None: not line-scoped)."""
    targets: frozenset[str] = frozenset()
    """A viewer's targets (its cards: product in `products` or target in `targets`)."""
    personal_data: bool = True
    """False: callers' numbers masked and names/e-mails hidden (viewers without it)."""

    @property
    def scoped(self) -> bool:
        return self.teams is not None or self.products is not None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: Role
    operator: str | None
    created_at: float
    revoked_at: float | None
    scope: TokenScope = TokenScope()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(row.id, row.name, Role(row.role), row.operator, row.created_at,
                     row.revoked_at, TokenScope.from_json(row.scope))  # fmt: skip


def scope_problem(role: Role, operator: str | None, scope: TokenScope) -> str | None:
    """Why this role cannot have this operator / scope, or None."""
    if role is Role.OPERATOR and not operator:
        return "an operator token needs --operator (an operators[].id)"
    if role is not Role.OPERATOR and operator:
        return f"a {role} token is not tied to an operator"
    if scope.teams and role is not Role.SUPERVISOR:
        return f"only supervisor tokens are scoped to teams, not {role}"
    if (scope.products or scope.targets or scope.personal_data) and role is not Role.VIEWER:
        return f"only viewer tokens are scoped to product lines / targets, not {role}"
    if role is Role.VIEWER and not (scope.products or scope.targets):
        return "a viewer token needs a scope: --product and/or --target"
    return None


class TokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self, name: str, role: Role, operator: str | None = None,
        scope: TokenScope = TokenScope(),
    ) -> tuple[str, int]:
        """A new token: (the secret, shown once; its id)."""
        problem = scope_problem(role, operator, scope)
        if problem:
            raise ValueError(problem)
        token = new_token()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_tokens.insert().values(
                    name=name, role=role.value, operator=operator, scope=scope.to_json(),
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
