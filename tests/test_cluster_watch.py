"""A standby's AMI connection to the nodes it does not serve (issue 13: every instance "holds
an AMI connection to the nodes it is given"), and what it heard handed to the instance that
takes a node over, so a caller who abandons — or is answered — while the lease moves ends as
they did: the buffer's policy and the replay's rules (pure, over the real transcripts), the
standby's connection over real sockets (a simulated node, real PostgreSQL), and SIGKILLed
holders (real `ccrouter run` processes) whose caller abandons or is answered in the gap."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.proc import Daemon
from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import card_number
from ccrouter.calls.model.gap import REPLAYED, Watched, missed
from ccrouter.calls.tracker import CallTracker
from ccrouter.cluster.model import WATCH_MARGIN_S, LeaseTiming, WatchBuffer, WatchPolicy
from ccrouter.config import load_settings
from ccrouter.db.engine import make_engine
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.replay import messages
from ccrouter.pbx.ami.transfers import ATTENDED_TRANSFER_BRIDGE, BLIND_TRANSFER, BRIDGE, SNAPSHOT
from ccrouter.routing.state import OperatorService, OperatorStore
from ccrouter.sim import PbxSimulator, SimCaller, SimOperator, SimTransfer
from ccrouter.sim.testing import AmiClient as RawAmi
from tests.cardrows import CardRows
from tests.cluster_stack import (
    SECRET,
    Running,
    as_instance,
    cluster_settings,
    daemons_logged_in,
    free_ports,
    one_node_two_instances,
    rows,
    start_sims,
)
from tests.conftest import fixture_bytes
from tests.stack import wait_until

WALLET = "712000100"


def call_events(transcript: str, start: float = 100.0) -> list[Watched]:
    """The call events of a real transcript, one second apart (as a standby buffers them)."""
    kept = [m for m in messages(fixture_bytes(transcript)) if m.get("Event") in REPLAYED]
    return [(start + k, m) for k, m in enumerate(kept)]


def msg(name: str) -> dict[str, str]:
    return {"Event": name, "Uniqueid": "1.1"}


# --- the buffer (pure) -------------------------------------------------------------------------


def test_the_window_spans_a_lease_move_and_the_new_daemon_starting() -> None:
    timing = LeaseTiming.of(3.0)
    policy = WatchPolicy.of(timing)
    assert policy.window_s == timing.ttl_s + timing.poll_s + timing.park_s + WATCH_MARGIN_S
    assert policy.names == frozenset(REPLAYED)
    with pytest.raises(ValueError, match="at least one event, not 0"):
        WatchPolicy.of(timing, max_events=0)


def test_the_buffer_keeps_call_events_of_the_window_only() -> None:
    buf = WatchBuffer(WatchPolicy(window_s=10.0, max_events=100, names=frozenset(REPLAYED)))
    assert not buf.add(1.0, {"Event": "Newexten"})  # of no use to the call book
    assert not buf.add(1.0, {"Privilege": "call,all"})
    assert buf.add(0.0, msg("QueueCallerJoin")) and buf.add(5.0, msg("AgentCalled"))
    assert buf.add(12.0, msg("Hangup"))  # 0.0 is now older than the window
    assert [at for at, _ in buf.take()] == [5.0, 12.0]
    assert len(buf) == 0


def test_a_pinned_buffer_keeps_the_gap_while_the_node_is_taken_over() -> None:
    buf = WatchBuffer(WatchPolicy(window_s=10.0, max_events=100, names=frozenset(REPLAYED)))
    for at in (5.0, 12.0):
        buf.add(at, msg("Hangup"))
    buf.pin(20.0)  # the lease is ours: keep what came since 10.0, however long start-up takes
    buf.add(100.0, msg("QueueCallerAbandon"))
    assert [at for at, _ in buf.take()] == [12.0, 100.0]
    buf.add(200.0, msg("Hangup"))  # take() unpinned it: the window follows the newest again
    buf.add(300.0, msg("Hangup"))
    assert [at for at, _ in buf.take()] == [300.0]


def test_a_flood_drops_the_oldest_beyond_the_count_bound() -> None:
    buf = WatchBuffer(WatchPolicy(window_s=1e9, max_events=3, names=frozenset(REPLAYED)))
    for k in range(5):
        buf.add(float(k), msg("AgentCalled"))
    assert [at for at, _ in buf.take()] == [2.0, 3.0, 4.0] and buf.dropped == 2


# --- which buffered events the new holder applies (pure) ---------------------------------------


def test_missed_is_what_came_before_the_new_holders_own_connection() -> None:
    events = call_events("ami-queue-answered.txt")
    assert len(events) >= 6
    everything = [(1.0, m) for m in messages(fixture_bytes("ami-queue-answered.txt"))]
    first_live = next(k for k, (_, m) in enumerate(everything) if m == events[3][1])
    live = everything[first_live:]  # its connection also gets what the Filter admits besides
    assert missed(events, live) == events[:3]
    assert missed(events[:5], live) == events[:3]  # the standby stopped before the daemon
    assert missed(events, live[:40]) == events[:3]  # ... or after it
    assert missed(events, []) == events  # nothing came on the daemon's own connection yet
    # streams that cannot be lined up (the standby's connection dropped): all of it, for the
    # replay's rules to leave out what the book shows already
    assert missed(events[:2], live) == events[:2]
    assert missed(events, [(1.0, {"Event": "Hangup", "Uniqueid": "9.9"})]) == events


def restored(abandoned: bool = False, answered: bool = False, **card: Any) -> tuple[
        CallTracker, CardRows, list[ev.DomainEvent]]:  # fmt: skip
    """A new holder's tracker with one open card restored (as `CardStore.open_cards` gives
    it), its card row, and what its listeners (the callbacks...) hear."""
    serials = itertools.count(900)
    book = CallBook(new_number=lambda: card_number(next(serials)), short_abandon_s=3)
    row = {"number": "0000042", "started_at": 90.0, "target": "support", **card}
    if abandoned:
        row["outcome"] = "abandoned"
    if answered:
        row.update(answered_at=97.0, operator="Agent One RU", interface="Local/agent1@lab-agents")
    book.restore([row])
    cards = CardRows()
    cards.rows["0000042"] = dict(row)
    tracker = CallTracker(book, cards, clock=lambda: 500.0)
    heard: list[ev.DomainEvent] = []
    tracker.subscribe(heard.append)
    return tracker, cards, heard


ABANDONED_CALL = {"uniqueid": "1795443835.5", "linkedid": "1795443835.4", "queue": "support-uz",
                  "caller_num": "998901234567"}  # fmt: skip
ANSWERED_CALL = {"uniqueid": "1795443825.1", "linkedid": "1795443825.0", "queue": "support-ru",
                 "caller_num": "79001234567"}  # fmt: skip


def test_a_restored_call_abandoned_in_the_gap_ends_abandoned_and_is_heard_once() -> None:
    tracker, cards, heard = restored(**ABANDONED_CALL)
    tracker.hold()
    assert tracker.catch_up(call_events("ami-queue-abandoned.txt")) >= 2
    card = cards.rows["0000042"]
    assert (card["state"], card["outcome"], card["close_reason"], card["wait_s"]) == (
        "closed", "abandoned", "normal", 4)
    assert [type(e) for e in heard].count(ev.CallerAbandoned) == 1
    assert len(tracker.book) == 0


def test_an_abandon_the_old_holder_committed_is_not_heard_again() -> None:
    tracker, cards, heard = restored(abandoned=True, **ABANDONED_CALL)
    tracker.hold()
    tracker.catch_up(call_events("ami-queue-abandoned.txt"))
    assert not any(isinstance(e, ev.CallerAbandoned) for e in heard)  # no second callback
    assert cards.rows["0000042"]["outcome"] == "abandoned"  # its Hangup still closed it
    assert cards.rows["0000042"]["state"] == "closed"


def test_a_restored_call_answered_in_the_gap_gets_its_operator() -> None:
    tracker, cards, heard = restored(**ANSWERED_CALL)
    tracker.hold()
    tracker.catch_up(call_events("ami-queue-answered.txt"))
    card = cards.rows["0000042"]
    assert (card["state"], card["outcome"], card["operator"]) == (
        "closed", "answered", "Agent One RU")
    assert card["answered_at"] == 102.0 and card["talk_s"] >= 0  # AgentConnect's receive time
    assert [type(e) for e in heard].count(ev.AgentAnswered) == 1  # (caught up: callbacks)


def test_an_answer_the_old_holder_committed_is_not_replayed() -> None:
    tracker, cards, heard = restored(answered=True, **ANSWERED_CALL)
    tracker.hold()
    tracker.catch_up(call_events("ami-queue-answered.txt"))
    assert not any(isinstance(e, ev.AgentAnswered) for e in heard)
    card = cards.rows["0000042"]
    assert card["answered_at"] == 97.0 and card["state"] == "closed"  # its end still came


def test_events_of_calls_the_book_does_not_hold_are_never_replayed() -> None:
    """The old holder closed the card (or never wrote it): no second card is opened."""
    tracker, cards, heard = restored(**{**ABANDONED_CALL, "uniqueid": "7.7", "linkedid": "7.7"})
    tracker.hold()
    assert tracker.catch_up(call_events("ami-queue-answered.txt")) == 0
    assert heard == [] and list(cards.rows) == ["0000042"]


def test_events_held_until_the_catch_up_come_after_the_gap() -> None:
    """The new holder's own connection received the call's end before its first resync: it
    is applied after the gap's answer, not before (the card would close unanswered)."""
    tracker, cards, heard = restored(**ANSWERED_CALL)
    events = call_events("ami-queue-answered.txt")
    tracker.hold()
    for _, m in events[3:]:  # AgentConnect on: on both connections
        tracker.on_ami_event(m)
    assert heard == [] and "outcome" not in cards.rows["0000042"]  # held
    tracker.catch_up(events)
    card = cards.rows["0000042"]
    assert (card["outcome"], card["operator"], card["state"]) == (
        "answered", "Agent One RU", "closed")
    assert [type(e) for e in heard].count(ev.AgentAnswered) == 1  # once, not twice


# --- a transfer, or a caller leaving a queue, while the lease moves (pure) -----------------------
#
# No transcript has a transfer (see tests/test_transfers.py): its messages are built here from
# the header sets of `ccrouter.pbx.ami.transfers` (Asterisk 22's source), filled with the real
# channel and bridge snapshots of ami-queue-answered.txt; the rest are that transcript's own.

LAB = [dict(m) for m in messages(fixture_bytes("ami-queue-answered.txt"))]
CALLER, AGENT = "1795443825.1", "1795443826.2"  # Local/s@lab-inbound-..;2, Local/agent1@..;1
OTHER_QUEUE = "support-en"


def lab(name: str, uniqueid: str = CALLER, **changed: str) -> dict[str, str]:
    """The transcript's `name` event about `uniqueid`, with `changed` headers."""
    found = next(m for m in LAB if m.get("Event") == name and m.get("Uniqueid") == uniqueid)
    return {**found, **changed}


def snapshot(m: dict[str, str], prefix: str) -> dict[str, str]:
    return {prefix + h: m[h] for h in SNAPSHOT}


def bridge_block(m: dict[str, str], prefix: str = "") -> dict[str, str]:
    return {prefix + h: m[h] for h in BRIDGE}


def blind_transfer(first_card: str) -> dict[str, str]:
    """The operator sends the caller to 712000300@lab-inbound (the caller's channel carries
    its card, manager.conf `channelvars = CCROUTER_CARD`)."""
    agent, caller = lab("BridgeEnter", AGENT), lab("BridgeEnter", CALLER)
    m = {"Event": "BlindTransfer", "Privilege": "call,all", "Result": "Success",
         **snapshot(agent, "Transferer"), **snapshot(caller, "Transferee"),
         "TransfereeChanVariable": f"CCROUTER_CARD={first_card}", **bridge_block(caller),
         "IsExternal": "Yes", "Context": "lab-inbound", "Extension": "712000300"}  # fmt: skip
    assert set(m) - {"Event", "Privilege", "TransfereeChanVariable"} == set(BLIND_TRANSFER)
    return m


TARGET = {"Channel": "PJSIP/1002-00000004", "Uniqueid": "1795443830.5", "Exten": "1002"}


def attended_transfer() -> dict[str, str]:
    """The operator consults PJSIP/1002 on a second channel of their phone, then completes:
    the consultation bridge merges into the caller's (DestType Bridge)."""
    agent, caller = lab("BridgeEnter", AGENT), lab("BridgeEnter", CALLER)
    second = {**agent, "Channel": "Local/agent1@lab-agents-00000002;1", "Uniqueid": "1795443830.4"}
    target = {**lab("Hangup", "1795443826.3"), **TARGET}
    consult = {**caller, "BridgeUniqueid": "5c1b2d7e-0000-4000-8000-000000000001"}
    m = {"Event": "AttendedTransfer", "Privilege": "call,all", "Result": "Success",
         **snapshot(agent, "OrigTransferer"), **bridge_block(caller, "Orig"),
         **snapshot(second, "SecondTransferer"), **bridge_block(consult, "Second"),
         **snapshot(caller, "Transferee"), **snapshot(target, "TransferTarget"),
         "IsExternal": "Yes", "DestType": "Bridge",
         "DestBridgeUniqueid": caller["BridgeUniqueid"]}  # fmt: skip
    assert set(m) - {"Event", "Privilege"} == set(ATTENDED_TRANSFER_BRIDGE)
    return m


FIRST_CARD = card_number(900)
ANSWERED = [lab("QueueCallerJoin"), lab("AgentCalled"), lab("QueueCallerLeave"),
            lab("AgentConnect")]  # fmt: skip
TRANSFERRED = lab("AgentComplete", Reason="transfer", TalkTime="3")
AGENT_GONE = [lab("Hangup", "1795443826.3"), lab("Hangup", AGENT)]
CALL_GONE = [lab("Hangup"), lab("Hangup", "1795443825.0")]


def in_queue(name: str) -> list[dict[str, str]]:
    return [lab(name, Queue=OTHER_QUEUE)]


BLIND = [*ANSWERED, blind_transfer(FIRST_CARD), TRANSFERRED, *AGENT_GONE,
         *in_queue("QueueCallerJoin"), *in_queue("AgentCalled"), *in_queue("QueueCallerLeave"),
         *in_queue("AgentConnect"), lab("Hangup"), *in_queue("AgentComplete"),
         lab("Hangup", "1795443825.0")]  # fmt: skip
"""Blind: answered, transferred into another line whose queue the same member answers."""
ATTENDED = [*ANSWERED, attended_transfer(), TRANSFERRED, *AGENT_GONE, *CALL_GONE,
            {**lab("Hangup", "1795443826.3"), **TARGET}]  # fmt: skip
OVERFLOW = [lab("QueueCallerJoin"), lab("AgentCalled"), lab("QueueCallerLeave"),
            *in_queue("QueueCallerJoin"), *CALL_GONE]  # fmt: skip
"""The caller leaves the first queue unanswered (its timeout) for another queue, then hangs up."""


def swapped(events: list[dict[str, str]], name: str) -> list[dict[str, str]]:
    """`events` with the AgentComplete transfer before the transfer event `name` (app_queue
    and the manager are two subscribers of one stasis message: either may come first)."""
    k = next(k for k, m in enumerate(events) if m["Event"] == name)
    return [*events[:k], events[k + 1], events[k], *events[k + 2:]]


class Node:
    """One instance's book over a node's events, its cards as the writer commits them."""

    def __init__(self, serials: Iterator[int], rows: dict[str, dict[str, Any]] | None = None,
                 ) -> None:  # fmt: skip
        self.now = 0.0
        book = CallBook(new_number=lambda: card_number(next(serials)), short_abandon_s=3)
        self.cards = CardRows()
        if rows is not None:  # taking over: the open cards restored, as `App.start` does
            self.cards.rows = copy.deepcopy(rows)
            book.restore([r for r in rows.values() if r["state"] == "open"], now=500.0)
        self.tracker = CallTracker(book, self.cards, clock=lambda: self.now)
        self.heard: list[ev.DomainEvent] = []
        self.tracker.subscribe(self.heard.append)

    def receive(self, events: list[Watched]) -> None:
        for at, m in events:
            self.now = at
            self.tracker.on_ami_event(m)


def lease_moved_after(events: list[dict[str, str]], k: int) -> Node:
    """The old holder applied (and committed) the first `k` events, then died; the new holder
    restores its open cards and catches up with the standby's buffer of all of them."""
    timed = [(100.0 + n, m) for n, m in enumerate(events)]
    serials = itertools.count(900)  # one sequence for both, as in the database
    old = Node(serials)
    old.receive(timed[:k])
    new = Node(serials, old.cards.rows)
    new.tracker.hold()
    new.tracker.catch_up(timed)
    return new


def without_gap(events: list[dict[str, str]]) -> Node:
    node = Node(itertools.count(900))
    node.receive([(100.0 + n, m) for n, m in enumerate(events)])
    return node


def cards_after_every_move(events: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """The cards as they are without a gap — and the same whenever the lease moves, from the
    first committed card on."""
    expected = without_gap(events).cards.rows
    for k in range(1, len(events) + 1):
        got = lease_moved_after(events, k).cards.rows
        assert got == expected, (k, events[k - 1]["Event"] if k else None)
    return expected


def transfer_cards(rows: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert sorted(r["kind"] for r in rows.values()) == ["inbound", "transfer"], rows
    first = next(r for r in rows.values() if r["kind"] == "inbound")
    rest = next(r for r in rows.values() if r["kind"] == "transfer")
    assert rest["transfer_of"] == first["number"] == FIRST_CARD
    return first, rest


@pytest.mark.parametrize("order", ["transfer first", "agent complete first"])
def test_a_blind_transfer_while_the_lease_moves_ends_the_card_as_without_a_gap(
        order: str) -> None:  # fmt: skip
    events = BLIND if order == "transfer first" else swapped(BLIND, "BlindTransfer")
    first, rest = transfer_cards(cards_after_every_move(events))
    assert (first["state"], first["outcome"], first["end_reason"], first["talk_s"]) == (
        "closed", "answered", "transfer", 3)
    assert (first["close_reason"], first["operator"], first["queue"]) == (
        "normal", "Agent One RU", "support-ru")
    assert (rest["state"], rest["close_reason"], rest["dialled"], rest["queue"]) == (
        "closed", "normal", "712000300", OTHER_QUEUE)
    assert (rest["outcome"], rest["end_reason"], rest["operator"]) == (
        "answered", "agent", "Agent One RU")
    # the old holder died before the transfer: the new one applies it, heard once
    new = lease_moved_after(events, len(ANSWERED))
    assert [type(e) for e in new.heard].count(ev.CallTransferred) == 1


def test_an_attended_transfer_while_the_lease_moves_ends_the_card_as_without_a_gap() -> None:
    for events in (ATTENDED, swapped(ATTENDED, "AttendedTransfer")):
        first, rest = transfer_cards(cards_after_every_move(events))
        assert (first["state"], first["end_reason"], first["talk_s"]) == ("closed", "transfer", 3)
        assert (rest["state"], rest["close_reason"], rest["outcome"], rest["interface"]) == (
            "closed", "normal", "answered", "PJSIP/1002")
        assert rest.get("queue") is None and rest["talk_s"] >= 0


def test_a_transfer_the_old_holder_committed_is_not_applied_twice() -> None:
    """The old holder died right after the transfer (its AgentComplete not yet in): the
    restored transfer card is the channel's call, the first card waits for its AgentComplete;
    the buffer's transfer and the events before it change nothing, no second card opens."""
    k = len(ANSWERED) + 1
    for events in (BLIND, ATTENDED):
        new = lease_moved_after(events, k)
        assert not any(isinstance(e, ev.CallTransferred) for e in new.heard)
        assert {e.queue for e in new.heard if isinstance(e, ev.AgentAnswered)} <= {OTHER_QUEUE}
        assert len(new.cards.rows) == 2  # inserted twice would have failed in CardRows
        first, _rest = transfer_cards(new.cards.rows)
        assert (first["state"], first["talk_s"]) == ("closed", 3)  # its AgentComplete came
    # ... and once the old holder had it all, but the call, nothing of the transfer replays
    new = lease_moved_after(ATTENDED, len(ANSWERED) + 2)
    assert [type(e) for e in new.heard] == [ev.ChannelHungUp]


def test_a_caller_who_leaves_a_queue_while_the_lease_moves_ends_as_without_a_gap() -> None:
    """QueueCallerLeave is not replayed (the book takes nothing from it): the next queue's
    join and the hang-up say it all, on the card, whenever the lease moves."""
    assert "QueueCallerLeave" not in REPLAYED
    (card,) = cards_after_every_move(OVERFLOW).values()
    assert (card["state"], card["outcome"], card["queue"], card["escalation"]) == (
        "closed", "overflow", OTHER_QUEUE, f"support-ru->{OTHER_QUEUE}")
    (card,) = cards_after_every_move([*ANSWERED, *CALL_GONE[:1], lab("AgentComplete"),
                                      *CALL_GONE[1:]]).values()  # fmt: skip
    assert (card["outcome"], card["operator"], card["talk_s"]) == ("answered", "Agent One RU", 4)


# --- the standby's connection (real sockets, real PostgreSQL) ----------------------------------


async def test_a_standby_listens_to_the_node_it_does_not_serve(pg_url: str) -> None:
    """i2 stands by for n1: it is logged in to n1's AMI as a second manager session that only
    logs in, filters and pings, buffering the calls' events; it logs out when i2 takes the
    node (its daemon's own connection carries on) and is gone when i2 stops."""
    settings = cluster_settings(pg_url, [free_ports(1)], [free_ports(1), free_ports(1)])
    (sim,) = await start_sims(settings)
    holder = Running(as_instance(settings, "i1"))
    standby: Running | None = None
    try:
        await wait_until(lambda: holder.serving() == {"n1"} and daemons_logged_in(sim) == 1
                         and sim.ami_logged_in == 1, 15, "i1's daemon alone logged in")  # fmt: skip
        standby = Running(as_instance(settings, "i2"))
        await wait_until(lambda: sim.ami_logged_in == 2, 10, "a second manager login")
        (slot,) = standby.instance.slots
        await wait_until(lambda: slot.watch.connected, 10, "the standby is logged in")
        (watcher,) = [a for a in sim.ami_actions() if "CoreShowChannels" not in a]
        assert watcher[0] == "Login" and set(watcher) <= {"Login", "Filter", "Ping"}, watcher
        call = sim.place_call(SimCaller("79003000001", dialled=WALLET))
        assert await asyncio.wait_for(call.finished, 30) == "answered"
        await wait_until(lambda: {m.get("Event") for _, m in slot.watch.buffer} >= {
            "QueueCallerJoin", "AgentConnect", "AgentComplete", "Hangup"}, 5, "buffered")
        assert {m.get("Uniqueid") for _, m in slot.watch.buffer} >= {call.uniqueid}
        assert standby.serving() == set()

        await holder.close()  # the lease released: i2 takes the node over
        await wait_until(lambda: standby is not None and standby.serving() == {"n1"}, 15,
                         "i2 serves n1")  # fmt: skip
        await wait_until(lambda: sim.ami_logged_in == 1 and daemons_logged_in(sim) == 1, 10,
                         "i2's standby connection gave way to its daemon's")  # fmt: skip
        assert not slot.watch.running and len(slot.watch.buffer) == 0
        await standby.close()
        await wait_until(lambda: sim.ami_logged_in == 0, 10, "every connection closed")
        assert not slot.watch.running
    finally:
        if standby is not None:
            await standby.close()
        await holder.close()
        await sim.close()


async def test_a_stopping_standby_logs_out(pg_url: str) -> None:
    settings = cluster_settings(pg_url, [free_ports(1)], [free_ports(1), free_ports(1)])
    (sim,) = await start_sims(settings)
    holder = Running(as_instance(settings, "i1"))
    try:
        await wait_until(lambda: holder.serving() == {"n1"}, 15, "i1 serves n1")
        # the holder's daemon resynced and its own standby connection gave way to it
        await wait_until(lambda: daemons_logged_in(sim) == 1 and sim.ami_logged_in == 1, 10,
                         "only i1's daemon logged in")  # fmt: skip
        standby = Running(as_instance(settings, "i2"))
        await wait_until(lambda: sim.ami_logged_in == 2, 10, "a second manager login")
        assert await standby.close() == 0
        await wait_until(lambda: sim.ami_logged_in == 1, 10, "the standby logged out")
        assert daemons_logged_in(sim) == 1 and holder.serving() == {"n1"}
    finally:
        await holder.close()
        await sim.close()


# --- SIGKILLed holders: a caller abandons, or is answered, while the lease moves ---------------

LEASE_S = 8.0
"""A dead holder's row lives up to 0.6 x 8 s: the gap is seconds long, and a caller hangs up
(or is answered and hangs up) within a second of the kill: in it."""
TIME_SCALE = 20.0
NUMBER = "79005550002"


async def card_of(pg_url: str, number: str) -> Any:
    found = await rows(pg_url, "SELECT number, state, outcome, close_reason, operator, "
                               "answered_at, linkedid, channel, wait_s FROM cards "
                               f"WHERE caller_num = '{number}' AND kind = 'inbound'")  # fmt: skip
    return found[0] if len(found) == 1 else None


async def until_row(what: str, probe: Any, timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while (got := await probe()) is None:
            await asyncio.sleep(0.1)
    assert got is not None, what
    return got


async def queued_then_holder_killed(tmp_path: Path, pg_url: str, in_gap: Any,
                                    phones: Any = None) -> tuple[Any, Any]:  # fmt: skip
    """a serves n1 (b stands by, listening); the only operator is paused, a caller waits in
    the queue and a has committed the card; a is SIGKILLed; `in_gap(sim, ami, card)` ends
    the call while nobody serves the node; b takes over. `phones(sim)`: the operators'
    devices otherwise. Returns (the card row once closed, b's catch-up log record)."""
    cfg = one_node_two_instances(tmp_path, pg_url, lease_s=LEASE_S, short_abandon_s=5)
    settings = as_instance(load_settings(cfg, environ={}), "a")
    (sim,) = await start_sims(settings, time_scale=TIME_SCALE, talk_time_s=10)
    if phones is not None:
        phones(sim)
    engine = make_engine(pg_url)
    operators = OperatorService(settings, OperatorStore(engine))
    ami: RawAmi | None = None
    try:
        async with Daemon.start(cfg, env={"CCROUTER_INSTANCE": "a"}) as a:
            await a.wait_log("ami_resynced", timeout=30)
            async with Daemon.start(cfg, env={"CCROUTER_INSTANCE": "b"}) as b:
                await b.wait_log("standby_ami_watching", timeout=30)
                await operators.pause("op2001", "busy", by="test")  # nobody free: it waits
                await wait_until(lambda: paused(sim), 10, "the member paused")
                call = sim.place_call(SimCaller(NUMBER, dialled=WALLET, patience_s=6000))
                card = await until_row("the queued call's card", lambda: card_in_queue(pg_url))
                ami = await RawAmi.connect(sim.ami_port)  # the operator's phone, the caller
                assert (await ami.login(secret=SECRET))["Response"] == "Success"
                await asyncio.sleep(0.5)  # long enough a wait to count (short_abandon_s)
                a.kill()
                await in_gap(sim, ami, card)
                await asyncio.wait_for(call.finished, 20)
                assert b.events("lease_acquired") == [], "the call ended after b took over"
                caught_up = await b.wait_log("ami_gap_caught_up", timeout=30)
                closed = await until_row("the card closed", lambda: closed_card(pg_url))
                await asyncio.sleep(1.0)  # what the callbacks do with it
                return closed, caught_up
    finally:
        if ami is not None:
            await ami.close()
        await sim.close()
        await engine.dispose()


def paused(sim: PbxSimulator) -> bool:
    members = [m for q in ("wallet-ru",) for m in sim.members(q) if m.interface == "PJSIP/2001"]
    return bool(members) and all(m.paused for m in members)


async def card_in_queue(pg_url: str) -> Any:
    card = await card_of(pg_url, NUMBER)
    return card if card is not None and card.linkedid else None


async def closed_card(pg_url: str) -> Any:
    card = await card_of(pg_url, NUMBER)
    return card if card is not None and card.state == "closed" else None


async def test_a_caller_who_abandons_while_the_lease_moves_gets_a_callback(
    tmp_path: Path, pg_url: str,
) -> None:
    async def hang_up(sim: PbxSimulator, ami: RawAmi, card: Any) -> None:
        await ami.send("Hangup", Channel=card.channel)
        assert (await ami.response())["Response"] == "Success"

    closed, caught_up = await queued_then_holder_killed(tmp_path, pg_url, hang_up)
    assert (closed.outcome, closed.close_reason) == ("abandoned", "normal"), closed
    assert closed.wait_s >= 5  # a real abandon, not a short one
    assert caught_up["applied"] >= 2  # QueueCallerAbandon, Hangup
    requests = await rows(pg_url, "SELECT number, state, abandons, card, attempts "
                                  "FROM callback_requests")  # fmt: skip
    assert [(r.number, r.abandons, r.card) for r in requests] == [
        (NUMBER, 1, closed.number)], requests
    assert await rows(pg_url, "SELECT id FROM callback_attempts") == []  # nobody free yet


async def unpause(sim: PbxSimulator, ami: RawAmi, card: Any) -> None:
    # the operator takes a break's end from the phone (UnpauseQueueMember): a free member
    await ami.send("QueuePause", Interface="PJSIP/2001", Paused="false")
    assert (await ami.response())["Response"] == "Success"


async def test_a_caller_answered_while_the_lease_moves_keeps_the_operator(
    tmp_path: Path, pg_url: str,
) -> None:
    closed, caught_up = await queued_then_holder_killed(tmp_path, pg_url, unpause)
    assert (closed.outcome, closed.close_reason, closed.operator) == (
        "answered", "normal", "Only"), closed
    assert closed.answered_at is not None
    assert caught_up["applied"] >= 3  # AgentConnect, AgentComplete, Hangup
    assert await rows(pg_url, "SELECT id FROM callback_requests") == []


async def test_a_caller_transferred_while_the_lease_moves_gets_one_transfer_card(
    tmp_path: Path, pg_url: str,
) -> None:
    """The operator answers in the gap and transfers the caller (attended, to PJSIP/2002),
    who talks with the target and hangs up — all before b serves the node."""

    def transferring(sim: PbxSimulator) -> None:
        sim.add_operator(SimOperator("PJSIP/2001", answer_after_s=1, talk_time_s=10,
                                     transfer=SimTransfer("attended", "PJSIP/2002", after_s=2,
                                                          consult_s=1)))  # fmt: skip
        sim.add_operator(SimOperator("PJSIP/2002", answer_after_s=1, talk_time_s=3))

    closed, caught_up = await queued_then_holder_killed(tmp_path, pg_url, unpause,
                                                        phones=transferring)  # fmt: skip
    assert (closed.outcome, closed.close_reason, closed.operator) == (
        "answered", "normal", "Only"), closed
    assert caught_up["applied"] >= 4  # AgentConnect, AttendedTransfer, AgentComplete, Hangup
    (first,) = await rows(pg_url, f"SELECT end_reason, talk_s FROM cards "
                                  f"WHERE number = '{closed.number}'")  # fmt: skip
    assert first.end_reason == "transfer" and first.talk_s == 4  # 2 s, a 2 s consultation
    query = ("SELECT state, outcome, close_reason, interface, transfer_of, talk_s FROM cards "
             "WHERE kind = 'transfer'")  # fmt: skip
    rest = await until_row("the transfer card closed", lambda: one_closed(pg_url, query))
    assert (rest.outcome, rest.close_reason, rest.interface, rest.transfer_of) == (
        "answered", "normal", "PJSIP/2002", closed.number), rest
    assert await rows(pg_url, "SELECT id FROM callback_requests") == []


async def one_closed(pg_url: str, query: str) -> Any:
    found = await rows(pg_url, query)
    assert len(found) <= 1, found  # never a second transfer card
    return found[0] if found and found[0].state == "closed" else None
