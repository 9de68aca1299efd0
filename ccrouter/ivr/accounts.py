"""Account / licence number lookup: the engineers' hook first, the `ivr.accounts` table behind it.

Configure `ivr.account_hook: package.module:function` (importable by the daemon) and
`ivr.account_hook_timeout_ms` (default 500). The function gets the digits the caller entered and
an `AccountCall`, and returns the name of a **product** (the caller continues on that line, as
with the table) or of a **target** (the caller is routed straight there; a name that is both is
taken as the product), or None (no such account: the caller is asked again, then sent to
`ivr.general_target`). It may be `async def` (preferred: it must not block the loop) or a plain
function (run in a worker thread). On a timeout, an exception or a result that is neither None
nor a known product/target name, the prefix table answers instead and the error is logged
(`account_hook_timeout` / `account_hook_failed` / `account_hook_bad_result`).

The hook may also return an `Account(line, email=...)`: `line` is that product or target name,
`email` the caller's e-mail from the CRM. The IVR puts it on the call's card (`caller_email`,
which the card of a new call does not have yet), so ticket mails reach the caller even when the
operator types none; an operator's own entry later replaces it. An e-mail that does not look
like one is logged (`account_hook_bad_email`) and dropped: the line is still used.

    # mycompany/accounts.py
    from ccrouter.ivr.accounts import AccountCall

    async def lookup(account: str, call: AccountCall) -> str | None:
        row = await my_crm.find(account)
        if row is None:
            return None
        return Account("vip" if row.tier == "gold" else row.product, email=row.email)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog

from ccrouter.ivr.spec import AccountTable
from ccrouter.routing.hook import run_hook

log = structlog.get_logger(__name__)

EMAIL: Final = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
"""What the card form accepts as an e-mail (`ccrouter.web.cards`), without the empty one."""


@dataclass(frozen=True, slots=True)
class Account:
    """A hook's answer with more than the line: `line` is a product or target name (as a plain
    string answer), `email` the caller's e-mail, put on the card when it has none."""

    line: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class AccountCall:
    """What the lookup hook is told about the call."""

    uniqueid: str
    channel: str
    caller_num: str
    caller_name: str
    dialled: str
    language: str | None
    product: str | None
    """The line known so far (dialled number or menu), None when not yet known."""


@dataclass(frozen=True, slots=True)
class AccountMatch:
    """The product the account belongs to, and the target to route to when the hook named one
    (then `product` is that target's)."""

    product: str
    target: str | None = None
    email: str | None = None
    """The caller's e-mail, when the hook gave one (`Account.email`)."""


class AccountLookup:
    def __init__(self, table: AccountTable, products: Collection[str],
                 target_products: Mapping[str, str], hook: Callable[..., Any] | None = None,
                 timeout_s: float = 0.5) -> None:  # fmt: skip
        self._table = table
        self._products = set(products)
        self._targets = dict(target_products)
        self._hook = hook
        self._timeout_s = timeout_s
        self.failures = 0

    async def find(self, account: str, call: AccountCall) -> AccountMatch | None:
        if self._hook is not None:
            try:
                result = await run_hook(self._hook, account, call, timeout_s=self._timeout_s)
            except TimeoutError:
                self._failed("account_hook_timeout", timeout_ms=round(self._timeout_s * 1000))
            except Exception as e:  # any hook error: the table answers
                self._failed("account_hook_failed", error=repr(e))
            else:
                if result is None:
                    log.info("account_hook_miss")
                    return None
                line, email = result, None
                if isinstance(result, Account):
                    line, email = result.line, _email(result.email)
                if isinstance(line, str) and line in self._products:
                    return AccountMatch(line, email=email)
                if isinstance(line, str) and line in self._targets:
                    return AccountMatch(self._targets[line], target=line, email=email)
                self._failed("account_hook_bad_result", result=repr(result)[:200])
        product = self._table.product(account)
        return None if product is None else AccountMatch(product)

    def _failed(self, event: str, **kw: Any) -> None:
        self.failures += 1
        log.error(event, **kw)


def _email(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 254 and EMAIL.match(value.strip()):
        return value.strip()
    log.warning("account_hook_bad_email", email=repr(value)[:80])
    return None
