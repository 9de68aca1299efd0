"""The pure callback policy: eligibility, merge, ordering, retry schedule, pacing, dispatch."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ccrouter.callbacks import model as cb
from ccrouter.schedule import Schedule

POLICY = cb.Policy(short_abandon_s=5, do_not_call=frozenset({"79000000000"}), max_attempts=3,
                   backoff_s=(60.0, 300.0), pace_s=2.0, max_live_wait_s=60.0,
                   fallback={"wallet-tg": ("wallet-ru",)})  # fmt: skip


def req(id: int, place_at: float = 0.0, target: str = "wallet-ru", due_at: float = 0.0,
        **kw: object) -> cb.Request:  # fmt: skip
    return cb.Request(id=id, number=f"7900000{id:04d}", kind="callback", state="pending",
                      target=target, place_at=place_at, due_at=due_at, created_at=0.0,
                      **kw)  # type: ignore[arg-type]


def line(*free: str, queue: str = "wallet-ru", wait: float = 0.0,
         last: float | None = None) -> cb.Line:  # fmt: skip
    return cb.Line(queue=queue, free=frozenset(free), oldest_wait_s=wait, last_originate_at=last)


def test_refusals() -> None:
    assert cb.refusal("79001234567", 30, POLICY) is None
    assert cb.refusal("+79001234567", 5, POLICY) is None  # exactly the limit is not short
    assert cb.refusal("79001234567", 4, POLICY) is cb.Refusal.SHORT_ABANDON
    for hidden in ("", "anonymous", "Anonymous", "unknown", "Restricted", "private"):
        assert cb.refusal(hidden, 30, POLICY) is cb.Refusal.WITHHELD
    for bad in ("123", "7900abc1234", "1234567890123456789"):
        assert cb.refusal(bad, 30, POLICY) is cb.Refusal.INVALID
    assert cb.refusal("79000000000", 30, POLICY) is cb.Refusal.DO_NOT_CALL
    assert cb.refusal("+79000000000", 30, POLICY) is cb.Refusal.DO_NOT_CALL


@given(st.floats(0, 1e9), st.floats(0, 1e9), st.integers(1, 50))
def test_merge_keeps_the_earliest_place_and_counts(first: float, later: float, n: int) -> None:
    merged = cb.merge(req(1, place_at=first, abandons=n), later)
    assert merged.place_at == min(first, later) and merged.abandons == n + 1


@given(st.lists(st.tuples(st.floats(0, 1e6), st.integers(1, 10_000)), unique_by=lambda t: t[1]))
def test_ordering_is_by_place_then_id(items: list[tuple[float, int]]) -> None:
    out = cb.ordered(req(i, place_at=p) for p, i in items)
    keys = [(r.place_at, r.id) for r in out]
    assert keys == sorted(keys)


def test_retry_schedule_backs_off_and_stops() -> None:
    assert cb.next_due(1, 100.0, POLICY) == 160.0
    assert cb.next_due(2, 100.0, POLICY) == 400.0
    assert cb.next_due(3, 100.0, POLICY) is None


@given(st.integers(1, 30), st.floats(0, 1e9))
def test_retry_schedule_properties(attempts: int, now: float) -> None:
    policy = cb.Policy(max_attempts=10, backoff_s=(10.0, 20.0, 40.0))
    due = cb.next_due(attempts, now, policy)
    assert (due is None) == (attempts >= 10)
    if due is not None:
        assert due - now == policy.backoff_s[min(attempts - 1, 2)]
        if attempts > 1:
            earlier = cb.next_due(attempts - 1, now, policy)
            assert earlier is not None and earlier <= due


def test_result_of_originate_reasons() -> None:
    assert cb.result_of_originate(True, 4) is cb.AttemptResult.ANSWERED
    assert cb.result_of_originate(False, 5) is cb.AttemptResult.BUSY
    assert cb.result_of_originate(False, 3) is cb.AttemptResult.NO_ANSWER
    assert cb.result_of_originate(False, 8) is cb.AttemptResult.CONGESTION
    assert cb.result_of_originate(False, 0) is cb.AttemptResult.FAILED
    assert cb.result_of_originate(False, 4) is cb.AttemptResult.FAILED  # never "answered"


def test_expiry_only_for_callbacks() -> None:
    old = req(1)
    assert cb.expired(old, POLICY.expire_after_s + 1, POLICY)
    assert not cb.expired(old, POLICY.expire_after_s, POLICY)
    outbound = cb.Request(2, "79001112233", "outbound", "pending", "wallet-ru", 0, 0, 0)
    assert not cb.expired(outbound, 1e12, POLICY)


OPEN = cb.AlwaysOpen()


def test_plan_one_callback_per_free_operator_in_place_order() -> None:
    pending = [req(i, place_at=100.0 - i) for i in range(1, 6)]
    policy = cb.Policy(pace_s=0.0)
    plan = cb.plan(pending, {"wallet-ru": line("PJSIP/1", "PJSIP/2")}, {}, 1000.0, policy, OPEN)
    assert [d.request.id for d in plan.dispatch] == [5, 4]
    assert sorted(d.interface for d in plan.dispatch) == ["PJSIP/1", "PJSIP/2"]


def test_plan_counts_legs_in_flight_against_free_operators() -> None:
    policy = cb.Policy(pace_s=0.0)
    lines = {"wallet-ru": line("PJSIP/1", "PJSIP/2")}
    plan = cb.plan([req(1), req(2)], lines, {"wallet-ru": 1}, 1000.0, policy, OPEN)
    assert [d.request.id for d in plan.dispatch] == [1]
    assert cb.plan([req(1)], lines, {"wallet-ru": 2}, 1000.0, policy, OPEN).dispatch == ()


@given(st.integers(0, 6), st.integers(0, 6), st.integers(0, 12))
def test_plan_never_exceeds_free_operators(free: int, flying: int, pending: int) -> None:
    lines = {"wallet-ru": line(*(f"PJSIP/{i}" for i in range(free)))}
    policy = cb.Policy(pace_s=0.0)
    plan = cb.plan([req(i + 1) for i in range(pending)], lines, {"wallet-ru": flying}, 10.0,
                   policy, OPEN)  # fmt: skip
    assert len(plan.dispatch) == max(0, min(pending, free - flying))
    assert len({d.interface for d in plan.dispatch}) == len(plan.dispatch)


def test_plan_paces_each_line() -> None:
    lines = {"wallet-ru": line("PJSIP/1", "PJSIP/2", last=999.0)}
    plan = cb.plan([req(1), req(2)], lines, {}, 1000.0, POLICY, OPEN)
    assert plan.dispatch == () and plan.wake_at == 1001.0
    lines = {"wallet-ru": line("PJSIP/1", "PJSIP/2", last=990.0)}
    plan = cb.plan([req(1), req(2)], lines, {}, 1000.0, POLICY, OPEN)
    assert [d.request.id for d in plan.dispatch] == [1] and plan.wake_at == 1002.0


def test_plan_does_not_starve_the_live_queue() -> None:
    lines = {"wallet-ru": line("PJSIP/1", wait=61.0)}
    assert cb.plan([req(1)], lines, {}, 1000.0, POLICY, OPEN).dispatch == ()
    lines = {"wallet-ru": line("PJSIP/1", wait=59.0)}
    assert len(cb.plan([req(1)], lines, {}, 1000.0, POLICY, OPEN).dispatch) == 1


def test_plan_waits_for_due_time_and_uses_fallback_targets() -> None:
    lines = {"wallet-ru": line("PJSIP/1"), "wallet-tg": line(queue="wallet-tg")}
    plan = cb.plan([req(1, target="wallet-tg"), req(2, due_at=2000.0)], lines, {}, 1000.0,
                   POLICY, OPEN)  # fmt: skip
    assert [(d.request.id, d.target) for d in plan.dispatch] == [(1, "wallet-ru")]
    assert plan.wake_at == 2000.0


def test_plan_respects_business_hours() -> None:
    class Closed:
        def is_open(self, target: str, at: float) -> bool:
            return False

    assert cb.plan([req(1)], {"wallet-ru": line("PJSIP/1")}, {}, 1000.0, POLICY,
                   Closed()).dispatch == ()  # fmt: skip


def test_line_hours_by_product() -> None:
    weekdays = Schedule.build("UTC", {"mon": ["09:00-18:00"]})
    hours = cb.LineHours({"wallet": weekdays}, {"wallet-ru": "wallet", "terminal-ru": "terminal"})
    monday_10 = 1_700_485_200.0  # 2023-11-20 13:00 UTC, a Monday
    sunday = monday_10 - 86400
    assert hours.is_open("wallet-ru", monday_10) and not hours.is_open("wallet-ru", sunday)
    assert hours.is_open("terminal-ru", sunday)  # no schedule: 24/7
