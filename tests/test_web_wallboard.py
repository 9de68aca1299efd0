"""The wallboard's operators array: cached per operator, rebuilt only for what changed, and
always equal to a full rebuild. Pure (no event loop)."""

from __future__ import annotations

import dataclasses
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from ccrouter.config import Operator
from ccrouter.pbx import events as ev
from ccrouter.web.live import LiveModel
from ccrouter.web.wallboard import OperatorsJson, splice

N = 5000


def member(i: int, queue: str = "q1", **kw: object) -> ev.MemberState:
    base = dict(at=0.0, queue=queue, interface=f"PJSIP/{i}", member_name=f"Op {i}",
                state_interface=f"PJSIP/{i}", penalty=0, paused=False, paused_reason="",
                status=1, in_call=False, calls_taken=0, membership="dynamic")
    return ev.MemberState(**{**base, **kw})  # type: ignore[arg-type]


def full(live: LiveModel, ops: list[Operator]) -> list[dict[str, object]]:
    configured = {o.interface: (o.id, o.name) for o in ops}
    rows = [dataclasses.asdict(v) for v in live.operators(configured)]
    return list(json.loads(json.dumps(rows)))


def test_one_change_among_5000_operators_rebuilds_one_fragment() -> None:
    ops = [Operator(id=f"op{i}", name=f"Op {i}", interface=f"PJSIP/{i}") for i in range(N)]
    live = LiveModel(["q1", "q2"], 5)
    live.load_status([member(i) for i in range(N)], [])
    cache = OperatorsJson()
    first = cache.text(live, ops)
    assert cache.rebuilt == N and json.loads(first) == full(live, ops)
    assert cache.text(live, ops) is first and cache.rebuilt == N  # nothing changed
    live.apply(ev.MemberChanged(1.0, member(7, paused=True, paused_reason="lunch")))
    live.apply(ev.MemberAdded(1.0, member(9999, queue="q2")))  # not configured
    t0 = time.perf_counter()
    text = cache.text(live, ops)
    print(f"incremental rebuild of {N} operators: {(time.perf_counter() - t0) * 1e3:.2f} ms")
    assert cache.rebuilt == N + 2
    rows = json.loads(text)
    assert rows == full(live, ops)
    assert rows[7]["state"] == "paused" and rows[7]["paused_reason"] == "lunch"
    assert rows[-1]["id"] == "PJSIP/9999"
    live.apply(ev.MemberRemoved(2.0, member(9999, queue="q2")))
    assert json.loads(cache.text(live, ops)) == full(live, ops)
    assert len(json.loads(cache.text(live, ops))) == N
    # a config reload (other operators) rebuilds everything
    fewer = ops[:10]
    assert json.loads(cache.text(live, fewer)) == full(live, fewer)


events = st.lists(st.tuples(st.sampled_from(["add", "change", "remove"]),
                            st.integers(0, 8), st.sampled_from(["q1", "q2"]),
                            st.booleans(), st.sampled_from([1, 2, 5, 6])), max_size=30)


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(events, max_size=5))
def test_the_cache_always_equals_a_full_rebuild(
        batches: list[list[tuple[str, int, str, bool, int]]]) -> None:
    ops = [Operator(id=f"op{i}", name=f"Op {i}", interface=f"PJSIP/{i}") for i in range(5)]
    live = LiveModel(["q1", "q2"], 5)
    cache = OperatorsJson()
    for batch in batches:
        for kind, i, queue, paused, status in batch:
            m = member(i, queue=queue, paused=paused, status=status)
            kinds: dict[str, type[ev.MemberAdded | ev.MemberChanged | ev.MemberRemoved]] = {
                "add": ev.MemberAdded, "change": ev.MemberChanged, "remove": ev.MemberRemoved}
            live.apply(kinds[kind](0.0, m))
        assert json.loads(cache.text(live, ops)) == full(live, ops)


def test_splice_is_json() -> None:
    text = splice({"a": 1, "b": "é"}, {"ops": "[1,2]"})
    assert json.loads(text) == {"a": 1, "b": "é", "ops": [1, 2]}
