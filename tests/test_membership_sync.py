"""Membership sync at floor scale: the difference is sent with up to MAX_IN_FLIGHT actions
awaiting their replies (one member's actions in order), `staffed()` follows Asterisk's members
as they change, and a dropped connection stops the rest until the resync after the reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ccrouter.config import Operator, Settings
from ccrouter.db.engine import make_engine
from ccrouter.db.migrate import migrate
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.connection import AmiNotConnected
from ccrouter.routing import membership as ms
from ccrouter.routing.membership import MembershipService
from ccrouter.routing.model.skills import Member, membership_diff
from ccrouter.routing.state import OperatorService, OperatorStore
from ccrouter.routing.table import all_target_skills
from tests.stack import example_settings

OPERATORS = 150


class ScriptedAmi:
    """Answers QueueStatus with no members and every other action with Success, each reply a
    few loop turns later; records the order of actions and how many awaited a reply at once."""

    def __init__(self, drop_after: int | None = None) -> None:
        self.connected = True
        self.sent: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.drop_after = drop_after

    async def send(self, action: Mapping[str, Any], *, as_list: bool = False,
                   timeout: float | None = None) -> Any:  # fmt: skip
        if not self.connected:
            raise AmiNotConnected(f"AMI not connected; {action['Action']} not sent")
        if action["Action"] == "QueueStatus":
            return [{"Event": "QueueStatusComplete"}]
        self.sent.append(dict(action))
        if self.drop_after is not None and len(self.sent) >= self.drop_after:
            self.connected = False
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        return {"Response": "Success"}


def floor_settings() -> Settings:
    s = example_settings()
    ops = [Operator(id=f"op{i:04d}", name=f"Op {i}", interface=f"PJSIP/{3000 + i}",
                    logged_in=True, skills={"ru": 90, "uz": 60, "wallet": 80, "terminal": 50,
                                            "general": 70})
           for i in range(OPERATORS)]  # fmt: skip
    return s.model_copy(update={"operators": ops})


Make = Callable[[ScriptedAmi], Awaitable[MembershipService]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """A membership service for OPERATORS logged-in operators, sending on `ami`."""
    s = floor_settings()
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await migrate(engine)
    operators = OperatorService(s, OperatorStore(engine))

    async def build(ami: ScriptedAmi) -> MembershipService:
        svc = MembershipService(s, operators, ami, all_target_skills(s))
        await svc.load()
        return svc

    yield build
    await engine.dispose()


async def test_the_start_up_difference_goes_out_many_at_a_time_each_member_in_order(
    make: Make,
) -> None:
    ami = ScriptedAmi()
    svc = await make(ami)
    # One member paused with a reason: QueueAdd has no Reason, a QueuePause must follow it.
    key = next(k for k in svc.desired if k[1] == "PJSIP/3007")
    svc.desired[key] = Member(*key, 3, True, "lunch", "Op 7", "PJSIP/3007")
    await svc.resync(ami)
    adds = [a for a in ami.sent if a["Action"] == "QueueAdd"]
    assert sorted((a["Queue"], a["Interface"]) for a in adds) == sorted(svc.desired)
    assert len(svc.desired) > ms.MAX_IN_FLIGHT * 2
    assert ami.max_in_flight == ms.MAX_IN_FLIGHT
    mine = [(a["Action"], a.get("Reason")) for a in ami.sent
            if (a["Queue"], a["Interface"]) == key]  # fmt: skip
    assert mine == [("QueueAdd", None), ("QueuePause", "lunch")]
    assert svc.actions_sent == len(ami.sent) == len(svc.desired) + 1
    assert svc.actual.keys() == svc.desired.keys()
    assert svc.staffed() == frozenset(q for q, _ in svc.desired)


async def test_a_dropped_connection_stops_the_rest_and_the_resync_sends_what_is_missing(
    make: Make,
) -> None:
    ami = ScriptedAmi(drop_after=100)
    svc = await make(ami)
    await svc.resync(ami)
    assert len(ami.sent) == 100  # the workers stop: no flood of actions failing one by one
    assert len(svc.actual) == 100
    # Asterisk has those 100; after the reconnect, QueueStatus lists them.
    kept = {(a["Queue"], a["Interface"]) for a in ami.sent}
    again = ami
    again.sent, again.connected, again.drop_after = [], True, None

    async def status(action: Mapping[str, Any], **_: Any) -> Any:
        return [{"Event": "QueueMember", "Queue": q, "Name": i, "Location": i,
                 "StateInterface": i, "Membership": "dynamic", "Penalty": "0",
                 "CallsTaken": "0", "LastCall": "0", "LastPause": "0", "LoginTime": "0",
                 "InCall": "0", "Status": "1", "Paused": "0", "PausedReason": "",
                 "Wrapuptime": "0"} for q, i in kept] + [{"Event": "QueueStatusComplete"}]

    send = again.send

    async def answer(action: Mapping[str, Any], **kw: Any) -> Any:
        return await (status(action) if action["Action"] == "QueueStatus" else send(action, **kw))

    again.send = answer  # type: ignore[method-assign]
    await svc.resync(again)
    resent = {(a["Queue"], a["Interface"]) for a in again.sent if a["Action"] == "QueueAdd"}
    assert resent == set(svc.desired) - kept
    assert not resent & kept


async def test_staffed_follows_member_events_and_the_diff_skips_status_changes(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = ScriptedAmi()
    svc = await make(ami)
    await svc.resync(ami)
    queues = frozenset(q for q, _ in svc.desired)
    assert svc.staffed() == queues
    one_queue = "wallet-tg"
    for key in [k for k in list(svc.actual) if k[0] == one_queue]:
        svc.on_event(ev.MemberRemoved(member=_state(svc.actual[key]), at=1.0))
    assert svc.staffed() == queues - {one_queue}
    sent = len(ami.sent)
    await svc._apply()  # removed behind ccrouter's back (policy revert): added again
    assert len(ami.sent) - sent == OPERATORS
    assert svc.staffed() == queues
    # A member taking a call (status only) needs no action, and no diff is computed.
    key = next(iter(svc.actual))
    svc.on_event(ev.MemberChanged(member=_state(svc.actual[key], status=2), at=2.0))
    diffs: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        diffs.append(1)
        return membership_diff(*args, **kwargs)

    monkeypatch.setattr(ms, "membership_diff", counting)
    await svc._apply()
    assert diffs == [] and len(ami.sent) - sent == OPERATORS


def _state(m: Member, status: int | None = None) -> ev.MemberState:
    return ev.MemberState(
        at=0.0, queue=m.queue, interface=m.interface, member_name=m.name,
        state_interface=m.state_interface, penalty=m.penalty, paused=m.paused,
        paused_reason=m.reason, status=m.status if status is None else status,
        in_call=status == 2, calls_taken=0, membership="dynamic",
    )  # fmt: skip
