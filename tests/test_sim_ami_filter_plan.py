"""A simulated AMI session decides per event as manager.c's `should_send_event` does: its
per-name plans of its filters (`AmiSession._plan`, made again when a filter is added) against
the plain reading (every include, then every exclude, `EventFilter.matches` on each), over
seeded random filter sets of every form and random events."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ccrouter.sim.ami_filter import EventFilter, FilterError, parse_filter
from ccrouter.sim.ami_session import AmiSession

NAMES = ["Hangup", "HangupRequest", "VarSet", "Newstate", "AgentCalled", "QueueCallerJoin"]
HEADERS = ["Channel", "Variable", "Queue", "Uniqueid"]
VALUES = ["PJSIP/1001-00000001", "CCROUTER_STATUS", "wallet-ru", "1700000000.1", ""]


def reference(includes: list[EventFilter], excludes: list[EventFilter], name: str,
              text: str) -> bool:
    if includes and not any(f.matches(name, text) for f in includes):
        return False
    return not any(f.matches(name, text) for f in excludes)


def reference_may_want(includes: list[EventFilter], excludes: list[EventFilter],
                       name: str) -> bool:
    if not includes or excludes:
        return True
    return any(f.event_name is None or f.event_name == name for f in includes)


def _filter(rng: random.Random) -> EventFilter | None:
    bang = "!" if rng.random() < 0.3 else ""
    if rng.random() < 0.35:  # legacy regex over the whole text
        rx = rng.choice(["Event: (Hangup|VarSet)[^A-Za-z]", "Queue: wallet", "Channel: PJSIP",
                         "Variable: CCROUTER_.*Value: ok", "^Event: New"])
        return parse_filter("", bang + rx)
    parts = []
    if rng.random() < 0.7:
        parts.append(f"name({rng.choice(NAMES)})")
    if rng.random() < 0.5:
        parts.append(f"header({rng.choice(HEADERS)})")
    method = rng.choice(["regex", "exact", "starts_with", "ends_with", "contains", "none", ""])
    if method:
        parts.append(f"method({method})")
    if rng.random() < 0.5:
        parts.append(f"action({rng.choice(['include', 'exclude'])})")
    pattern = "" if method == "none" else rng.choice(["PJSIP", "wallet-ru", "1", "CCROUTER"])
    try:
        return parse_filter(",".join(parts), bang + pattern)
    except FilterError:
        return None


def _event(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(NAMES)
    lines = [f"Event: {name}", "Privilege: call,all"]
    lines += [f"{h}: {rng.choice(VALUES)}" for h in rng.sample(HEADERS, rng.randrange(4))]
    if name == "VarSet":
        lines.append(f"Value: {rng.choice(['ok', 'no'])}")
    return name, "\r\n".join(lines) + "\r\n\r\n"


@pytest.mark.parametrize("seed", range(40))
def test_session_filters_decide_as_manager_c(seed: int) -> None:
    rng = random.Random(seed)
    session: Any = AmiSession(0, writer=None, server=None)  # type: ignore[arg-type]
    for _round in range(rng.randrange(1, 6)):
        for _ in range(rng.randrange(0, 3)):  # manager.c only ever adds filters
            flt = _filter(rng)
            if flt is not None:
                (session.excludes if flt.exclude else session.includes).append(flt)
        for _ in range(30):
            name, text = _event(rng)
            assert session.should_send(name, text) == reference(
                session.includes, session.excludes, name, text), (name, text)
            assert session.may_want(name) == reference_may_want(
                session.includes, session.excludes, name)
