"""The pure call book: every transition, without an event loop."""

from __future__ import annotations

import itertools
from typing import Any

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import CardWrite, card_number
from ccrouter.pbx import events as ev
from ccrouter.routing.model.decide import RouteDecision

DEC = RouteDecision("wallet-ru", "wallet-ru", "wallet", "ru", 0, 60)


def book(grace: float = 10.0) -> CallBook:
    serials = itertools.count(1)
    return CallBook(new_number=lambda: card_number(next(serials)), close_grace_s=grace)


def chan(uid: str = "1.1", linked: str = "1.1") -> ev.ChannelRef:
    return ev.ChannelRef(uid, linked, "PJSIP/trunk-00000001", "7900", "Ivan", "2000", "inbound")


def merged(writes: list[CardWrite]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for w in writes:
        out.update(w.fields)
    return out


def open_call(b: CallBook, at: float = 0.0) -> tuple[str, list[CardWrite]]:
    return b.open_routed(at=at, uniqueid="1.1", channel="PJSIP/trunk-00000001", caller_num="7900",
                         caller_name="Ivan", dialled="2000", decision=DEC)  # fmt: skip


def test_route_opens_one_card_and_rerouting_updates_it() -> None:
    b = book()
    card, writes = open_call(b)
    assert writes[0].insert and writes[0].fields["queue"] == "wallet-ru"
    again, writes2 = b.open_routed(at=1, uniqueid="1.1", channel="x", caller_num="7900",
                                   caller_name="", dialled="", decision=DEC)  # fmt: skip
    assert again == card and not writes2[0].insert and len(b) == 1


def test_caller_hangs_up_in_the_ivr_before_any_queue() -> None:
    b = book()
    _card, _ = open_call(b)
    out = merged(b.apply(ev.ChannelHungUp(5.0, "1.1", "1.1", "PJSIP/trunk", 16, "Normal Clearing")))
    assert out["outcome"] == "ivr_only" and out["state"] == "closed" and len(b) == 0


def test_route_failure_is_a_failed_card() -> None:
    b = book()
    open_call(b)
    b.route_failed(uniqueid="1.1", reason="script error")
    out = merged(b.apply(ev.ChannelHungUp(5.0, "1.1", "1.1", "c", 16, "Normal Clearing")))
    assert out["outcome"] == "failed"


def test_queue_timeout_then_second_queue_records_escalation_and_overflow() -> None:
    b = book()
    open_call(b)
    b.apply(ev.CallerJoined(1.0, chan(), "wallet-ru", 1, 1))
    b.apply(ev.CallerLeft(61.0, chan(), "wallet-ru", 1, 0))
    out = merged(b.apply(ev.CallerJoined(61.5, chan(), "general", 1, 1)))
    assert out["escalation"] == "wallet-ru->general"
    out = merged(b.apply(ev.ChannelHungUp(90.0, "1.1", "1.1", "c", 16, "Normal Clearing")))
    assert out["outcome"] == "overflow"


def test_answered_call_closes_only_when_agent_complete_arrives() -> None:
    b = book()
    _card, _ = open_call(b)
    b.apply(ev.CallerJoined(1.0, chan(), "wallet-ru", 1, 1))
    b.apply(ev.AgentAnswered(3.0, chan(), "wallet-ru", "PJSIP/1001", "Anna", 2, 1))
    assert b.apply(ev.ChannelHungUp(30.0, "1.1", "1.1", "c", 16, "Normal Clearing")) == []
    assert len(b) == 1
    done = ev.AgentFinished(30.1, chan(), "wallet-ru", "PJSIP/1001", "Anna", 2, 27, "caller")
    out = merged(b.apply(done))
    assert out == {"talk_s": 27, "end_reason": "caller", "state": "closed", "ended_at": 30.1,
                   "close_reason": "normal", "outcome": "answered"}  # fmt: skip


def test_missing_agent_complete_closes_after_the_grace_period() -> None:
    b = book(grace=10)
    open_call(b)
    b.apply(ev.CallerJoined(1.0, chan(), "wallet-ru", 1, 1))
    b.apply(ev.AgentAnswered(3.0, chan(), "wallet-ru", "PJSIP/1001", "Anna", 2, 1))
    b.apply(ev.ChannelHungUp(30.0, "1.1", "1.1", "c", 16, "Normal Clearing"))
    assert b.expire(39.0) == []
    out = merged(b.expire(40.0))
    assert out["close_reason"] == "incomplete" and out["ended_at"] == 30.0 and len(b) == 0


def test_events_of_unknown_calls_and_agent_legs_are_ignored() -> None:
    b = book()
    open_call(b)
    assert b.apply(ev.ChannelHungUp(1.0, "9.9", "1.1", "PJSIP/1001-1", 16, "")) == []
    assert b.apply(ev.AgentAnswered(1.0, chan("7.7", "7.7"), "q", "i", "n", 0, 0)) == []
    assert len(b) == 1


def test_reconcile_closes_vanished_calls_only() -> None:
    b = book()
    open_call(b, at=1.0)
    b.open_routed(at=2.0, uniqueid="2.2", channel="c2", caller_num="", caller_name="",
                  dialled="", decision=DEC)  # fmt: skip
    b.open_routed(at=9.0, uniqueid="3.3", channel="c3", caller_num="", caller_name="",
                  dialled="", decision=DEC)  # fmt: skip  # routed after the snapshot
    writes = b.reconcile({"2.2"}, seen_before=5.0, pbx_restarted=True, now=6.0)
    out = merged(writes)
    assert len(writes) == 1 and out["close_reason"] == "lost_on_pbx_restart"
    assert out["outcome"] == "lost"
    assert {v.uniqueid for v in b.views()} == {"2.2", "3.3"}


def test_reconcile_keeps_what_is_known_of_an_answered_call() -> None:
    b = book()
    open_call(b)
    b.apply(ev.CallerJoined(1.0, chan(), "wallet-ru", 1, 1))
    b.apply(ev.AgentAnswered(3.0, chan(), "wallet-ru", "PJSIP/1001", "Anna", 2, 1))
    out = merged(b.reconcile(set(), seen_before=5.0, pbx_restarted=False, now=6.0))
    assert out["close_reason"] == "reconciled" and out["outcome"] == "answered"


def test_restore_open_cards_after_a_crash_then_reconcile() -> None:
    b = book()
    b.restore([
        {"number": card_number(7), "uniqueid": "5.5", "linkedid": "5.5", "started_at": 1.0,
         "queue": "wallet-ru", "target": "wallet-ru", "answered_at": None, "outcome": None},
    ])  # fmt: skip
    assert b.find(linkedid="5.5") is not None
    out = merged(b.reconcile(set(), seen_before=10.0, pbx_restarted=False, now=11.0))
    assert out["outcome"] == "lost" and out["state"] == "closed"


def unnamed(at: float, iface: str, talk: int, linked: str = "") -> ev.AgentFinished:
    """An AgentComplete without the caller's block (linkedid only from a Dest* block)."""
    no_caller = ev.ChannelRef("", linked, "", "", "", "", "")
    return ev.AgentFinished(at, no_caller, "wallet-ru", iface, "Anna", 2, talk, "caller")


def answered(b: CallBook, uid: str, iface: str = "PJSIP/1001") -> None:
    b.open_routed(at=0.0, uniqueid=uid, channel=f"c{uid}", caller_num="", caller_name="",
                  dialled="", decision=DEC)  # fmt: skip
    b.apply(ev.CallerJoined(1.0, chan(uid, f"L{uid}"), "wallet-ru", 1, 1))
    b.apply(ev.AgentAnswered(3.0, chan(uid, f"L{uid}"), "wallet-ru", iface, "Anna", 2, 1))


def test_agent_complete_without_caller_is_matched_by_the_member_either_side_of_hangup() -> None:
    b = book()
    answered(b, "1.1")
    answered(b, "2.2", "PJSIP/1002")
    assert merged(b.apply(unnamed(3.5, "PJSIP/1001", 0))) == {"talk_s": 0, "end_reason": "caller"}
    out = merged(b.apply(ev.ChannelHungUp(3.6, "1.1", "L1.1", "c", 16, "Normal Clearing")))
    assert out["state"] == "closed" and out["close_reason"] == "normal"
    assert b.apply(ev.ChannelHungUp(4.0, "2.2", "L2.2", "c", 16, "Normal Clearing")) == []
    out = merged(b.apply(unnamed(4.1, "PJSIP/1002", 1)))
    assert out["talk_s"] == 1 and out["state"] == "closed" and len(b) == 0


def test_agent_complete_without_caller_is_matched_by_dest_linkedid_first() -> None:
    b = book()
    answered(b, "1.1")
    answered(b, "2.2")  # the same member, connected since: the member names 2.2 now
    (write,) = b.apply(unnamed(4.0, "PJSIP/1001", 0, linked="L1.1"))
    assert write.number == b.find(uniqueid="1.1").card  # type: ignore[union-attr]
    (write,) = b.apply(unnamed(5.0, "PJSIP/1001", 1))
    assert write.number == b.find(uniqueid="2.2").card  # type: ignore[union-attr]
    assert write.fields == {"talk_s": 1, "end_reason": "caller"}


def test_agent_complete_without_caller_never_reaches_a_finished_or_closed_call() -> None:
    b = book(grace=10)
    answered(b, "1.1")
    b.apply(ev.AgentFinished(4.0, chan("1.1", "L1.1"), "wallet-ru", "PJSIP/1001", "Anna", 2, 1,
                             "agent"))  # fmt: skip
    assert b.apply(unnamed(4.1, "PJSIP/1001", 0)) == []  # that call has its AgentComplete
    assert b.apply(unnamed(4.1, "PJSIP/1001", 0, linked="L1.1")) == []
    answered(b, "2.2")
    b.apply(ev.ChannelHungUp(5.0, "2.2", "L2.2", "c", 16, "Normal Clearing"))
    assert merged(b.expire(15.0))["close_reason"] == "incomplete"
    assert b.apply(unnamed(16.0, "PJSIP/1001", 0)) == []  # closed: the member is free
    assert b.apply(unnamed(16.0, "PJSIP/1009", 0)) == []  # never connected


def test_agent_complete_without_caller_after_a_resync_found_the_call_bridged() -> None:
    b = book()
    open_call(b)
    b.apply(ev.CallerJoined(1.0, chan(), "wallet-ru", 1, 1))
    b.bridged(at=2.0, uniqueid="1.1", interface="PJSIP/1001", operator="Anna")
    b.apply(ev.ChannelHungUp(3.0, "1.1", "1.1", "c", 16, "Normal Clearing"))
    out = merged(b.apply(unnamed(3.1, "PJSIP/1001", 1)))
    assert out["talk_s"] == 1 and out["state"] == "closed" and out["outcome"] == "answered"
