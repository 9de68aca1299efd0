"""An Asterisk restart while ccrouter stays connected: the PBX accepts logins while it still
boots, its queue actions answer `Response: Error` (app_queue not loaded yet) until `FullyBooted`;
ccrouter keeps the connection, resyncs right after `FullyBooted`, and the calls the restart
killed are closed `lost_on_pbx_restart` (issue 11 item 2)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import card_number
from ccrouter.calls.tracker import CallTracker
from ccrouter.config import Settings
from ccrouter.pbx.ami.connection import AmiActionFailed
from ccrouter.pbx.ami.protocol import FastAMIProtocol
from ccrouter.routing.model.decide import RouteDecision
from ccrouter.sim import SimCaller
from tests.cardrows import CardRows
from tests.conftest import fixture_bytes
from tests.routing_stack import RoutingStack, routing_settings, routing_stack
from tests.stack import wait_until

BOOT_FIXTURE = "ami-queuestatus-during-boot.txt"
WALLET_DID = "712000100"
DECISION = RouteDecision(
    target="support-ru", queue="support-ru", product="support", language="ru",
    priority=0, timeout_s=60,
)  # fmt: skip


def boot_request_and_reply() -> tuple[bytes, bytes]:
    """The fixture's QueueStatus request block and Asterisk's only reply, as sent."""
    raw = fixture_bytes(BOOT_FIXTURE)
    request, sep, reply = raw.partition(b"\r\n\r\n")
    return request + sep, reply


class _Transport:
    def __init__(self) -> None:
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        pass


async def test_a_list_action_completes_on_its_only_reply_an_error() -> None:
    request, reply = boot_request_and_reply()
    action_id = next(line.split(": ", 1)[1] for line in request.decode().split("\r\n")
                     if line.startswith("ActionID: "))  # fmt: skip
    protocol = FastAMIProtocol()
    protocol.connection_made(_Transport())
    future = protocol.send({"Action": "QueueStatus", "ActionID": action_id}, as_list=True)
    protocol.data_received(reply)
    assert future.done(), "a list action answered only by Response: Error must complete"
    [message] = future.result()
    assert message["Response"] == "Error"
    assert message["Message"].startswith("Invalid/unknown command: QueueStatus.")
    assert protocol.responses == {}  # nothing left pending


async def test_a_list_action_still_collects_its_items_after_a_success_reply() -> None:
    protocol = FastAMIProtocol()
    protocol.connection_made(_Transport())
    future = protocol.send({"Action": "CoreShowChannels", "ActionID": "l1"}, as_list=True)
    protocol.data_received(b"Response: Success\r\nActionID: l1\r\nEventList: start\r\n"
                           b"Message: Channels will follow\r\n\r\n")  # fmt: skip
    assert not future.done()
    protocol.data_received(b"Event: CoreShowChannelsComplete\r\nActionID: l1\r\n"
                           b"EventList: Complete\r\nListItems: 0\r\n\r\n")  # fmt: skip
    assert [m["Response"] if "Response" in m else m["Event"] for m in future.result()] == [
        "Success", "CoreShowChannelsComplete"]  # fmt: skip


def logged_in_settings() -> Settings:
    s = routing_settings()
    ops = [op.model_copy(update={"logged_in": True}) for op in s.operators]
    return s.model_copy(update={"operators": ops})


def dynamic_members(st: RoutingStack) -> dict[tuple[str, str], tuple[int, bool]]:
    return {(q, m.interface): (m.penalty, m.paused)
            for q in st.membership.managed for m in st.sim.members(q) if m.dynamic}  # fmt: skip


async def test_a_restart_that_boots_keeps_the_connection_and_resyncs_at_fully_booted(
    tmp_path: Path,
) -> None:
    talk = {"answer_after_s": 1, "talk_time_s": 600}  # calls outlive the restart
    async with routing_stack(tmp_path, logged_in_settings(), operator=talk) as st:
        await st.settled()
        members = dynamic_members(st)
        assert members, "the operators' memberships are in Asterisk"
        calls = [st.sim.place_call(SimCaller(f"7902{i:07d}", dialled=WALLET_DID, patience_s=600))
                 for i in range(3)]  # fmt: skip
        book = st.app.tracker.book
        await wait_until(lambda: sum(bool(v.linkedid) for v in book.views()) == 3, what="3 calls")
        connects = st.app.ami.connects
        await st.sim.restart(boot_s=1.0)
        await wait_until(lambda: st.app.ami.connects == connects + 1, 3, "logged in again")
        await asyncio.sleep(0.3)  # booting: ccrouter waits, the connection stays
        assert st.sim.booted_at is None and dynamic_members(st) == {}
        assert len(book) == 3, "nothing is reconciled before the PBX is booted"
        await wait_until(lambda: st.sim.booted_at is not None, 3, "FullyBooted")
        await wait_until(lambda: dynamic_members(st) == members, 3, "members back")
        loop = asyncio.get_running_loop()
        assert st.sim.booted_at is not None
        assert loop.time() - st.sim.booted_at < 1.0, "members back within 1 s of FullyBooted"
        await wait_until(lambda: len(book) == 0, 3, "vanished calls closed")
        assert st.app.ami.connects == connects + 1, "no reconnect beyond the restart's own"
        await wait_until(lambda: st.app.ami.pbx_ready, 3, "every resync hook done")
        rows = {r["uniqueid"]: r for r in await st.cards()}
        for call in calls:
            assert rows[call.uniqueid]["close_reason"] == "lost_on_pbx_restart"


async def test_a_resync_refused_while_booting_runs_again_on_the_same_connection(
    tmp_path: Path,
) -> None:
    """A PBX that never says FullyBooted (a user without the `system` read class): the resync
    is tried, refused (`Invalid/unknown command`), tried again; pbx_restarted holds until it
    succeeds, so the call the restart killed is closed `lost_on_pbx_restart`."""
    async with routing_stack(tmp_path, logged_in_settings()) as st:
        await st.settled()
        call = st.sim.place_call(SimCaller("790200001", dialled=WALLET_DID, patience_s=600))
        book = st.app.tracker.book
        await wait_until(lambda: any(v.linkedid for v in book.views()), what="a call")
        connects = st.app.ami.connects
        st.app.ami.boot_retry_s = 0.4
        await st.sim.restart(boot_s=0.6, announce_boot=False)
        await wait_until(lambda: st.app.ami.connects == connects + 1, 3, "logged in again")
        await wait_until(lambda: len(book) == 0, 8, "the vanished call closed")
        await wait_until(lambda: st.app.ami.pbx_ready, 8, "resynced")
        assert st.app.ami.connects == connects + 1
        rows = {r["uniqueid"]: r for r in await st.cards()}
        assert rows[call.uniqueid]["close_reason"] == "lost_on_pbx_restart"


class FlakyAmi:
    """CoreStatus reports `started`; CoreShowChannels fails while `fail` is set."""

    def __init__(self) -> None:
        self.started = "2026-12-02 10:00:00"
        self.fail = False

    async def send(self, action: Mapping[str, Any], *, as_list: bool = False,
                   timeout: float | None = None) -> Any:  # fmt: skip
        name = action["Action"]
        if name == "CoreStatus":
            date, time_ = self.started.split()
            return {"Response": "Success", "CoreStartupDate": date, "CoreStartupTime": time_}
        if name == "CoreShowChannels" and self.fail:
            raise AmiActionFailed(name, "Invalid/unknown command: CoreShowChannels.")
        return [{"Event": f"{name}Complete"}]


async def test_pbx_restarted_holds_until_a_resync_succeeds() -> None:
    rows = CardRows()
    serials = itertools.count(1)
    book = CallBook(new_number=lambda: card_number(next(serials)), short_abandon_s=5)
    ticks = itertools.count()
    tracker = CallTracker(book, rows, clock=lambda: 1000.0 + next(ticks))
    ami = FlakyAmi()
    await tracker.resync(ami)  # the first connect: nothing to compare with
    tracker.open_routed(uniqueid="1.1", channel="PJSIP/trunk-00000001", caller_num="79001",
                        caller_name="", dialled="712000100", decision=DECISION)  # fmt: skip
    ami.started, ami.fail = "2026-12-02 11:00:00", True  # restarted; the resync is refused
    with pytest.raises(AmiActionFailed):
        await tracker.resync(ami)
    ami.fail = False
    await tracker.resync(ami)  # the retry: the same restart, not a plain reconnect
    (row,) = rows.rows.values()
    assert (row["state"], row["close_reason"]) == ("closed", "lost_on_pbx_restart")
