"""The real Asterisk 22 transcripts replayed through the AMI parser and the tracker."""

from __future__ import annotations

import itertools

import pytest
from structlog.testing import capture_logs

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import card_number
from ccrouter.calls.tracker import CallTracker
from ccrouter.dialplan import AMI_EVENTS
from ccrouter.pbx.ami.replay import messages, replay
from ccrouter.pbx.ami.translate import EVENT_TABLE, BadEvent, translate
from ccrouter.routing.model.decide import RouteDecision
from tests.cardrows import CardRows
from tests.conftest import agi_transcript, fixture_bytes

DECISION = RouteDecision(
    target="support-ru", queue="support-ru", product="support", language="ru",
    priority=0, timeout_s=60,
)  # fmt: skip


def make_tracker() -> tuple[CallTracker, CardRows]:
    serials = itertools.count(1)
    ticks = itertools.count()
    rows = CardRows()
    book = CallBook(new_number=lambda: card_number(next(serials)), short_abandon_s=5)
    tracker = CallTracker(book, rows, clock=lambda: 1000.0 + next(ticks))
    return tracker, rows


def agi_env(name: str) -> dict[str, str]:
    env = {}
    for direction, line in agi_transcript(name):
        key, sep, value = line.decode().rstrip("\n").partition(": ")
        if direction == ">>" and sep and key.startswith("agi_"):
            env[key] = value
    return env


def test_every_subscribed_event_has_a_translator() -> None:
    assert set(AMI_EVENTS) == set(EVENT_TABLE)


def test_answered_call_gives_exactly_one_closed_answered_card() -> None:
    tracker, rows = make_tracker()
    env = agi_env("agi-route-session.txt")
    card = tracker.open_routed(
        uniqueid=env["agi_uniqueid"], channel=env["agi_channel"], caller_num=env["agi_callerid"],
        caller_name=env["agi_calleridname"], dialled="", decision=DECISION,
    )  # fmt: skip
    replay(fixture_bytes("ami-queue-answered.txt"), tracker.on_ami_event)
    assert tracker.bad_events == 0
    assert len(tracker.book) == 0
    row = rows.rows[card]
    started = row.pop("started_at")
    answered = row.pop("answered_at")
    ended = row.pop("ended_at")
    assert started < answered < ended
    assert row == {
        "number": card,
        "kind": "inbound",
        "state": "closed",
        "uniqueid": "1795443825.1",
        "linkedid": "1795443825.0",
        "channel": "Local/s@lab-inbound-00000000;2",
        "caller_num": "79001234567",
        "caller_name": "Lab Caller RU",
        "dialled": "",
        "language": "ru",
        "product": "support",
        "target": "support-ru",
        "queue": "support-ru",
        "priority": 0,
        "wait_s": 0,
        "ring_s": 0,
        "talk_s": 4,
        "operator": "Agent One RU",
        "interface": "Local/agent1@lab-agents",
        "outcome": "answered",
        "end_reason": "agent",
        "close_reason": "normal",
    }
    assert list(rows.rows) == [card]


def test_answered_card_waits_for_agent_complete_after_the_callers_hangup() -> None:
    """In the recording AgentComplete arrives after the caller's Hangup: the card stays open."""
    tracker, rows = make_tracker()
    seen = []
    for msg in messages(fixture_bytes("ami-queue-answered.txt")):
        if "Event" not in msg:
            continue
        if msg["Event"] == "AgentComplete":
            card = next(iter(rows.rows.values()))
            seen.append(card["state"])
        tracker.on_ami_event(msg)
    assert seen == ["open"]
    (card,) = rows.rows.values()
    assert card["state"] == "closed" and card["talk_s"] == 4


def test_abandoned_call_card_without_route_script() -> None:
    """First sight at QueueCallerJoin; HoldTime 4 < 5 s is a short abandon."""
    tracker, rows = make_tracker()
    replay(fixture_bytes("ami-queue-abandoned.txt"), tracker.on_ami_event)
    (row,) = rows.rows.values()
    for key in ("started_at", "ended_at"):
        row.pop(key)
    number = row.pop("number")
    assert number == card_number(1)
    assert row == {
        "kind": "inbound",
        "state": "closed",
        "uniqueid": "1795443835.5",
        "linkedid": "1795443835.4",
        "channel": "Local/s@lab-inbound-00000002;2",
        "caller_num": "998901234567",
        "caller_name": "Lab Caller UZ",
        "dialled": "s",
        "queue": "support-uz",
        "wait_s": 4,
        "outcome": "short_abandon",
        "end_reason": "Normal Clearing",
        "close_reason": "normal",
    }


def test_abandon_longer_than_the_threshold_is_a_real_abandon() -> None:
    serials = itertools.count(1)
    rows = CardRows()
    book = CallBook(new_number=lambda: card_number(next(serials)), short_abandon_s=3)
    tracker = CallTracker(book, rows, clock=lambda: 1.0)
    replay(fixture_bytes("ami-queue-abandoned.txt"), tracker.on_ami_event)
    (row,) = rows.rows.values()
    assert row["outcome"] == "abandoned"


def test_every_message_of_every_transcript_parses() -> None:
    for name in ("ami-login-and-banner.txt", "ami-login-failed.txt", "ami-queue-answered.txt",
                 "ami-queue-abandoned.txt", "ami-actions.server-only.txt"):  # fmt: skip
        for msg in messages(fixture_bytes(name)):
            assert "Event" in msg or "Response" in msg, (name, msg)
            if "Event" in msg:
                translate(msg, 0.0)  # must not raise on real data


def test_repeated_headers_become_lists() -> None:
    replies = [m for m in messages(fixture_bytes("ami-actions.server-only.txt"))
               if m.get("Message") == "Command output follows"]  # fmt: skip
    assert isinstance(replies[1]["Output"], list) and len(replies[1]["Output"]) > 3


def test_a_known_event_with_a_missing_header_is_a_clear_error() -> None:
    with pytest.raises(BadEvent, match="QueueCallerJoin: header 'Uniqueid' is missing"):
        translate({"Event": "QueueCallerJoin", "Queue": "q"}, 0.0)
    with pytest.raises(BadEvent, match="'HoldTime' is not a number"):
        translate({"Event": "QueueCallerAbandon", "Queue": "q", "Uniqueid": "1.1",
                   "HoldTime": "soon"}, 0.0)  # fmt: skip


def test_bad_event_is_counted_and_skipped_not_raised() -> None:
    tracker, rows = make_tracker()
    tracker.on_ami_event({"Event": "AgentConnect", "Queue": "q"})
    assert tracker.bad_events == 1 and rows.rows == {}


def test_skipped_events_are_counted_and_logged_once_per_name() -> None:
    tracker, rows = make_tracker()
    with capture_logs() as logs:
        for name in ("Newexten", "VarSet", "Newexten", "Newexten"):
            tracker.on_ami_event({"Event": name, "Uniqueid": "1.1"})
    assert tracker.events_seen == tracker.events_skipped == 4 and rows.rows == {}
    skipped = [e["ami_event"] for e in logs if e["event"] == "ami_event_skipped"]
    assert skipped == ["Newexten", "VarSet"]
