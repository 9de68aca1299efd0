"""Transfers end to end: an operator transfers the caller (blind to another line, or attended to
another operator); the first card ends with end_reason transfer, a card of kind `transfer`
opens for the rest, both link each other, and the recording after the transfer plays from the
transfer card — over real AMI, FastAGI and HTTP sockets.

No recorded transcript has a transfer: the simulator's BlindTransfer/AttendedTransfer are
modelled on Asterisk 22's source (see `ccrouter.pbx.ami.transfers`); the shape tests here hold
the simulator to the header sets listed there."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import ami_shape  # type: ignore[import-not-found]

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import card_number
from ccrouter.demo.session import sim_recording
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.transfers import ATTENDED_TRANSFER_BRIDGE, BLIND_TRANSFER
from ccrouter.pbx.ami.translate import translate
from ccrouter.recordings.feature import install as recordings
from ccrouter.reports.store import Reports
from ccrouter.sim import SimCaller, SimOperator, SimTransfer
from ccrouter.web.auth import Role
from ccrouter.web.feature import WebFeature
from tests.routing_stack import routing_stack
from tests.stack import EXAMPLE, add_operator, stack, wait_until
from tests.test_recordings_e2e import ASTERISK_DIR, WALLET_DID, rec_settings, recording_row
from tests.web_stack import WebStack

GENERAL_DID = "712000300"  # config/ccrouter.yaml: the general line, queue general-line


@contextlib.asynccontextmanager
async def transfer_stack(tmp_path: Path, plan: SimTransfer, *, second_paused: bool = False,
                         **rec: Any) -> AsyncIterator[WebStack]:  # fmt: skip
    s = rec_settings(tmp_path, **rec)
    web = WebFeature(config_path=EXAMPLE)
    async with (
        stack(tmp_path, settings=s, features=[recordings, web], recording=sim_recording(s)) as st,
        aiohttp.ClientSession() as client,
    ):  # fmt: skip
        ws = WebStack(st, web, client)
        await ws.add_token("sup", Role.SUPERVISOR)
        add_operator(st.sim, "wallet-ru", "PJSIP/1001", "Dilnoza Karimova", answer_after_s=1,
                     talk_time_s=30, transfer=plan)  # fmt: skip
        # the second line's operator; paused for an attended transfer (reached by the first)
        st.sim.add_operator(SimOperator("PJSIP/1002", answer_after_s=1, talk_time_s=3))
        st.sim.add_member("general-line", "PJSIP/1002", name="Bekzod Aliev",
                          paused=second_paused or plan.kind == "attended")  # fmt: skip
        yield ws


Cards = tuple[dict[str, Any], dict[str, Any]]


async def transferred_call(ws: WebStack, patience_s: float = 60.0,
                           outcome: str = "answered") -> Cards:  # fmt: skip
    """Place one wallet call, wait until it is over: (its first card, its transfer card)."""
    c = ws.st.sim.place_call(SimCaller("79001234567", "Ivan", dialled=WALLET_DID,
                                       patience_s=patience_s))  # fmt: skip
    assert await asyncio.wait_for(c.finished, 20) == outcome
    await wait_until(lambda: len(ws.st.app.tracker.book) == 0, what="cards closed")
    cards = {c["kind"]: c for c in await ws.st.cards()}
    assert sorted(cards) == ["inbound", "transfer"]
    return cards["inbound"], cards["transfer"]


async def linked(ws: WebStack, number: str) -> list[str]:
    status, body = await ws.call("GET", f"/api/v1/cards/{number}", "sup")
    assert status == 200, body
    return [x["number"] for x in body["linked"]]


async def played(ws: WebStack, number: str) -> bytes:
    async with ws.client.get(f"{ws.base}/api/v1/cards/{number}/recording",
                             headers=ws.headers("sup")) as r:  # fmt: skip
        assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
        return await r.read()


def sent(ws: WebStack, name: str) -> list[dict[str, str]]:
    return [m for m in ami_shape.messages(ws.st.sim.sent_bytes(0)) if m.get("event") == name]


def carries_exactly(msg: dict[str, str], names: tuple[str, ...]) -> None:
    """The message has every header of `names` and nothing else but Event, Privilege and the
    channel snapshots' ChanVariable lines (manager.conf channelvars)."""
    got = set(msg) - {"event", "privilege"}
    want = {n.lower() for n in names}
    assert want - got == set(), f"{msg['event']} lacks {sorted(want - got)}"
    extra = {h for h in got - want if not h.endswith("chanvariable")}
    assert extra == set(), f"{msg['event']} adds {sorted(extra)}"


async def test_blind_transfer_opens_a_linked_card_with_its_own_recording(tmp_path: Path) -> None:
    plan = SimTransfer("blind", GENERAL_DID, after_s=2)
    async with transfer_stack(tmp_path, plan) as ws:
        first, rest = await transferred_call(ws)
        assert (first["outcome"], first["end_reason"], first["operator"]) == (
            "answered", "transfer", "Dilnoza Karimova")
        assert first["talk_s"] == 2 and first["queue"] == "wallet-ru"
        assert rest["transfer_of"] == first["number"] and rest["uniqueid"] == first["uniqueid"]
        assert (rest["repeat_of"], rest["last_agent_hit"]) == (None, None)  # not sent back
        assert (rest["dialled"], rest["queue"], rest["operator"], rest["interface"]) == (
            GENERAL_DID, "general-line", "Bekzod Aliev", "PJSIP/1002")
        assert (rest["outcome"], rest["end_reason"], rest["talk_s"]) == ("answered", "agent", 3)
        assert rest["answered_at"] is not None and rest["ended_at"] is not None
        assert first["ended_at"] <= rest["started_at"]
        assert await linked(ws, first["number"]) == [rest["number"]]
        assert await linked(ws, rest["number"]) == [first["number"]]
        # the second queue's ccrouter-record: StopMixMonitor, then a file of the transfer card
        one, two = [await recording_row(ws, c["number"]) for c in (first, rest)]
        assert one["path"] == f"{ASTERISK_DIR}/ccrouter-{first['number']}.wav"
        assert two["path"] == f"{ASTERISK_DIR}/ccrouter-{rest['number']}.wav"
        assert rest["recording"] == two["path"] and first["recording"] == one["path"]
        wav = tmp_path / "rec" / f"ccrouter-{rest['number']}.wav"
        assert (two["state"], two["size"]) == ("done", wav.stat().st_size)
        assert await played(ws, rest["number"]) == wav.read_bytes()
        (blind,) = sent(ws, "BlindTransfer")
        carries_exactly(blind, BLIND_TRANSFER)
        assert (blind["result"], blind["isexternal"], blind["extension"]) == (
            "Success", "Yes", GENERAL_DID)
        assert blind["transfereeuniqueid"] == first["uniqueid"]
        assert [m["uniqueid"] for m in sent(ws, "MixMonitorStop")] == [first["uniqueid"]]
        reasons = [m["reason"] for m in sent(ws, "AgentComplete")]
        assert reasons == ["transfer", "agent"]
        # one call offered (DESIGN.md: calls that entered a queue), on its first card's queue
        reports = Reports(ws.st.app.engine, sl_threshold_s=20, timezone="UTC")
        by_queue = await reports.per_queue(0, first["started_at"] + 3600)
        assert {q: (c.offered, c.answered) for q, c in by_queue.items()} == {"wallet-ru": (1, 1)}
        assert set(await reports.today_by_interface(rest["ended_at"] + 1)) == {"PJSIP/1001"}


async def test_attended_transfer_card_is_answered_by_the_target(tmp_path: Path) -> None:
    plan = SimTransfer("attended", "PJSIP/1002", after_s=2, consult_s=1)
    async with transfer_stack(tmp_path, plan) as ws:
        first, rest = await transferred_call(ws)
        assert (first["outcome"], first["end_reason"]) == ("answered", "transfer")
        assert rest["transfer_of"] == first["number"]
        assert (rest["interface"], rest["operator"], rest["outcome"]) == (
            "PJSIP/1002", "Bekzod Aliev", "answered")
        assert rest["answered_at"] == rest["started_at"] and rest["wait_s"] == 0
        assert rest["talk_s"] is not None and rest["ended_at"] >= rest["answered_at"]
        assert rest["queue"] is None  # bridged with the target outside any queue
        assert await linked(ws, rest["number"]) == [first["number"]]
        assert await linked(ws, first["number"]) == [rest["number"]]
        # MixMonitor stayed on the caller's channel: one file, linked from both cards
        one, two = [await recording_row(ws, c["number"]) for c in (first, rest)]
        wav = tmp_path / "rec" / f"ccrouter-{first['number']}.wav"
        assert one["path"] == two["path"] == rest["recording"] == first["recording"]
        assert (one["size"], two["size"], two["state"]) == ((size := wav.stat().st_size), size,
                                                            "done")  # fmt: skip
        assert await played(ws, rest["number"]) == wav.read_bytes()
        (att,) = sent(ws, "AttendedTransfer")
        carries_exactly(att, ATTENDED_TRANSFER_BRIDGE)
        assert (att["desttype"], att["transfereeuniqueid"]) == ("Bridge", first["uniqueid"])
        assert att["transfertargetchannel"].startswith("PJSIP/1002-")
        assert att["destbridgeuniqueid"] == att["origbridgeuniqueid"]
        assert sent(ws, "MixMonitorStop") == []
        assert [m["reason"] for m in sent(ws, "AgentComplete")] == ["transfer"]


async def test_a_transferred_caller_is_not_routed_back_as_a_repeat_caller(tmp_path: Path) -> None:
    """With last-agent routing on, the caller the first operator just answered is a "repeat
    caller" by number; routed again after a blind transfer they must not ring that operator's
    personal queue first (who would only get the call back)."""
    async with routing_stack(tmp_path) as st:
        st.sim.add_operator(SimOperator("PJSIP/1001", answer_after_s=1, talk_time_s=30,
                                        transfer=SimTransfer("blind", GENERAL_DID, after_s=2)))
        await st.operators.login("op1001")  # wallet-ru, and general-line behind Anna
        await st.operators.login("op1002")  # general-line's best
        await st.settled()
        c = st.sim.place_call(SimCaller("79001112200", dialled=WALLET_DID))
        assert await asyncio.wait_for(c.finished, 20) == "answered"
        await wait_until(lambda: len(st.app.tracker.book) == 0, what="cards closed")
        cards = {c["kind"]: c for c in await st.cards()}
    first, rest = cards["inbound"], cards["transfer"]
    assert first["operator"] == "Dilnoza Karimova" and first["end_reason"] == "transfer"
    assert (rest["operator"], rest["queue"], rest["transfer_of"]) == (
        "Anna Smirnova", "general-line", first["number"])
    assert (rest["repeat_of"], rest["last_agent_hit"]) == (None, None)
    assert c.transfers == [f"blind:{GENERAL_DID}"]


async def test_a_blind_transfer_into_a_line_not_recorded_links_the_first_file(
        tmp_path: Path) -> None:
    """Only wallet calls are recorded: the transferred caller's MixMonitor goes on writing the
    first card's file (option b: once bridged again), and that file is the transfer card's."""
    plan = SimTransfer("blind", GENERAL_DID, after_s=2)
    async with transfer_stack(tmp_path, plan, products=["wallet"]) as ws:
        first, rest = await transferred_call(ws)
        assert rest["operator"] == "Bekzod Aliev"
        one, two = [await recording_row(ws, c["number"]) for c in (first, rest)]
        assert one["path"] == two["path"] == rest["recording"] == first["recording"]
        assert two["state"] == "done" and two["started_at"] == rest["answered_at"]
        assert sent(ws, "MixMonitorStop") == []


async def test_a_blind_transfer_abandoned_in_the_second_queue_has_no_recording(
        tmp_path: Path) -> None:
    plan = SimTransfer("blind", GENERAL_DID, after_s=2)
    async with transfer_stack(tmp_path, plan, second_paused=True) as ws:
        first, rest = await transferred_call(ws, patience_s=6, outcome="abandoned")
        assert (first["outcome"], rest["outcome"]) == ("answered", "abandoned")
        assert (await recording_row(ws, first["number"]))["state"] == "done"
        info = await recording_row(ws, rest["number"])  # its own MixMonitor: nothing bridged
        assert (info["path"], info["state"]) == (
            f"{ASTERISK_DIR}/ccrouter-{rest['number']}.wav", "none")


def _answered_book() -> tuple[CallBook, ev.ChannelRef]:
    serials = iter(range(1, 100))
    book = CallBook(new_number=lambda: card_number(next(serials)), close_grace_s=10)
    chan = ev.ChannelRef("u1", "u1", "PJSIP/trunk-00000001", "79001234567", "Ivan", "2000",
                         "ccrouter-inbound")  # fmt: skip
    book.apply(ev.CallerJoined(1.0, chan, "wallet-ru", 1, 1))
    book.apply(ev.AgentAnswered(2.0, chan, "wallet-ru", "PJSIP/1001", "Dilnoza", 1, 1))
    return book, chan


def _blind(at: float, chan: ev.ChannelRef) -> ev.CallTransferred:
    return ev.CallTransferred(at, "blind", "Success", chan, "PJSIP/1001-00000002", "b1", True,
                              context="ccrouter-inbound", extension=GENERAL_DID)  # fmt: skip


def _complete(at: float, chan: ev.ChannelRef) -> ev.AgentFinished:
    return ev.AgentFinished(at, chan, "wallet-ru", "PJSIP/1001", "Dilnoza", 1, 7, "transfer")


def test_agent_complete_before_or_after_the_transfer_event_gives_the_same_cards() -> None:
    """app_queue's AgentComplete and the manager's BlindTransfer come from two subscribers of
    the same stasis message: either may reach ccrouter first."""
    results = []
    for order in ("transfer first", "complete first"):
        book, chan = _answered_book()
        events: list[Any] = [_blind(5.0, chan), _complete(5.0, chan)]
        writes = [w for e in (events if order == "transfer first" else events[::-1])
                  for w in book.apply(e)]  # fmt: skip
        first, rest = card_number(1), card_number(2)
        merged: dict[str, dict[str, Any]] = {}
        for w in writes:
            merged.setdefault(w.number, {}).update(w.fields)
        assert merged[first]["state"] == "closed" and merged[first]["talk_s"] == 7
        assert merged[rest]["kind"] == "transfer" and merged[rest]["transfer_of"] == first
        assert merged[rest]["dialled"] == GENERAL_DID and "state" in merged[rest]
        live = book.find(uniqueid="u1")
        assert live is not None and live.card == rest
        results.append(merged)
    assert results[0] == results[1]


def test_a_transfer_whose_agent_complete_never_comes_closes_after_the_grace() -> None:
    book, chan = _answered_book()
    book.apply(_blind(5.0, chan))
    assert book.expire(14.0) == []
    (closed,) = book.expire(15.0)
    assert (closed.number, closed.fields["close_reason"]) == (card_number(1), "incomplete")
    live = book.find(uniqueid="u1")
    assert live is not None and live.card == card_number(2)  # the rest of the call lives on


def test_an_attended_transfer_to_an_application_is_answered_by_nobody() -> None:
    book, chan = _answered_book()
    book.apply(ev.CallTransferred(5.0, "attended", "Success", chan, "PJSIP/1001-00000002", "b1",
                                  True, dest_type="App"))  # fmt: skip
    book.apply(_complete(5.0, chan))
    writes = book.apply(ev.ChannelHungUp(9.0, "u1", "u1", chan.channel, 16, "Normal Clearing"))
    fields = {k: v for w in writes for k, v in w.fields.items()}
    assert {w.number for w in writes} == {card_number(2)}
    assert (fields["state"], fields["outcome"]) == ("closed", "ivr_only")
    assert "talk_s" not in fields


def test_the_translator_reads_the_source_shaped_events() -> None:
    snap = {f"Transferee{k}": v for k, v in (("Uniqueid", "u1"), ("Linkedid", "u1"),
                                             ("Channel", "PJSIP/trunk-1"))}  # fmt: skip
    e = translate({"Event": "BlindTransfer", "Result": "Success",
                   "TransfererChannel": "PJSIP/1001-2", "BridgeUniqueid": "b1",
                   "IsExternal": "Yes", "Context": "ccrouter-inbound", "Extension": GENERAL_DID,
                   **snap}, 1.0)  # fmt: skip
    assert isinstance(e, ev.CallTransferred) and e.transferee is not None
    assert (e.kind, e.transferee.uniqueid, e.extension, e.is_external) == (
        "blind", "u1", GENERAL_DID, True)
    e = translate({"Event": "AttendedTransfer", "Result": "Success", "DestType": "Bridge",
                   "OrigTransfererChannel": "PJSIP/1001-2", "OrigBridgeUniqueid": "b1",
                   "TransferTargetChannel": "PJSIP/1002-0000000c", **snap}, 1.0)  # fmt: skip
    assert isinstance(e, ev.CallTransferred)
    assert (e.kind, e.target_interface, e.bridge) == ("attended", "PJSIP/1002", "b1")
    try:
        translate({"Event": "BlindTransfer", "Result": "Success"}, 1.0)
    except ValueError as exc:
        assert "TransfererChannel" in str(exc) and "missing" in str(exc)
    else:
        raise AssertionError("a BlindTransfer without its transferer was accepted")


def test_a_transfer_restored_half_done_keeps_the_transfer_card_as_the_call() -> None:
    """Both cards open (the transfer written, its AgentComplete not yet): the transfer card is
    the channel's call, the first waits for its AgentComplete — its grace counted from the
    restore, its end at the transfer."""
    book = CallBook(new_number=lambda: card_number(50), close_grace_s=10)
    call = {"uniqueid": "u1", "linkedid": "u1", "channel": "PJSIP/trunk-00000001"}
    book.restore([
        {**call, "number": card_number(1), "started_at": 1.0, "queue": "wallet-ru",
         "answered_at": 2.0, "interface": "PJSIP/1001", "end_reason": "transfer"},
        {**call, "number": card_number(2), "started_at": 5.0, "kind": "transfer",
         "transfer_of": card_number(1), "dialled": GENERAL_DID},
    ], now=100.0)  # fmt: skip
    live, first = book.find(uniqueid="u1"), book.handed_over("u1")
    assert live is not None and first is not None
    assert (live.card, live.transfer_kind, first.card) == (card_number(2), "blind", card_number(1))
    assert book.expire(109.0) == []
    (closed,) = book.expire(110.0)
    assert (closed.number, closed.fields["close_reason"], closed.fields["ended_at"]) == (
        card_number(1), "incomplete", 5.0)
