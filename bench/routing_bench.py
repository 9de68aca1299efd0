"""Skill-based routing: decisions/s and latency, and the membership diff after a reconnect.

    python -m bench.routing_bench [OPERATORS] [TARGETS]      (default 5000 x 50)

Pure in-process timing of the routing core (no sockets): a synthetic floor of OPERATORS with
random product/language levels and TARGETS product x language targets (with a fallback
language and the default four-step expansion ladder). Prints:
- routing decisions/s and p50/p99 of one `decide()` (requirements + staffing + last agent);
- the desired membership (skills matrix -> per-queue penalties) for the whole floor;
- the membership diff after a reconnect: QueueStatus state with 1 % drift, and after an
  Asterisk restart (no dynamic member left), i.e. the time before the first action is sent.
Numbers, not assertions.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from bench.stats import summary_ms
from ccrouter.routing.model.decide import (
    Floor,
    PrioritySpec,
    Requirements,
    RoutingTable,
    TargetSpec,
    decide,
)
from ccrouter.routing.model.skills import (
    Member,
    OperatorState,
    Step,
    TargetSkills,
    desired_members,
    membership_diff,
)

LADDER = (Step(0, 80), Step(30, 50), Step(60, 1), Step(90, 1, 1))


def floor(n_ops: int, n_targets: int, seed: int = 1) -> tuple[list[TargetSkills],
                                                                list[OperatorState]]:  # fmt: skip
    rng = random.Random(seed)
    n_lang = 5
    langs = [f"l{i}" for i in range(n_lang)]
    products = [f"p{i}" for i in range(max(1, n_targets // n_lang))]
    targets = [
        TargetSkills(f"{p}-{lang}", f"{p}-{lang}", p, (lang, langs[(i + 1) % n_lang]), LADDER)
        for p in products for i, lang in enumerate(langs)
    ][:n_targets]  # fmt: skip
    ops = []
    for i in range(n_ops):
        skills = {s: rng.randint(1, 100) for s in rng.sample(langs, 2) + rng.sample(products, 3)}
        ops.append(OperatorState(f"op{i}", f"Op {i}", f"PJSIP/{10000 + i}", f"PJSIP/{10000 + i}",
                                 skills, logged_in=True))  # fmt: skip
    return targets, ops


def measure(n_ops: int = 5000, n_targets: int = 50, n_decisions: int = 50_000) -> dict[str, Any]:
    targets, ops = floor(n_ops, n_targets)
    t0 = time.perf_counter()
    desired = desired_members(ops, targets, personal=True)
    desired_s = time.perf_counter() - t0
    specs = {(t.product, t.languages[0]): TargetSpec(t.name, t.queue, t.product, t.languages[0],
                                                      300, t.initial_max_penalty)
             for t in targets}  # fmt: skip
    default = next(iter(specs.values()))
    table = RoutingTable(specs, default, default.product, default.language,
                         priorities=PrioritySpec(5, 20, frozenset({"79001112233"})),
                         last_agent_ring_s=12)  # fmt: skip
    staffed = frozenset(q for q, _ in desired)
    rng = random.Random(2)
    reqs = [Requirements(product=t.product, language=t.languages[0],
                         caller_num=f"7900{rng.randrange(10**7):07d}")
            for t in (rng.choice(targets) for _ in range(1000))]  # fmt: skip
    floors = [Floor(staffed, None), Floor(staffed, "ccrouter-op-op1")]
    latencies = []
    start = time.perf_counter()
    for i in range(n_decisions):
        t = time.perf_counter()
        decide(reqs[i % 1000], table, floors[i & 1])
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    managed = {q for q, _ in desired}
    drifted = dict(desired)
    for key in rng.sample(sorted(desired), len(desired) // 100):
        m = drifted.pop(key)
        if rng.random() < 0.5:
            drifted[key] = Member(m.queue, m.interface, m.penalty + 1, m.paused)
    t = time.perf_counter()
    drift_diff = membership_diff(desired, drifted, managed)
    drift_s = time.perf_counter() - t
    t = time.perf_counter()
    restart_diff = membership_diff(desired, {}, managed)
    restart_s = time.perf_counter() - t
    return {
        "operators": n_ops, "targets": n_targets, "members": len(desired),
        "decisions_per_s": round(n_decisions / elapsed), **summary_ms(latencies),
        "desired_members_ms": round(desired_s * 1000, 1),
        "diff_drift_ms": round(drift_s * 1000, 1), "diff_drift_actions": len(drift_diff.actions),
        "diff_restart_ms": round(restart_s * 1000, 1),
        "diff_restart_actions": len(restart_diff.actions),
    }  # fmt: skip


def main(n_ops: int = 5000, n_targets: int = 50) -> dict[str, Any]:
    r = measure(n_ops, n_targets)
    print(f"routing, {r['operators']} operators x {r['targets']} targets "
          f"({r['members']} queue members):")
    print(f"  decide(): {r['decisions_per_s']} decisions/s, p50 {r['p50_ms'] * 1000:.1f} us, "
          f"p99 {r['p99_ms'] * 1000:.1f} us")
    print(f"  skills matrix -> desired members: {r['desired_members_ms']} ms")
    print(f"  membership diff after reconnect: {r['diff_drift_ms']} ms with 1 % drift "
          f"({r['diff_drift_actions']} actions); {r['diff_restart_ms']} ms after a PBX restart "
          f"({r['diff_restart_actions']} actions)")  # fmt: skip
    return r


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
