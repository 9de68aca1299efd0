"""The IVR's service: what the `ivr` AGI script needs besides the channel.

It opens the call's card when the IVR answers, reads the caller's remembered language and the
active incidents, validates digit entries (card numbers, account numbers), records every step
on the card, and ends the call: route (the shared Router), hang up, voicemail, or an end
another feature provides (`EndAction`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog

from ccrouter.calls.model.cards import Outcome, is_valid_card_number
from ccrouter.calls.store import CardStore
from ccrouter.calls.tracker import CallTracker
from ccrouter.config import Settings
from ccrouter.ivr.accounts import AccountCall, AccountLookup, AccountMatch
from ccrouter.ivr.incidents import IncidentService
from ccrouter.ivr.model.machine import CallStart, CollectKind, IvrSpec, IvrState
from ccrouter.ivr.spec import AccountTable, ivr_spec
from ccrouter.pbx.agi.session import AgiRequest, AgiSession
from ccrouter.routing.agi import RouteResult, RouteService
from ccrouter.routing.model.decide import Requirements

log = structlog.get_logger(__name__)


class EndAction(Protocol):
    """An end of the IVR that another feature provides (`then: <name>`, a menu's `<name>`
    option): it takes the caller, headed for `target`, and tells them so. False when it could
    not (the IVR then falls back to voicemail, then hang-up)."""

    async def __call__(
        self, session: AgiSession, number: str, *, target: str, language: str, product: str,
        card: str,
    ) -> bool: ...  # fmt: skip


class IvrService:
    def __init__(
        self,
        settings: Settings,
        tracker: CallTracker,
        router: RouteService,
        store: CardStore,
        incidents: IncidentService,
        end_actions: Mapping[str, EndAction] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        account_hook: Callable[..., Any] | None = None,
    ) -> None:
        self.settings = settings
        self.spec: IvrSpec = ivr_spec(settings)
        self.accounts = AccountLookup(
            AccountTable(dict(settings.ivr.accounts)), settings.products,
            {t.name: t.product for t in settings.targets}, account_hook,
            settings.ivr.account_hook_timeout_ms / 1000)  # fmt: skip
        self._tracker = tracker
        self._router = router
        self._store = store
        self._incidents = incidents
        self._end_actions: Mapping[str, EndAction] = {} if end_actions is None else end_actions
        """Looked up at use: the feature that provides one may be installed after this one."""
        self._clock = clock

    async def begin(self, request: AgiRequest, dialled: str, product: str | None,
                    language: str | None) -> tuple[str, CallStart]:  # fmt: skip
        """Open the card; the machine's start values (clock, product, languages, incidents)."""
        card = self._tracker.open_ivr(uniqueid=request.uniqueid, channel=request.channel,
                                      caller_num=request.caller_num,
                                      caller_name=request.caller_name, dialled=dialled)  # fmt: skip
        if product is None and dialled:
            product = self.settings.routing.did.get(dialled)
        remembered = await self._remembered_language(request.caller_num, card)
        try:
            incidents = await self._incidents.announcements()
        except Exception as exc:  # the database is busy or gone: the caller is still served
            log.warning("ivr_incidents_unavailable", error=repr(exc))
            incidents = ()
        return card, CallStart(now=self._clock(), product=product, language=language,
                               remembered_language=remembered, incidents=incidents)  # fmt: skip

    async def _remembered_language(self, caller: str, card: str) -> str | None:
        days = self.settings.ivr.remember_language_days
        if not days or not caller:
            return None
        try:
            recent = await self._store.recent_by_caller(caller, self._clock() - days * 86400)
        except Exception as exc:
            log.warning("ivr_history_unavailable", error=repr(exc))
            return None
        for c in recent:
            lang = c.get("language")
            if c.get("number") != card and lang in self.settings.languages:
                return str(lang)
        return None

    async def check(self, kind: CollectKind, digits: str, own_card: str) -> str | None:
        """A card number that exists (not this call's), or the product of an account number
        (the prefix table only; `find_account` asks the hook first)."""
        if kind is CollectKind.CARD:
            if not is_valid_card_number(digits) or digits == own_card:
                return None
            try:
                return digits if await self._store.get(digits) is not None else None
            except Exception as exc:
                log.warning("ivr_card_lookup_failed", error=repr(exc))
                return digits  # the check digit passed; routing treats an unknown card gently
        match = await self.accounts.find(digits, AccountCall("", "", "", "", "", None, None))
        return None if match is None else match.product

    async def find_account(self, digits: str, request: AgiRequest, state: IvrState,
                           dialled: str) -> AccountMatch | None:  # fmt: skip
        """The account's product (or target) from the lookup hook, else the prefix table; an
        e-mail the hook gave goes on the card."""
        call = AccountCall(uniqueid=request.uniqueid, channel=request.channel,
                           caller_num=request.caller_num, caller_name=request.caller_name,
                           dialled=dialled, language=state.language,
                           product=state.product)  # fmt: skip
        match = await self.accounts.find(digits, call)
        if match is not None and match.email:  # the new call's card has none yet
            self._tracker.note(request.uniqueid, {"caller_email": match.email})
            log.info("caller_email_from_account_hook")
        return match

    def record(self, uniqueid: str, state: IvrState) -> None:
        fields: dict[str, Any] = {"ivr_path": list(state.path)}
        if state.language:
            fields["language"] = state.language
        if state.product:
            fields["product"] = state.product
        self._tracker.note(uniqueid, fields)

    def out_of_hours(self, uniqueid: str) -> None:
        self._tracker.note(uniqueid, {}, outcome=Outcome.OUT_OF_HOURS.value)

    async def route(self, request: AgiRequest, state: IvrState, dialled: str,
                    target: str | None) -> RouteResult:  # fmt: skip
        product, language = state.product, state.language
        if target is not None:
            t = self.settings.target(target)
            product = t.product
            language = language or t.language
        req = Requirements(product=product, language=language, dialled=dialled or None,
                           card=state.card, caller_num=request.caller_num or None,
                           repeat_of=state.card)  # fmt: skip
        return await self._router.route(request, req)

    async def end_by(self, name: str, session: AgiSession, state: IvrState, card: str) -> bool:
        """End the call with the feature-provided action `name`; False when no installed
        feature provides it, or it refused (it logs why)."""
        action = self._end_actions.get(name)
        if action is None:
            log.warning("ivr_end_unavailable", end=name, reason="no feature provides it")
            return False
        product = state.product or self.settings.routing.default_product
        language = state.language or self.settings.routing.default_language
        target = next((t.name for t in self.settings.targets
                       if t.product == product and t.language == language), None) or next(
            (t.name for t in self.settings.targets if t.product == product),
            self.spec.general_target)  # fmt: skip
        return await action(session, session.request.caller_num, target=target,
                            language=language, product=product, card=card)  # fmt: skip
