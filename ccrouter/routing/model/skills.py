"""The skills matrix -> queue members and penalties; expansion ladders -> queue rules. Pure.

An operator is a member of a target's queue when they have the target's product and one of its
languages (its own, then its fallbacks, in order) at a level the target's last expansion step
allows. Their penalty there is

    penalty = rank * FALLBACK_BAND + (LEVEL_MAX - min(product level, language level))

taking the best language (rank 0 = the target's own, 1 = its first fallback, ...): 0 is an
expert in both, 99 the weakest speaker of the own language, 1000+ the fallback speakers. An
expansion step "after N s allow level >= X, fallbacks up to n" is the maximum penalty
`n * FALLBACK_BAND + LEVEL_MAX - X`: the route script sets the first step's value as
QUEUE_MAX_PENALTY, and the target's queue rule (`penaltychange => N,max`) raises it while the
caller waits. A member's penalty depends on their own skills only, so changing one operator's
skills changes only that operator's memberships.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ccrouter.dialplan import PERSONAL_QUEUE_PREFIX

LEVEL_MAX: Final = 100
FALLBACK_BAND: Final = 1000
"""Penalty offset per fallback-language rank: any own-language speaker ranks first."""


@dataclass(frozen=True, slots=True)
class Step:
    """After `after_s` s of waiting, levels >= `min_level`, fallback languages up to `fallback`."""

    after_s: int
    min_level: int = 1
    fallback: int = 0

    @property
    def max_penalty(self) -> int:
        return self.fallback * FALLBACK_BAND + LEVEL_MAX - self.min_level


@dataclass(frozen=True, slots=True)
class TargetSkills:
    """What a target's queue needs: a product and languages, own first, then fallbacks."""

    name: str
    queue: str
    product: str
    languages: tuple[str, ...]
    ladder: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.languages or not self.ladder:
            raise ValueError(f"target {self.name!r}: needs a language and an expansion step")

    def limit(self, step: Step) -> int:
        """The step's max penalty here (fallback ranks beyond this target's list add nothing)."""
        rank = min(step.fallback, len(self.languages) - 1)
        return rank * FALLBACK_BAND + LEVEL_MAX - step.min_level

    @property
    def initial_max_penalty(self) -> int:
        return self.limit(self.ladder[0])

    @property
    def final_max_penalty(self) -> int:
        return max(self.limit(s) for s in self.ladder)

    def rule_name(self) -> str:
        return f"ccrouter-{self.name}"

    def rules(self) -> list[tuple[int, int]]:
        """The queue rule's `penaltychange => seconds,max` pairs: the steps after the first
        that widen the limit (a step that adds nothing for this target is left out)."""
        out: list[tuple[int, int]] = []
        last = self.initial_max_penalty
        for s in self.ladder[1:]:
            if self.limit(s) > last:
                last = self.limit(s)
                out.append((s.after_s, last))
        return out


def penalty(skills: Mapping[str, int], target: TargetSkills) -> int | None:
    """The operator's penalty in the target's queue, or None when they are not a member."""
    product = skills.get(target.product, 0)
    if product <= 0:
        return None
    best: int | None = None
    for rank, language in enumerate(target.languages):
        level = min(product, skills.get(language, 0))
        if level > 0:
            p = rank * FALLBACK_BAND + LEVEL_MAX - level
            best = p if best is None else min(best, p)
    if best is None or best > target.final_max_penalty:
        return None
    return best


def max_penalty_at(target: TargetSkills, waited_s: float) -> int:
    """QUEUE_MAX_PENALTY after `waited_s` seconds in the queue (the rule app_queue applies)."""
    allowed = target.initial_max_penalty
    for after, limit in target.rules():
        if waited_s >= after:
            allowed = limit
    return allowed


# --- membership ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorState:
    """One operator as routing sees them: skills (config or override) and login/pause state."""

    id: str
    name: str
    interface: str
    state_interface: str
    skills: Mapping[str, int]
    logged_in: bool = False
    paused: bool = False
    pause_reason: str = ""


@dataclass(frozen=True, slots=True)
class Member:
    """A queue member, desired (from the skills matrix) or actual (from Asterisk)."""

    queue: str
    interface: str
    penalty: int
    paused: bool = False
    reason: str = ""
    name: str = ""
    state_interface: str = ""
    dynamic: bool = True
    status: int = 0
    """Device state (actual members only): 1 = not in use, 2 = in use, 6 = ringing, ..."""
    in_call: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.queue, self.interface)


Key = tuple[str, str]


def personal_queue(operator_id: str) -> str:
    """The last-agent queue of one operator (a repeat caller rings them here first)."""
    return f"{PERSONAL_QUEUE_PREFIX}{operator_id}"


def operator_members(
    op: OperatorState, targets: Iterable[TargetSkills], *, personal: bool = False
) -> list[Member]:
    """Where a logged-in operator belongs, with penalties; none when logged out."""
    if not op.logged_in:
        return []
    out = []
    for t in targets:
        p = penalty(op.skills, t)
        if p is not None:
            out.append(
                Member(t.queue, op.interface, p, op.paused, op.pause_reason if op.paused else "",
                       op.name, op.state_interface)
            )  # fmt: skip
    if personal:
        out.append(
            Member(personal_queue(op.id), op.interface, 0, op.paused,
                   op.pause_reason if op.paused else "", op.name, op.state_interface)
        )  # fmt: skip
    return out


def desired_members(
    operators: Iterable[OperatorState], targets: Sequence[TargetSkills], *, personal: bool = False
) -> dict[Key, Member]:
    out: dict[Key, Member] = {}
    for op in operators:
        for m in operator_members(op, targets, personal=personal):
            out[m.key] = m
    return out


@dataclass(frozen=True, slots=True)
class Add:
    member: Member


@dataclass(frozen=True, slots=True)
class Remove:
    queue: str
    interface: str


@dataclass(frozen=True, slots=True)
class SetPenalty:
    queue: str
    interface: str
    penalty: int


@dataclass(frozen=True, slots=True)
class SetPause:
    queue: str
    interface: str
    paused: bool
    reason: str = ""


Action = Add | Remove | SetPenalty | SetPause


@dataclass(frozen=True, slots=True)
class Diff:
    actions: tuple[Action, ...]
    static_extra: tuple[Key, ...] = ()
    """Unwanted members from queues.conf (`member =>`): AMI cannot remove them; reported."""


def membership_diff(
    desired: Mapping[Key, Member],
    actual: Mapping[Key, Member],
    managed_queues: Iterable[str],
    *,
    leave_alone: Iterable[Key] = (),
) -> Diff:
    """Exactly the actions that make Asterisk's members of `managed_queues` equal `desired`.

    Removals come first, then additions, penalties, pauses (in key order, so the list is stable).
    `leave_alone` keys (adopted manual changes) are skipped.
    """
    managed, skip = set(managed_queues), set(leave_alone)
    actions: list[Action] = []
    static: list[Key] = []
    for key in sorted(actual.keys() - desired.keys() - skip):
        if key[0] in managed:
            if actual[key].dynamic:
                actions.append(Remove(*key))
            else:
                static.append(key)
    adds: list[Action] = [
        Add(desired[key]) for key in sorted(desired.keys() - actual.keys() - skip)
        if key[0] in managed
    ]  # fmt: skip
    changes: list[tuple[Key, Action]] = []
    for key, want in desired.items():
        have = actual.get(key)
        if have is None or have is want or key in skip or key[0] not in managed:
            continue
        if have.penalty != want.penalty:
            changes.append((key, SetPenalty(key[0], key[1], want.penalty)))
        if have.paused != want.paused or (want.paused and have.reason != want.reason):
            changes.append((key, SetPause(key[0], key[1], want.paused, want.reason)))
    changes.sort(key=lambda c: c[0])
    return Diff((*actions, *adds, *(a for _, a in changes)), tuple(static))


def same_member(a: Member | None, b: Member | None) -> bool:
    """Equal as far as ccrouter manages a member (penalty, pause and its reason)."""
    if a is None or b is None:
        return a is b
    return (
        a.penalty == b.penalty
        and a.paused == b.paused
        and (not a.paused or a.reason == b.reason)
    )
