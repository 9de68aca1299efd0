"""The skills matrix -> queue penalties, expansion ladders, membership diff: pure, with
property tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ccrouter.config import load_settings
from ccrouter.routing.model.skills import (
    FALLBACK_BAND,
    Add,
    Member,
    OperatorState,
    Remove,
    SetPause,
    SetPenalty,
    Step,
    TargetSkills,
    desired_members,
    max_penalty_at,
    membership_diff,
    operator_members,
    penalty,
    personal_queue,
)
from ccrouter.routing.table import all_target_skills
from tests.conftest import ROOT

SKILLS = ("wallet", "terminal", "ru", "uz", "tg")
LADDER = (Step(0, 80), Step(30, 50), Step(60, 1), Step(90, 1, 1))
WALLET_UZ = TargetSkills("wallet-uz", "wallet-uz", "wallet", ("uz", "ru"), LADDER)
TARGETS = [
    WALLET_UZ,
    TargetSkills("wallet-ru", "wallet-ru", "wallet", ("ru",), LADDER),
    TargetSkills("terminal-uz", "terminal-uz", "terminal", ("uz", "ru", "tg"), LADDER),
]

levels = st.integers(min_value=0, max_value=100)
skill_maps = st.dictionaries(st.sampled_from(SKILLS), levels)
targets = st.sampled_from(TARGETS)


def op(i: int, skills: dict[str, int], **kw: object) -> OperatorState:
    return OperatorState(f"op{i}", f"Op {i}", f"PJSIP/{1000 + i}", f"PJSIP/{1000 + i}", skills,
                         logged_in=True, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_penalties_of_the_worked_example() -> None:
    assert penalty({"wallet": 100, "uz": 100}, WALLET_UZ) == 0
    assert penalty({"wallet": 90, "uz": 60}, WALLET_UZ) == 40  # the weaker level counts
    assert penalty({"wallet": 90, "ru": 100}, WALLET_UZ) == FALLBACK_BAND + 10  # fallback
    assert penalty({"wallet": 90, "uz": 10, "ru": 100}, WALLET_UZ) == 90  # own language first
    assert penalty({"uz": 100}, WALLET_UZ) is None  # no product
    assert penalty({"wallet": 100, "tg": 100}, WALLET_UZ) is None  # no language
    assert penalty({"wallet": 0, "uz": 100}, WALLET_UZ) is None  # level 0 = no skill


def test_ladder_widens_over_the_wait_and_makes_the_rules() -> None:
    assert [max_penalty_at(WALLET_UZ, t) for t in (0, 29, 30, 59, 60, 89, 90, 500)] == [
        20, 20, 50, 50, 99, 99, FALLBACK_BAND + 99, FALLBACK_BAND + 99]  # fmt: skip
    assert WALLET_UZ.rules() == [(30, 50), (60, 99), (90, 1099)]
    own_only = TargetSkills("w", "w", "wallet", ("ru",), (Step(0, 80), Step(30, 80, 1)))
    assert own_only.rules() == []  # a step that adds nothing is not a rule


def test_personal_queue_only_when_asked_and_logged_in() -> None:
    o = op(1, {"wallet": 100, "uz": 100})
    queues = [m.queue for m in operator_members(o, TARGETS, personal=True)]
    assert queues == ["wallet-uz", personal_queue("op1")]  # no ru, no terminal
    out = OperatorState(o.id, o.name, o.interface, o.state_interface, o.skills)
    assert operator_members(out, TARGETS, personal=True) == []


@given(skill_maps, skill_maps, targets)
def test_a_stronger_operator_never_gets_a_higher_penalty(
    a: dict[str, int], b: dict[str, int], target: TargetSkills
) -> None:
    stronger = {k: max(a.get(k, 0), b.get(k, 0)) for k in SKILLS}
    p_strong, p_weak = penalty(stronger, target), penalty(a, target)
    if p_weak is not None:
        assert p_strong is not None and p_strong <= p_weak


@given(st.lists(skill_maps, max_size=8), targets)
def test_every_staffed_target_is_reachable_after_full_expansion(
    matrix: list[dict[str, int]], target: TargetSkills
) -> None:
    members = [m for m in desired_members([op(i, s) for i, s in enumerate(matrix)], [target])
               .values()]  # fmt: skip
    skilled = [s for s in matrix if penalty(s, target) is not None]
    assert bool(members) == bool(skilled)
    final = max_penalty_at(target, 10**6)
    assert all(m.penalty <= final for m in members)
    if members:
        # the best member is reachable from the first step on, or at the latest at the end
        assert min(m.penalty for m in members) <= final


@given(st.lists(skill_maps, min_size=1, max_size=6), st.data())
def test_changing_one_operators_skills_changes_only_their_memberships(
    matrix: list[dict[str, int]], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(matrix) - 1))
    new = data.draw(skill_maps)
    before = desired_members([op(j, s) for j, s in enumerate(matrix)], TARGETS)
    after_matrix = [new if j == i else s for j, s in enumerate(matrix)]
    after = desired_members([op(j, s) for j, s in enumerate(after_matrix)], TARGETS)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert all(iface == f"PJSIP/{1000 + i}" for _, iface in changed)


@given(st.lists(skill_maps, max_size=5), st.lists(skill_maps, max_size=5))
def test_the_diff_applied_gives_the_desired_state(
    want: list[dict[str, int]], have: list[dict[str, int]]
) -> None:
    desired = desired_members([op(i, s) for i, s in enumerate(want)], TARGETS)
    actual = desired_members([op(i, s, paused=True, pause_reason="x")
                              for i, s in enumerate(have)], TARGETS)  # fmt: skip
    result = dict(actual)
    for a in membership_diff(desired, actual, [t.queue for t in TARGETS]).actions:
        if isinstance(a, Add):
            result[a.member.key] = a.member
        elif isinstance(a, Remove):
            del result[(a.queue, a.interface)]
        elif isinstance(a, SetPenalty):
            m = result[(a.queue, a.interface)]
            result[m.key] = Member(m.queue, m.interface, a.penalty, m.paused, m.reason)
        else:
            m = result[(a.queue, a.interface)]
            result[m.key] = Member(m.queue, m.interface, m.penalty, a.paused, a.reason)
    assert {k: (m.penalty, m.paused) for k, m in result.items()} == {
        k: (m.penalty, m.paused) for k, m in desired.items()}  # fmt: skip
    assert not membership_diff(desired, desired, [t.queue for t in TARGETS]).actions


def test_diff_is_exactly_the_missing_actions() -> None:
    d = {m.key: m for m in [Member("q1", "PJSIP/1", 0), Member("q1", "PJSIP/2", 10),
                            Member("q2", "PJSIP/1", 5, True, "lunch")]}  # fmt: skip
    a = {m.key: m for m in [Member("q1", "PJSIP/1", 0), Member("q1", "PJSIP/2", 30),
                            Member("q1", "PJSIP/9", 0), Member("q2", "PJSIP/8", 0, dynamic=False),
                            Member("other", "PJSIP/7", 0)]}  # fmt: skip
    diff = membership_diff(d, a, ["q1", "q2"])
    assert diff.actions == (
        Remove("q1", "PJSIP/9"),
        Add(Member("q2", "PJSIP/1", 5, True, "lunch")),
        SetPenalty("q1", "PJSIP/2", 10),
    )
    assert diff.static_extra == (("q2", "PJSIP/8"),)  # not removable over AMI: reported
    paused = {("q2", "PJSIP/1"): Member("q2", "PJSIP/1", 5, True, "break")}
    assert membership_diff(d, {**a, **paused}, ["q2"]).actions[-1] == SetPause(
        "q2", "PJSIP/1", True, "lunch")  # fmt: skip
    assert membership_diff(d, a, ["q1"], leave_alone=[("q1", "PJSIP/9")]).actions == (
        SetPenalty("q1", "PJSIP/2", 10),)  # fmt: skip


def test_example_config_gives_every_target_a_member() -> None:
    settings = load_settings(ROOT / "config" / "ccrouter.yaml", {})
    ops = [OperatorState(o.id, o.name, o.interface, o.interface, o.skills, logged_in=True)
           for o in settings.operators]  # fmt: skip
    skills = all_target_skills(settings)
    members = desired_members(ops, skills)
    assert {q for q, _ in members} == {t.queue for t in skills}
    assert members[("wallet-uz", "PJSIP/1001")].penalty == 10  # uz 100, wallet 90
    assert members[("wallet-uz", "PJSIP/1003")].penalty == 60  # uz 40, wallet 100
    assert members[("wallet-uz", "PJSIP/1002")].penalty == FALLBACK_BAND + 20  # ru only
