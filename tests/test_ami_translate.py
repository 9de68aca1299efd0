"""AMI messages -> domain events on the hot path: exact events from the real transcripts, the
rare shapes (repeated headers, non-str values) read like the common one, and `ev.builder`
makes genuine frozen events."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ccrouter.calls.model.cards import CardWrite
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.protocol import Headers
from ccrouter.pbx.ami.replay import messages
from ccrouter.pbx.ami.translate import BadEvent, translate
from tests.conftest import fixture_bytes


def first(fixture: str, event: str) -> dict[str, Any]:
    return next(m for m in messages(fixture_bytes(fixture)) if m.get("Event") == event)


CALLER = ev.ChannelRef(
    uniqueid="1795443825.1", linkedid="1795443825.0", channel="Local/s@lab-inbound-00000000;2",
    caller_num="79001234567", caller_name="Lab Caller RU", exten="s", context="lab-inbound",
)  # fmt: skip


def test_agent_connect_of_the_answered_transcript() -> None:
    event = translate(first("ami-queue-answered.txt", "AgentConnect"), 5.0)
    assert event == ev.AgentAnswered(
        at=5.0, chan=CALLER, queue="support-ru", interface="Local/agent1@lab-agents",
        member_name="Agent One RU", hold_time=0, ring_time=0,
        dest_channel="Local/agent1@lab-agents-00000001;1",  # the member's half ChanSpy spies on
    )  # fmt: skip
    assert isinstance(event, ev.AgentAnswered) and type(event.chan) is ev.ChannelRef


def test_agent_complete_and_hangup_of_the_answered_transcript() -> None:
    done = translate(first("ami-queue-answered.txt", "AgentComplete"), 9.0)
    assert isinstance(done, ev.AgentFinished)
    assert (done.chan.uniqueid, done.queue, done.reason) == ("1795443825.1", "support-ru", "agent")
    assert done.talk_time >= 0 and done.hold_time >= 0
    hangup = translate(first("ami-queue-answered.txt", "Hangup"), 9.0)
    assert isinstance(hangup, ev.ChannelHungUp)
    assert hangup.linkedid == "1795443825.0" and hangup.cause_txt and hangup.cause >= 0


def test_member_pause_of_the_abandoned_transcript() -> None:
    event = translate(first("ami-queue-abandoned.txt", "QueueMemberPause"), 1.0)
    assert isinstance(event, ev.MemberChanged)
    m = event.member
    assert (m.queue, m.interface, m.member_name) == (
        "support-uz",
        "Local/agent3@lab-agents",
        "Agent Three UZ",
    )
    assert m.paused and m.paused_reason == "lab-abandon-test" and m.membership == "static"


def test_repeated_headers_and_non_str_values_read_like_plain_ones() -> None:
    msg = first("ami-queue-answered.txt", "AgentConnect")
    assert type(msg) is Headers  # the parser's common case: values read unchecked
    plain = translate(msg, 1.0)
    assert translate(dict(msg), 1.0) == plain  # a plain dict: values checked first
    odd = dict(msg, Queue=["old-queue", "support-ru"], HoldTime=0, RingTime="0",
               ChanVariable=["OTHER=1", "CCROUTER_CARD=0000013"])  # fmt: skip
    event = translate(odd, 1.0)
    assert isinstance(plain, ev.AgentAnswered) and isinstance(event, ev.AgentAnswered)
    assert event == dataclasses.replace(plain, chan=dataclasses.replace(plain.chan, card="0000013"))


def test_bad_numbers_and_missing_headers_name_the_header() -> None:
    msg = first("ami-queue-answered.txt", "AgentComplete")
    with pytest.raises(BadEvent, match="AgentComplete: header 'TalkTime' is not a number: 'x'"):
        translate(dict(msg, TalkTime="x"), 1.0)
    with pytest.raises(BadEvent, match="AgentComplete: header 'Interface' is missing"):
        translate(dict(msg, Interface=""), 1.0)
    member = first("ami-queue-answered.txt", "QueueMemberStatus")
    with pytest.raises(BadEvent, match="'CallsTaken' is not a number"):
        translate(dict(member, CallsTaken="many"), 1.0)


EVENT_CLASSES = [
    c for c in vars(ev).values()
    if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == ev.__name__
]  # fmt: skip


def _sample(cls: type[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        t = str(f.type)
        values[f.name] = (
            CALLER if t == "ChannelRef" else
            ev.MemberState(1.0, "q", "i", "n", "s", 1, True, "r", 2, False, 3, "static")
            if t == "MemberState" else
            (("k", "v"),) if t.startswith("tuple") else
            float(i) if t == "float" else i if t == "int" else i % 2 == 0 if t == "bool" else
            f"v{i}"
        )  # fmt: skip
    return values


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
def test_builder_makes_the_same_frozen_event(cls: type[Any]) -> None:
    values = _sample(cls)
    built = ev.builder(cls)(*values.values())
    normal = cls(**values)
    assert type(built) is cls and built == normal and hash(built) == hash(normal)
    assert repr(built) == repr(normal)
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, name, None)
    assert dataclasses.replace(built, **{name: values[name]}) == normal
    assert ev.builder(cls)(**values) == normal  # keywords and defaults as cls() takes them


def test_builder_refuses_what_it_cannot_copy() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True, weakref_slot=True)
    class Weak:  # CPython refuses __class__ assignment to this layout
        x: int

    for cls in (Mutable, NoSlots, dict):
        with pytest.raises(TypeError, match="frozen slotted dataclass"):
            ev.builder(cls)
    with pytest.raises(TypeError, match="slots beyond its fields"):
        ev.builder(Weak)


def test_builder_runs_post_init_checks() -> None:
    make = ev.builder(CardWrite)
    write = make("0000013", {"queue": "q"}, insert=True)
    assert type(write) is CardWrite and write == CardWrite("0000013", {"queue": "q"}, True)
    assert make("0000013") == CardWrite("0000013")  # default_factory
    with pytest.raises(ValueError, match="unknown card fields"):
        make("0000013", {"no_such_field": 1})


def test_agent_complete_without_the_callers_block() -> None:
    """The fixture's three shapes: no channel block, then the member's Dest* block only."""
    none, dest, agent = (translate(m, 2.0) for m in messages(
        fixture_bytes("ami-agentcomplete-without-caller.txt")))  # fmt: skip
    no_caller = ev.ChannelRef("", "", "", "", "", "", "")
    assert none == ev.AgentFinished(
        at=2.0, chan=no_caller, queue="wallet-ru", interface="Local/op21@acc-agents",
        member_name="Perf 21", hold_time=0, talk_time=0, reason="caller",
    )  # fmt: skip
    assert dest == ev.AgentFinished(
        at=2.0, chan=dataclasses.replace(no_caller, linkedid="1796217540.9167170"),
        queue="wallet-ru", interface="Local/op21@acc-agents", member_name="Perf 21",
        hold_time=0, talk_time=0, reason="caller", dest_uniqueid="1796217541.406",
    )  # fmt: skip
    assert isinstance(agent, ev.AgentFinished)
    assert (agent.chan.linkedid, agent.interface, agent.talk_time, agent.reason) == (
        "1796217671.9167330", "Local/op29@acc-agents", 1, "agent")
    assert type(none.chan) is ev.ChannelRef and type(none) is ev.AgentFinished


def test_agent_complete_with_the_callers_block_keeps_the_caller_and_the_dest_uniqueid() -> None:
    msg = dict(first("ami-queue-answered.txt", "AgentComplete"), DestUniqueid="1795443826.3",
               DestLinkedid="1795443825.0")  # fmt: skip
    done = translate(msg, 1.0)
    assert isinstance(done, ev.AgentFinished)
    assert done.chan == CALLER and done.dest_uniqueid == "1795443826.3"


def test_agent_complete_without_any_call_or_member_is_a_clear_error() -> None:
    blank = {"Event": "AgentComplete", "HoldTime": "0", "TalkTime": "0", "Reason": "caller"}
    with pytest.raises(BadEvent, match="AgentComplete: header 'Queue' is missing"):
        translate(blank, 1.0)
    with pytest.raises(BadEvent, match="AgentComplete: header 'Interface' is missing"):
        translate(dict(blank, Queue="wallet-ru", DestLinkedid="1.1"), 1.0)
    with pytest.raises(BadEvent, match="AgentComplete: header 'TalkTime' is not a number"):
        translate(dict(blank, Queue="q", Interface="PJSIP/1", TalkTime="1s"), 1.0)
