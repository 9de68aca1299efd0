"""KPI maths: hand-computed fixtures (short abandons, SL at exactly T), Erlang C against the
textbook factorial formula, and property tests."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccrouter.reports.model import (
    CallFacts,
    Counts,
    agents_needed,
    count,
    erlang_c,
    kpi,
    service_level,
)

T = 20

# Outcomes as the call book classifies them (short = abandoned before calls.short_abandon_s).
HAND = [
    CallFacts("answered", wait_s=0, talk_s=100, csat=5),
    CallFacts("answered", wait_s=20, talk_s=200, csat=4),  # exactly T: within the SL
    CallFacts("answered", wait_s=21, talk_s=300, csat=2),  # one second late
    CallFacts("answered", wait_s=45, talk_s=None),  # no AgentComplete (talk unknown)
    CallFacts("abandoned", wait_s=30),
    CallFacts("abandoned", wait_s=60),
    CallFacts("short_abandon", wait_s=2),
    CallFacts("short_abandon", wait_s=4),
    CallFacts("overflow", wait_s=300),  # queue timeout: offered, not answered
    CallFacts("ivr_only"),  # never entered a queue: not offered
    CallFacts(None),  # still in progress: not counted
]


def test_hand_computed_fixture() -> None:
    k = kpi(count(HAND, T))
    assert (k.offered, k.answered, k.abandoned, k.short_abandons) == (9, 4, 2, 2)
    assert k.sl == pytest.approx(2 / 7)  # (0 s, 20 s) of 9 offered - 2 short abandons
    assert k.aar == pytest.approx(2 / 7)
    assert k.asa_s == pytest.approx((0 + 20 + 21 + 45) / 4)
    assert k.handled == pytest.approx(4 / 9)
    assert k.aht_s == pytest.approx(200.0)  # the three answered calls with a talk time
    assert k.csat == pytest.approx(2 / 3) and k.csat_mean == pytest.approx(11 / 3)
    assert k.rated == 3


@pytest.mark.parametrize(("wait", "in_sl"), [(19, True), (20, True), (21, False)])
def test_sl_boundary_is_inclusive_at_exactly_t(wait: int, in_sl: bool) -> None:
    k = kpi(count([CallFacts("answered", wait_s=wait)], T))
    assert k.sl == (1.0 if in_sl else 0.0)


def test_short_abandons_leave_sl_and_aar_denominators_but_count_as_offered() -> None:
    calls = [CallFacts("answered", wait_s=5), CallFacts("short_abandon", wait_s=1)]
    k = kpi(count(calls, T))
    assert k.offered == 2 and k.sl == 1.0 and k.aar == 0.0 and k.handled == 0.5


def test_no_calls_gives_no_ratios_not_zero() -> None:
    k = kpi(Counts())
    assert (k.sl, k.asa_s, k.aar, k.handled, k.aht_s, k.csat) == (None,) * 6
    only_short = kpi(count([CallFacts("short_abandon", wait_s=1)], T))
    assert only_short.sl is None and only_short.aar is None and only_short.handled == 0.0


def _erlang_c_textbook(n: int, a: float) -> float:
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize(("n", "a"), [(1, 0.5), (2, 1.0), (11, 10.0), (13, 10.0), (30, 25.5)])
def test_erlang_c_matches_the_factorial_formula(n: int, a: float) -> None:
    assert erlang_c(n, a) == pytest.approx(_erlang_c_textbook(n, a), rel=1e-9)


def test_staffing_worked_example() -> None:
    # 360 calls/hour, 180 s handle time -> 18 erlangs; 80% within 20 s.
    st_ = agents_needed(360, 3600, 180, 0.8, 20)
    assert st_.traffic_erlangs == pytest.approx(18.0)
    assert st_.service_level >= 0.8
    assert service_level(st_.agents - 1, 18.0, 180, 20) < 0.8  # the fewest that do it
    assert st_.agents == 22
    assert agents_needed(0, 3600, 180, 0.8, 20).agents == 0


@given(
    a=st.floats(min_value=0.01, max_value=200),
    extra=st.integers(min_value=1, max_value=40),
    aht=st.floats(min_value=10, max_value=1000),
    t=st.integers(min_value=1, max_value=120),
)
def test_service_level_is_a_probability_that_grows_with_agents(
    a: float, extra: int, aht: float, t: int
) -> None:
    n = math.floor(a) + extra
    sl, more = service_level(n, a, aht, t), service_level(n + 1, a, aht, t)
    assert 0.0 <= sl <= 1.0 and 0.0 <= erlang_c(n, a) <= 1.0
    assert more >= sl - 1e-12


@given(
    calls=st.integers(min_value=1, max_value=3000),
    aht=st.floats(min_value=10, max_value=900),
    target=st.floats(min_value=0.5, max_value=0.95),
    t=st.integers(min_value=5, max_value=60),
)
def test_agents_needed_is_minimal_and_meets_the_target(
    calls: int, aht: float, target: float, t: int
) -> None:
    s = agents_needed(calls, 3600, aht, target, t)
    assert s.agents > s.traffic_erlangs and s.service_level >= target
    assert s.agents == 1 or service_level(s.agents - 1, s.traffic_erlangs, aht, t) < target


@given(st.lists(st.builds(
    CallFacts,
    st.sampled_from(["answered", "abandoned", "short_abandon", "overflow", "ivr_only", None]),
    st.integers(0, 400), st.one_of(st.none(), st.integers(0, 900)),
    st.one_of(st.none(), st.integers(1, 5)),
), max_size=60))
def test_ratios_stay_in_range(calls: list[CallFacts]) -> None:
    k = kpi(count(calls, T))
    for r in (k.sl, k.aar, k.handled, k.csat):
        assert r is None or 0.0 <= r <= 1.0
    if k.sl is not None and k.aar is not None:
        assert k.sl + k.aar <= 1.0 + 1e-12
