"""Account / licence lookup through the engineers' hook (`ivr.account_hook`), with the prefix
table behind it, and a line's own out-of-hours action — unit tests of the lookup and caller
journeys over real sockets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from ccrouter.config import Settings
from ccrouter.config.ivr import HoursSettings, OutOfHoursSettings
from ccrouter.dialplan import SCRIPT_IVR, VAR_QUEUE
from ccrouter.helpdesk.feature import install as helpdesk
from ccrouter.ivr.accounts import Account, AccountCall, AccountLookup, AccountMatch
from ccrouter.ivr.feature import install as ivr
from ccrouter.ivr.spec import AccountTable
from ccrouter.routing.hook import HookLoadError, load_hook
from ccrouter.sim import SimCaller
from tests import test_helpdesk
from tests.stack import add_operator, example_settings, stack, wait_until
from tests.test_helpdesk import Helpdesk, Mailbox, settings
from tests.test_ivr_e2e import TERMINAL_DID, WALLET_DID, closed, journey

desk = test_helpdesk.desk  # the helpdesk stub and the SMTP server (aiosmtpd) as fixtures
mailbox = test_helpdesk.mailbox
CALL = AccountCall("1.1", "PJSIP/x-1", "79001234567", "Ivan", "2000", "ru", None)
TABLE = AccountTable({"40": "wallet", "77": "terminal"})


def crm(account: str, call: AccountCall) -> str | None:
    """A plain (blocking) hook: runs in a worker thread."""
    return {"5551": "wallet-uz", "5552": "terminal", "5553": "wallet-ru"}.get(account)


async def crm_async(account: str, call: AccountCall) -> Any:
    """Accounts ending 00 hang the CRM, 13 make it raise, 42 make it answer nonsense."""
    if account.endswith("00"):
        await asyncio.sleep(5)
    if account.endswith("13"):
        raise RuntimeError("crm down")
    if account.endswith("42"):
        return 42
    return crm(account, call)


def lookup(hook: Any = crm_async) -> AccountLookup:
    return AccountLookup(TABLE, ["wallet", "terminal", "general"],
                         {"wallet-uz": "wallet", "general": "general"}, hook, 0.2)  # fmt: skip


async def test_hook_hit_names_a_product_or_a_target() -> None:
    for hook in (crm, crm_async):
        assert await lookup(hook).find("5552", CALL) == AccountMatch("terminal")
        assert await lookup(hook).find("5551", CALL) == AccountMatch("wallet", "wallet-uz")


async def test_hook_miss_is_a_miss_even_when_the_table_would_match() -> None:
    with capture_logs() as logs:
        assert await lookup().find("4012", CALL) is None
    assert [e["event"] for e in logs] == ["account_hook_miss"]


@pytest.mark.parametrize(("suffix", "event"), [("00", "account_hook_timeout"),
                                                ("13", "account_hook_failed"),
                                                ("42", "account_hook_bad_result")])  # fmt: skip
async def test_hook_failures_fall_back_to_the_table_and_are_logged(suffix: str,
                                                                  event: str) -> None:  # fmt: skip
    lk = lookup()
    started = time.monotonic()
    with capture_logs() as logs:
        assert await lk.find("77" + suffix, CALL) == AccountMatch("terminal")  # the table
        assert await lk.find("99" + suffix, CALL) is None  # not in the table either
    assert time.monotonic() - started < 3  # the 5 s hook was cut at its limit (not a benchmark)
    assert [(e["event"], e["log_level"]) for e in logs] == [(event, "error")] * 2
    assert lk.failures == 2


async def test_a_failing_hook_still_finds_the_account_in_the_table() -> None:
    async def broken(account: str, call: AccountCall) -> str:
        raise KeyError(account)

    assert await lookup(broken).find("7712", CALL) == AccountMatch("terminal")
    assert await lookup(None).find("4099", CALL) == AccountMatch("wallet")


def test_a_hook_that_does_not_load_names_the_setting() -> None:
    with pytest.raises(HookLoadError, match=r"ivr.account_hook 'tests.nope:f': cannot import"):
        load_hook("tests.nope:f", "ivr.account_hook")
    with pytest.raises(HookLoadError, match="has no function 'nope'"):
        load_hook("tests.test_ivr_accounts:nope", "ivr.account_hook")


def with_hook(path: str = "tests.test_ivr_accounts:crm_async", **hours: HoursSettings
              ) -> Settings:  # fmt: skip
    s = example_settings()
    return s.model_copy(update={"hours": hours, "ivr": s.ivr.model_copy(
        update={"account_hook": path, "account_hook_timeout_ms": 300})})  # fmt: skip


async def test_hook_sends_an_account_straight_to_its_target(tmp_path: Path) -> None:
    async with journey(tmp_path, with_hook()) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1002", "Anna", answer_after_s=1,
                     talk_time_s=1)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001112240", dialled="2000",
                                           dtmf=["1", "3", "5553#"]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    assert call.variables[VAR_QUEUE] == "wallet-ru"
    assert card["product"] == "wallet" and card["queue"] == "wallet-ru"
    assert card["ivr_path"][-4:] == ["collect:account", "entered:5553",
                                     "account_target:wallet-ru", "route:wallet-ru"]


async def test_hook_miss_asks_again_then_sends_to_the_general_target(tmp_path: Path) -> None:
    async with journey(tmp_path, with_hook()) as st:
        add_operator(st.sim, "general-line", "PJSIP/1002", "Anna", talk_time_s=1)
        call = st.sim.place_call(SimCaller("79001112241", dialled="2000",
                                           dtmf=["1", "3", "4012#", "9999#", "1111#"]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    entry = "GET DATA ccrouter/enter-account 7000 10"
    again = 'STREAM FILE ccrouter/invalid-number ""'
    commands = call.agi_commands
    assert commands[commands.index(entry):][:5] == [entry, again, entry, again, entry]
    assert card["queue"] == "general-line"
    assert card["ivr_path"][-4:] == ["entered:1111", "invalid_account", "collect_failed",
                                     "route:general"]


async def test_timed_out_hook_uses_the_table(tmp_path: Path) -> None:
    async with journey(tmp_path, with_hook()) as st:
        add_operator(st.sim, "terminal-ru", "PJSIP/1003", "Oleg", answer_after_s=1,
                     talk_time_s=1)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001112242", dialled="2000",
                                           dtmf=["1", "3", "7700#", "2"]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    # "7700" hangs the hook past its 300 ms: the table's "77" prefix says terminal
    assert card["product"] == "terminal" and card["queue"] == "terminal-ru"
    assert card["ivr_path"][-5:] == ["entered:7700", "product:terminal", "menu:request", "key:2",
                                     "route"]


OWN = OutOfHoursSettings(prompt="ccrouter/terminal-closed", then="hangup")


async def test_a_line_with_its_own_out_of_hours_action(tmp_path: Path) -> None:
    night = HoursSettings(timezone="Asia/Tashkent", weekly={})
    settings = with_hook(terminal=night.model_copy(update={"out_of_hours": OWN}), wallet=night)
    async with journey(tmp_path, settings) as st:
        terminal = st.sim.place_call(SimCaller("79001112243", dialled=TERMINAL_DID,
                                               dtmf=["1"]))  # fmt: skip
        wallet = st.sim.place_call(SimCaller("79001112244", dialled=WALLET_DID, dtmf=["1"]))
        assert await asyncio.wait_for(terminal.finished, 10) == "ivr_only"
        assert await asyncio.wait_for(wallet.finished, 10) == "ivr_only"
        await closed(st)
        cards = {c["caller_num"]: c for c in await st.cards()}
    assert terminal.agi_commands[-3:] == ["SET VARIABLE CCROUTER_LANGUAGE ru",
                                          'STREAM FILE ccrouter/terminal-closed ""',
                                          "SET VARIABLE CCROUTER_STATUS hangup"]  # fmt: skip
    assert 'STREAM FILE ccrouter/closed ""' in wallet.agi_commands  # the global action
    assert wallet.agi_commands[-1] == "VoiceMail(100@ccrouter,u)"
    assert cards["79001112243"]["ivr_path"][-1] == "out_of_hours:hangup"
    assert cards["79001112243"]["outcome"] == cards["79001112244"]["outcome"] == "out_of_hours"


async def crm_with_email(account: str, call: AccountCall) -> Any:
    """The CRM knows the caller's e-mail for 5553; 5554's record holds a malformed one."""
    if account == "5553":
        return Account("wallet-ru", email="ivan@bank.example.uz")
    if account == "5554":
        return Account("wallet-ru", email="not an address")
    return None


async def test_a_hook_may_give_the_callers_email_with_the_line() -> None:
    lk = AccountLookup(TABLE, ["wallet"], {"wallet-ru": "wallet"}, crm_with_email, 0.2)
    assert await lk.find("5553", CALL) == AccountMatch("wallet", "wallet-ru",
                                                       email="ivan@bank.example.uz")
    with capture_logs() as logs:
        assert await lk.find("5554", CALL) == AccountMatch("wallet", "wallet-ru")
    assert [e["event"] for e in logs] == ["account_hook_bad_email"]


async def test_the_hooks_email_goes_on_the_card_and_the_ticket_mail_goes_there(
    tmp_path: Path, desk: tuple[Helpdesk, str], mailbox: tuple[Mailbox, int]
) -> None:
    hd, url = desk
    box, smtp_port = mailbox
    s = with_hook("tests.test_ivr_accounts:crm_with_email")
    web = settings(url, smtp_port)
    s = s.model_copy(update={"helpdesk": web.helpdesk, "mail": web.mail})
    async with stack(tmp_path, settings=s, features=[ivr, helpdesk], inbound_script=SCRIPT_IVR,
                     survey=True) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1002", "Anna", answer_after_s=1,
                     talk_time_s=1)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001112245", dialled="2000",
                                           dtmf=["1", "3", "5553#"]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
        assert card["caller_email"] == "ivan@bank.example.uz"  # the operator typed none
        await st.app.helpdesk.request(card, summary="card blocked", by="op1002")
        await wait_until(lambda: len(box.messages) == 1, what="the ticket mail")
    (rcpt, msg), = box.messages
    assert rcpt == ["ivan@bank.example.uz"] and msg["To"] == "ivan@bank.example.uz"
    assert msg["Subject"] == "Заявка HD-1 принята"  # the card's language (ru)
    assert len(hd.tickets) == 1
