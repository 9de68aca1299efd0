"""AgentComplete without the caller's channel block (real Asterisk 22.10.1, issue 11 item 1).

The fixture's three events — one with no channel block, two with only the member's `Dest*` block —
replayed through the AMI parser, the translator and the tracker after the events that precede
them on a real call (the answered transcript's own QueueCallerJoin, AgentConnect and Hangup,
re-addressed to each call): every call closes with its talk time and end reason, whichever of
AgentComplete and the caller's Hangup comes first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from ccrouter.ami.protocol import AmiMessage
from ccrouter.ami.replay import messages
from ccrouter.domain.calls import CallBook
from ccrouter.domain.cards import card_number
from ccrouter.services.tracker import CallTracker
from tests.cardrows import CardRows
from tests.conftest import fixture_bytes

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
