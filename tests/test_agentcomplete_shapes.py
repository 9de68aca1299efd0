"""AgentComplete without the caller's channel block (real Asterisk 22.10.1, issue 11 item 1).

The fixture's three events — one with no channel block, two with only the member's `Dest*` block —
replayed through the AMI parser, the translator and the tracker after the events that precede
them on a real call (the answered transcript's own QueueCallerJoin, AgentConnect and Hangup,
re-addressed to each call): every call closes with its talk time and end reason, whichever of
AgentComplete and the caller's Hangup comes first. Then the whole daemon against the simulator
forced to send these shapes for every short call: no card closes `incomplete`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import card_number
from ccrouter.calls.tracker import CallTracker
from ccrouter.pbx.ami.protocol import AmiMessage
from ccrouter.pbx.ami.replay import messages
from ccrouter.sim import SimCaller, SimOperator
from ccrouter.sim.model import LostCallerBlock
from tests.cardrows import CardRows
from tests.conftest import fixture_bytes
from tests.stack import stack, wait_until

FIXTURE = "ami-agentcomplete-without-caller.txt"


@dataclass(frozen=True)
class Call:
    """One caller of the fixture: its Local `;2` channel and the member it reached."""

    uniqueid: str
    linkedid: str
    interface: str
    member: str
    queue: str = "wallet-ru"

    @property
    def channel(self) -> str:
        return f"Local/s@acc-inbound-{self.uniqueid.rsplit('.', 1)[1]};2"


# The fixture names the members and (in its Dest* blocks) the callers' linkedids; the first event
# names no call at all: its caller gets a linkedid of our own.
CALLS = (
    Call("1796217400.9167101", "1796217400.9167100", "Local/op21@acc-agents", "Perf 21"),
    Call("1796217540.9167171", "1796217540.9167170", "Local/op21@acc-agents", "Perf 21"),
    Call("1796217671.9167331", "1796217671.9167330", "Local/op29@acc-agents", "Perf 29"),
)
EXPECTED = [(0, "caller"), (0, "caller"), (1, "agent")]  # the fixture's TalkTime and Reason


def recorded(event: str, **match: str) -> AmiMessage:
    """The first `event` of the answered transcript whose headers match."""
    for msg in messages(fixture_bytes("ami-queue-answered.txt")):
        if msg.get("Event") == event and all(msg.get(k) == v for k, v in match.items()):
            return msg
    raise AssertionError(f"no {event} {match} in the answered transcript")


def readdressed(msg: AmiMessage, call: Call) -> AmiMessage:
    """`msg` with the caller's and the member's identity of `call`, parsed again from bytes."""
    new = {"Channel": call.channel, "Uniqueid": call.uniqueid, "Linkedid": call.linkedid,
           "Queue": call.queue, "Interface": call.interface, "MemberName": call.member}  # fmt: skip
    lines = [f"{k}: {new.get(k, v)}" for k, v in msg.items()]
    (out,) = messages(("\r\n".join(lines) + "\r\n\r\n").encode())
    return out


def lead_in(call: Call) -> tuple[list[AmiMessage], AmiMessage]:
    """The events before AgentComplete on `call` (join, connect), and the caller's Hangup."""
    join = readdressed(recorded("QueueCallerJoin"), call)
    connect = readdressed(recorded("AgentConnect"), call)
    hangup = readdressed(recorded("Hangup", Channel="Local/s@lab-inbound-00000000;2"), call)
    return [join, connect], hangup


def completes() -> list[AmiMessage]:
    out = [m for m in messages(fixture_bytes(FIXTURE)) if m.get("Event") == "AgentComplete"]
    assert len(out) == 3 and not any("Uniqueid" in m for m in out)
    return out


def tracker() -> tuple[CallTracker, CardRows]:
    serials, ticks = itertools.count(1), itertools.count()
    rows = CardRows()
    book = CallBook(new_number=lambda: card_number(next(serials)), close_grace_s=10.0)
    return CallTracker(book, rows, clock=lambda: 1000.0 + next(ticks)), rows


@pytest.mark.parametrize("hangup_first", [True, False], ids=["after-hangup", "before-hangup"])
def test_each_fixture_event_closes_its_call_with_talk_time_and_reason(hangup_first: bool) -> None:
    t, rows = tracker()
    for call, complete in zip(CALLS, completes(), strict=True):
        before, hangup = lead_in(call)
        for msg in before:
            t.on_ami_event(msg)
        for msg in (hangup, complete) if hangup_first else (complete, hangup):
            t.on_ami_event(msg)
    assert t.bad_events == 0 and len(t.book) == 0
    cards = sorted(rows.rows.values(), key=lambda c: c["uniqueid"])
    assert [c["uniqueid"] for c in cards] == [c.uniqueid for c in CALLS]
    assert [(c["talk_s"], c["end_reason"]) for c in cards] == EXPECTED
    for card, call in zip(cards, CALLS, strict=True):
        assert card["state"] == "closed" and card["close_reason"] == "normal"
        assert card["outcome"] == "answered" and card["interface"] == call.interface


def test_dest_linkedid_names_the_call_when_the_member_took_another_since() -> None:
    """Call 2's AgentComplete (Dest* block only) comes after op21 was connected to a newer call:
    its DestLinkedid, not the member, names the call."""
    t, rows = tracker()
    newer = Call("1796217550.9167181", "1796217550.9167180", "Local/op21@acc-agents", "Perf 21")
    for call in (CALLS[1], newer):
        for msg in lead_in(call)[0]:
            t.on_ami_event(msg)
    t.on_ami_event(lead_in(CALLS[1])[1])
    t.on_ami_event(completes()[1])
    by_uid = {c["uniqueid"]: c for c in rows.rows.values()}
    assert by_uid[CALLS[1].uniqueid]["state"] == "closed"
    assert by_uid[CALLS[1].uniqueid]["end_reason"] == "caller"
    assert "talk_s" not in by_uid[newer.uniqueid] and by_uid[newer.uniqueid]["state"] == "open"


def test_event_without_caller_block_for_no_known_call_changes_nothing() -> None:
    t, rows = tracker()
    for complete in completes():
        t.on_ami_event(complete)
    assert t.bad_events == 0 and rows.rows == {}


WALLET_DID = "712000100"  # routes to wallet-ru in config/ccrouter.yaml
OPERATORS = 20
WAVES = 8


async def test_load_of_short_calls_with_forced_shapes_leaves_no_incomplete_card(
    tmp_path: Path,
) -> None:
    """160 calls that end within a second of AgentConnect (half the operators hang up after
    0.5-1 s, the other half's callers hang up at once or after 0.5 s), every AgentComplete
    without the caller's block (forced; both shapes, seeded): all cards close normally with
    their talk time and end reason."""
    lost = LostCallerBlock(caller_ends=1.0, agent_ends=1.0, no_block=0.5)
    async with stack(tmp_path, lost_caller_block=lost, seed=11) as st:
        for n in range(OPERATORS):
            iface = f"Local/op{n:02d}@acc-agents"
            st.sim.add_operator(SimOperator(iface, answer_after_s=0.5,
                                            talk_time_s=(0.0, 0.5, 1.0)[n % 3],
                                            hangs_up=n % 2 == 0))  # fmt: skip
            st.sim.add_member("wallet-ru", iface, name=f"Perf {n:02d}")
        calls = []
        for wave in range(WAVES):  # never more callers than operators: nobody waits or overflows
            placed = [st.sim.place_call(SimCaller(f"7903{wave:02d}{i:04d}", dialled=WALLET_DID))
                      for i in range(OPERATORS)]  # fmt: skip
            outcomes = await asyncio.wait_for(asyncio.gather(*(c.finished for c in placed)), 20)
            assert outcomes == ["answered"] * OPERATORS
            calls += placed
        book = st.app.tracker.book
        await wait_until(lambda: len(book) == 0, timeout=10, what="every card closed")
        cards = await st.cards()
        assert st.app.tracker.bad_events == 0
    shapes = Counter(c.agent_complete for c in calls)
    assert set(shapes) == {"none", "dest"} and min(shapes.values()) > OPERATORS, shapes
    assert len(cards) == len(calls) == OPERATORS * WAVES
    assert Counter(c["close_reason"] for c in cards) == {"normal": len(calls)}
    by_uid = {c["uniqueid"]: c for c in cards}
    for call in calls:
        card = by_uid[call.uniqueid]
        assert card["outcome"] == "answered" and card["state"] == "closed"
        assert (card["talk_s"], card["interface"]) == (call.talk_time, call.operator)
        assert card["end_reason"] in ("agent", "caller")
