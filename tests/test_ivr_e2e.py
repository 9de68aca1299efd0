"""Caller journeys through the IVR over real sockets: the simulator plays the caller's DTMF
like Asterisk answers STREAM FILE / WAIT FOR DIGIT / GET DATA, ccrouter drives the menus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ccrouter.config import Settings
from ccrouter.config.ivr import HoursSettings
from ccrouter.dialplan import SCRIPT_IVR, STATUS_OK, VAR_CARD, VAR_QUEUE, VAR_STATUS
from ccrouter.ivr.feature import install
from ccrouter.ivr.incidents import IncidentService
from ccrouter.sim import SimCaller, SimOperator
from tests.stack import add_operator, example_settings, stack, wait_until

KEYS = '"0123456789*#"'
WALLET_DID, TERMINAL_DID = "712000100", "712000200"


def ivr_settings(**hours: HoursSettings) -> Settings:
    s = example_settings()
    return s.model_copy(update={"hours": hours})  # all lines open unless a test closes one


def journey(tmp_path: Path, settings: Settings | None = None, **kw: Any) -> Any:
    return stack(tmp_path, settings=settings or ivr_settings(), features=[install],
                 inbound_script=SCRIPT_IVR, survey=True, **kw)  # fmt: skip


MSET = f"EXEC MSet {VAR_QUEUE}="


def ivr_part(commands: list[str]) -> list[str]:
    """The commands before the routing variables (one MSet, like the route script's)."""
    end = next((i for i, c in enumerate(commands) if c.startswith(MSET)), len(commands))
    return commands[:end]


def route_pairs(commands: list[str]) -> list[tuple[str, str]]:
    """The routing variables: the one MSet that sets them, as (name, value) pairs."""
    (line,) = [c for c in commands if c.startswith(MSET)]
    pairs = [pair.partition("=") for pair in line.removeprefix("EXEC MSet ").split(",")]
    return [(name, value) for name, _, value in pairs]


async def closed(st: Any) -> None:
    await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")


async def test_language_and_product_pick_then_survey_rating(tmp_path: Path) -> None:
    async with journey(tmp_path) as st:
        add_operator(st.sim, "wallet-uz", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                     talk_time_s=3)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001234567", "Ivan", dialled="2000",
                                           dtmf=["2", "1", "2", "4"]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    number = call.variables[VAR_CARD]
    assert ivr_part(call.agi_commands) == [
        f"SET VARIABLE {VAR_CARD} {number}",
        'STREAM FILE ccrouter/welcome ""',
        f"STREAM FILE ccrouter/choose-language {KEYS}",
        "SET VARIABLE CHANNEL(language) uz",
        "SET VARIABLE CCROUTER_LANGUAGE uz",
        f"STREAM FILE ccrouter/main-menu {KEYS}",
        f"STREAM FILE ccrouter/have-request-number {KEYS}",
    ]
    # the routing variables in one round trip, as the route script sends them; status last
    pairs = route_pairs(call.agi_commands)
    # the IVR session's last command: the next is the survey's first
    assert call.agi_commands[len(ivr_part(call.agi_commands)) + 1] == (
        f"STREAM FILE ccrouter/survey {KEYS}")
    assert [n for n, _ in pairs] == [
        VAR_QUEUE, VAR_CARD, "CCROUTER_QUEUE_TIMEOUT", "CCROUTER_LANGUAGE", "CCROUTER_PRODUCT",
        "QUEUE_MAX_PENALTY", "CCROUTER_FALLBACK_QUEUE", "CCROUTER_FALLBACK_MAX_PENALTY", VAR_STATUS]
    assert dict(pairs)[VAR_STATUS] == STATUS_OK and dict(pairs)[VAR_CARD] == number
    assert not any(c.startswith("SET VARIABLE CCROUTER_Q") for c in call.agi_commands)
    assert call.agi_commands[-3:] == [f"STREAM FILE ccrouter/survey {KEYS}",
                                      'STREAM FILE ccrouter/thanks ""', "HANGUP"]
    assert call.variables["CHANNEL(language)"] == "uz"
    assert call.variables[VAR_QUEUE] == "wallet-uz"
    assert {k: card[k] for k in ("number", "language", "product", "queue", "operator", "csat",
                                 "outcome", "state", "end_reason")} == {
        "number": number, "language": "uz", "product": "wallet", "queue": "wallet-uz",
        "operator": "Dilnoza", "csat": 4, "outcome": "answered", "state": "closed",
        "end_reason": "agent"}  # fmt: skip
    assert card["ivr_path"] == ["start", "menu:language", "key:2", "language:uz", "menu:main",
                                "key:1", "product:wallet", "menu:request", "key:2", "route"]


async def test_survey_without_an_answer_leaves_the_rating_empty(tmp_path: Path) -> None:
    async with journey(tmp_path) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", answer_after_s=1,
                     talk_time_s=2)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001234500", dialled=WALLET_DID,
                                           dtmf=["1", "1", "2", "", "", "7"]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    assert call.agi_commands[-5:] == [
        f"STREAM FILE ccrouter/survey {KEYS}", "WAIT FOR DIGIT 5000",
        'STREAM FILE ccrouter/invalid ""', f"STREAM FILE ccrouter/survey {KEYS}", "HANGUP"]
    assert card["csat"] is None and card["outcome"] == "answered"


async def test_caller_hanging_up_in_the_queue_talk_gets_no_survey(tmp_path: Path) -> None:
    async with journey(tmp_path) as st:
        st.sim.add_operator(SimOperator("PJSIP/1002", answer_after_s=1, talk_time_s=3,
                                        hangs_up=False))  # fmt: skip
        st.sim.add_member("wallet-ru", "PJSIP/1002", name="Anna")
        call = st.sim.place_call(SimCaller("79001234501", dialled=WALLET_DID, dtmf=["1", "1", "2"]))
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    assert not any("survey" in c for c in call.agi_commands)
    assert card["end_reason"] == "caller" and card["csat"] is None


async def test_remembered_language_skips_the_question_and_card_entry_links(
    tmp_path: Path,
) -> None:
    async with journey(tmp_path) as st:
        add_operator(st.sim, "wallet-tg", "PJSIP/1003", "Farrukh", answer_after_s=1,
                     talk_time_s=2)  # fmt: skip
        first = st.sim.place_call(SimCaller("79005550000", dialled=WALLET_DID,
                                            dtmf=["3", "1", "2", "5"]))  # fmt: skip
        assert await asyncio.wait_for(first.finished, 10) == "answered"
        await closed(st)
        old = first.variables[VAR_CARD]
        # again: no language question; "1" = I have a request number, then the old card
        second = st.sim.place_call(SimCaller("79005550000", dialled=WALLET_DID,
                                             dtmf=["1", "1", f"{old}#", "5"]))  # fmt: skip
        assert await asyncio.wait_for(second.finished, 10) == "answered"
        await closed(st)
        cards = {c["number"]: c for c in await st.cards()}
    new = second.variables[VAR_CARD]
    assert ivr_part(second.agi_commands)[1:] == [
        'STREAM FILE ccrouter/welcome ""',
        "SET VARIABLE CHANNEL(language) tg",
        "SET VARIABLE CCROUTER_LANGUAGE tg",
        f"STREAM FILE ccrouter/main-menu {KEYS}",
        f"STREAM FILE ccrouter/have-request-number {KEYS}",
        "GET DATA ccrouter/enter-request-number 7000 10",
    ]
    assert cards[new]["repeat_of"] == old and cards[new]["language"] == "tg"
    assert cards[new]["ivr_path"] == [
        "start", "product:wallet", "menu:language:skipped", "language:tg", "menu:main",
        "key:1", "product:wallet", "menu:request", "key:1", "collect:card",
        f"entered:{old}", f"card:{old}", "route"]
    assert cards[old]["csat"] == 5 and cards[new]["csat"] == 5


async def test_invalid_then_timed_out_card_entry_goes_on_without_a_card(tmp_path: Path) -> None:
    async with journey(tmp_path) as st:
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza", talk_time_s=1)
        call = st.sim.place_call(SimCaller("79001112233", dialled=WALLET_DID,
                                           dtmf=["1", "1", "1", "1234567#", ""]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    entry, again = "GET DATA ccrouter/enter-request-number 7000 10", (
        'STREAM FILE ccrouter/invalid-number ""')
    # retries: 2 (the default) -> three tries: a wrong check digit, then two timeouts
    assert ivr_part(call.agi_commands)[-5:] == [entry, again, entry, again, entry]
    assert card["repeat_of"] is None
    assert card["ivr_path"][-7:] == ["collect:card", "entered:1234567", "invalid_card",
                                     "timeout", "timeout", "collect_failed", "route"]


async def test_invalid_key_and_timeouts_take_the_menu_default(tmp_path: Path) -> None:
    async with journey(tmp_path) as st:
        add_operator(st.sim, "general-line", "PJSIP/1002", "Anna", talk_time_s=1)
        call = st.sim.place_call(SimCaller("79001112234", dialled="2000",
                                           dtmf=["7", *[""] * 10]))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "answered"
        await closed(st)
        (card,) = await st.cards()
    assert ivr_part(call.agi_commands)[2:6] == [
        f"STREAM FILE ccrouter/choose-language {KEYS}", 'STREAM FILE ccrouter/invalid ""',
        f"STREAM FILE ccrouter/choose-language {KEYS}", "WAIT FOR DIGIT 5000"]
    assert card["queue"] == "general-line" and card["language"] == "ru"
    assert card["ivr_path"][:7] == ["start", "menu:language", "invalid:7", "timeout",
                                    "timeout", "default", "language:ru"]
    assert card["ivr_path"][-2:] == ["default", "route:general"]


async def test_hang_up_mid_menu_keeps_the_path(tmp_path: Path) -> None:
    async with journey(tmp_path, prompt_s=2.0) as st:
        call = st.sim.place_call(SimCaller("79001112235", dialled="2000", dtmf=[""],
                                           hangs_up_after_s=3.0))  # fmt: skip
        assert await asyncio.wait_for(call.finished, 10) == "ivr_only"
        await closed(st)
        (card,) = await st.cards()
    assert call.agi_commands[-1] == f"STREAM FILE ccrouter/choose-language {KEYS}"
    assert card["ivr_path"] == ["start", "menu:language", "hangup"]
    assert card["outcome"] == "ivr_only" and card["queue"] is None


async def test_incident_is_heard_on_its_line(tmp_path: Path) -> None:
    async with journey(tmp_path) as st:
        incidents = IncidentService(st.app.engine, st.settings.products)
        await incidents.set(products=["wallet"], prompt="ccrouter/outage-wallet",
                            text="top-ups delayed", duration_s=3600)  # fmt: skip
        await incidents.set(products=["terminal"], prompt="ccrouter/outage-terminal",
                            text="not this line", duration_s=3600)  # fmt: skip
        call = st.sim.place_call(SimCaller("79001112236", dialled=WALLET_DID, dtmf=["1", "#"]))
        await asyncio.wait_for(call.finished, 10)
        await closed(st)
        (card,) = await st.cards()
    assert ivr_part(call.agi_commands)[1:4] == [
        'STREAM FILE ccrouter/welcome ""', 'STREAM FILE ccrouter/outage-wallet ""',
        f"STREAM FILE ccrouter/choose-language {KEYS}"]
    assert "STREAM FILE ccrouter/outage-terminal \"\"" not in call.agi_commands
    assert card["ivr_path"][:3] == ["start", "product:wallet", "incident:1"]


async def test_out_of_hours_plays_the_message_then_voicemail(tmp_path: Path) -> None:
    settings = ivr_settings(terminal=HoursSettings(timezone="Asia/Tashkent", weekly={}))
    async with journey(tmp_path, settings) as st:
        call = st.sim.place_call(SimCaller("79001112237", dialled=TERMINAL_DID, dtmf=["2"]))
        assert await asyncio.wait_for(call.finished, 10) == "ivr_only"
        await closed(st)
        (card,) = await st.cards()
    number = card["number"]
    # The line is known from the number but not the language: the language question first,
    # so the closed message plays in Uzbek. then: callback, but the callback feature is not
    # installed here: voicemail instead.
    assert call.agi_commands == [
        f"SET VARIABLE {VAR_CARD} {number}", 'STREAM FILE ccrouter/welcome ""',
        f"STREAM FILE ccrouter/choose-language {KEYS}",
        "SET VARIABLE CHANNEL(language) uz", "SET VARIABLE CCROUTER_LANGUAGE uz",
        'STREAM FILE ccrouter/closed ""',
        "EXEC MSet CCROUTER_VOICEMAIL=100@ccrouter,CCROUTER_STATUS=voicemail",
        "VoiceMail(100@ccrouter,u)"]
    assert call.variables["CHANNEL(language)"] == "uz"
    assert card["outcome"] == "out_of_hours" and card["language"] == "uz"
    assert card["ivr_path"] == ["start", "product:terminal", "menu:language", "key:2",
                                "language:uz", "out_of_hours:callback:100@ccrouter"]


async def test_self_service_message_then_hang_up(tmp_path: Path) -> None:
    async with journey(tmp_path) as st:
        call = st.sim.place_call(SimCaller("79001112238", dialled="2000", dtmf=["1", "4"]))
        assert await asyncio.wait_for(call.finished, 10) == "ivr_only"
        await closed(st)
        (card,) = await st.cards()
    assert call.agi_commands[-2:] == ['STREAM FILE ccrouter/balance-by-sms ""',
                                      "SET VARIABLE CCROUTER_STATUS hangup"]
    assert card["outcome"] == "ivr_only" and card["ivr_path"][-1] == "hangup"
