"""Scopes: what a token may see and act on, decided in one place.

- operator: their own calls and cards, their own state;
- supervisor scoped to teams (`ccrouter token create --role supervisor --team T`, or listed
  under `teams[].supervisors`): the teams' operators, the cards and calls those operators
  took, their KPIs; an unscoped supervisor and an admin: everything;
- viewer: read-only cards and reports of its product lines / targets, callers' numbers
  masked and names/e-mails hidden unless the token allows personal data.

Other features ask through `may_act_on(who, operator=..., card=...)`; the site's guard
(`ccrouter.web.api`) applies it to every endpoint with an `{operator}` or a `{number}` in its
path before the handler runs, and list endpoints filter with `card_conditions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa

from ccrouter.config import Settings
from ccrouter.db.tables import cards
from ccrouter.web.auth import Principal, Role, TokenInfo, mask_number

PERSONAL_FIELDS: Final = ("caller_name", "caller_email")
"""Hidden (null) for a principal without personal data; `caller_num` is masked."""


def principal(info: TokenInfo, settings: Settings, masked_roles: Sequence[str]) -> Principal:
    """The request's principal: the token resolved against the current config."""
    ops = {o.id: o for o in settings.operators}
    op = ops.get(info.operator or "")
    teams: frozenset[str] | None = None
    members: frozenset[str] = frozenset()
    if info.role is Role.SUPERVISOR:
        named = {t.name for t in settings.teams if info.name in t.supervisors}
        wanted = frozenset(info.scope.teams) | named
        if wanted:
            teams = wanted
            members = frozenset(m for t in settings.teams if t.name in wanted
                                for m in t.operators if m in ops)  # fmt: skip
    viewer = info.role is Role.VIEWER
    personal = info.scope.personal_data if viewer else True
    return Principal(
        token_id=info.id, name=info.name, role=info.role, operator=info.operator,
        interface=op.interface if op else None,
        mask_numbers=info.role.value in masked_roles or not personal,
        teams=teams, members=members,
        member_interfaces=frozenset(ops[m].interface for m in members),
        products=frozenset(info.scope.products) if viewer else None,
        targets=frozenset(info.scope.targets) if viewer else frozenset(),
        personal_data=personal,
    )  # fmt: skip


def may_act_on(
    who: Principal, *, operator: str | None = None, card: Mapping[str, Any] | None = None
) -> bool:
    """May `who` see / act on this operator (a config operators[].id) and this card (a card
    row: its `interface`, `product`, `target`)? Both given: both must hold. The one check every
    feature uses: an operator only themselves and their own calls' cards, a team supervisor
    only their teams' operators and the cards those took, a viewer no operator and the cards of
    its lines, an admin and an unscoped supervisor everything."""
    if operator is not None:
        if who.role is Role.OPERATOR:
            if who.operator != operator:
                return False
        elif who.role is Role.VIEWER or (who.teams is not None and operator not in who.members):
            return False
    if card is not None:
        iface = card.get("interface")
        if who.role is Role.OPERATOR:
            return bool(who.interface) and iface == who.interface
        if who.products is not None:
            return card.get("product") in who.products or card.get("target") in who.targets
        if who.teams is not None:
            return iface in who.member_interfaces
    return True


def card_conditions(who: Principal) -> list[Any]:
    """The same rule as `may_act_on(card=...)` as SQL conditions on the cards table."""
    c = cards.c
    if who.role is Role.OPERATOR:
        return [c.interface == (who.interface or "\0none")]
    if who.products is not None:
        return [sa.or_(c.product.in_(sorted(who.products)), c.target.in_(sorted(who.targets)))]
    if who.teams is not None:
        return [c.interface.in_(sorted(who.member_interfaces))]
    return []


def visible_queues(who: Principal, settings: Settings) -> list[str] | None:
    """The queues whose figures a viewer sees (its targets' queues, the targets of its lines);
    None: not limited by queue."""
    if who.products is None:
        return None
    return [t.queue_name for t in settings.targets
            if t.product in who.products or t.name in who.targets]  # fmt: skip


def card_view(who: Principal, card: Mapping[str, Any]) -> dict[str, Any]:
    """A card as this principal sees it: the number masked for masked roles; names and
    e-mails hidden without personal data."""
    out = dict(card)
    if who.mask_numbers:
        out["caller_num"] = mask_number(out.get("caller_num"))
    if not who.personal_data:
        for key in PERSONAL_FIELDS:
            if key in out:
                out[key] = None
    return out


def scope_out(who: Principal) -> dict[str, Any]:
    """The scope as `/api/v1/me` shows it."""
    return {
        "teams": sorted(who.teams) if who.teams is not None else None,
        "operators": sorted(who.members) if who.teams is not None else None,
        "products": sorted(who.products) if who.products is not None else None,
        "targets": sorted(who.targets) if who.products is not None else None,
        "personal_data": who.personal_data,
    }
