"""The simulator's queue engine picks the members a straightforward app_queue reading picks:
`QueueEngine.dispatch` (which walks the members for rrmemory, rrordered and linear) against
the plain reference below (list the free members, keep the allowed ones of the best penalty,
choose by strategy), over seeded random sequences of members added, removed, re-added,
paused, re-penalised, rung, freed and of callers with penalty bounds, for every strategy."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from ccrouter.sim.core import INUSE, NOT_INUSE, RINGING
from ccrouter.sim.engine import QueueEngine
from ccrouter.sim.model import Member
from ccrouter.sim.queues import STRATEGIES, Attempt, Entry, QueueConfig, SimQueue


def reference_pick(q: SimQueue, entry: Entry, free: list[Member], now_epoch: float,
                   rng: random.Random) -> list[Member]:
    eligible = [m for m in free if entry.allows(m.penalty)]
    if not eligible:
        return []
    best = min(m.penalty for m in eligible)
    tier = [m for m in eligible if m.penalty == best]
    strategy = q.config.strategy
    if strategy == "ringall":
        return tier
    if strategy in ("rrmemory", "rrordered"):
        pos = {iface: i for i, iface in enumerate(q.members)}
        n, start = len(pos), q.rr_next
        chosen = min(tier, key=lambda m: (pos[m.interface] - start) % n)
        q.rr_next = (pos[chosen.interface] + 1) % n
        return [chosen]
    if strategy == "leastrecent":
        return [min(tier, key=lambda m: 0 if not m.last_call
                    else 1_000_000 - (now_epoch - m.last_call))]
    if strategy == "fewestcalls":
        return [min(tier, key=lambda m: m.calls_taken)]
    if strategy == "random":
        return [rng.choice(tier)]
    return [tier[0]]  # linear


def reference_dispatch(q: SimQueue, state: Any) -> list[tuple[int, str]]:
    """The engine's dispatch as first written: every free member listed up front."""
    rung: list[tuple[int, str]] = []
    now = state.now

    def is_free(m: Member) -> bool:
        return (not m.paused and now >= m.busy_until and m.interface not in state.ringing
                and state.device.get(m.interface, NOT_INUSE) == NOT_INUSE)

    free = [m for m in q.members.values() if is_free(m)]
    for entry in list(q.entries):
        if not free:
            break
        if entry.attempts or entry.retry_until > now:
            continue
        for m in reference_pick(q, entry, free, state.wall(), state.rng):
            free.remove(m)
            rung.append((entry.seq, m.interface))
    return rung


class _Recorder(QueueEngine):
    """The real dispatch; `_ring` only records (and marks the member rung, as it does)."""

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.rung: list[tuple[int, str]] = []

    def _ring(self, q: SimQueue, entry: Entry, m: Member) -> None:
        self.rung.append((entry.seq, m.interface))
        self.ringing.add(m.interface)


def _state(seed: int) -> Any:
    st = SimpleNamespace(now=100.0, epoch=1_700_000_000, device={}, ringing=set(),
                         rng=random.Random(seed))
    st.wall = lambda: st.epoch
    return st


def _entry(seq: int, rng: random.Random) -> Entry:
    lo = rng.choice([None, None, None, 0, 1, 2])
    hi = rng.choice([None, None, None, 1, 2, 3])
    return Entry(live=None, chan=None, prio=0, min_penalty=lo,  # type: ignore[arg-type]
                 max_penalty=hi, joined=0.0, seq=seq)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("seed", range(6))
def test_dispatch_picks_what_the_reference_picks(strategy: str, seed: int) -> None:
    rng = random.Random(f"{strategy}/{seed}")
    ref_q, new_q = SimQueue(QueueConfig("ref", strategy)), SimQueue(QueueConfig("new", strategy))
    ref, new = _state(seed), _state(seed)
    core = SimpleNamespace(now=lambda: new.now, wall=new.wall, rng=new.rng, device=new.device)
    engine = _Recorder(core)
    new.ringing = engine.ringing
    ifaces = [f"PJSIP/{1000 + i}" for i in range(14)]
    seq, picks = 0, 0

    for _step in range(500):
        op = rng.random()
        iface = rng.choice(ifaces)
        queues = (ref_q, new_q)
        if op < 0.12 and iface not in ref_q.members:  # a member joins (at the end)
            pen, calls, last = rng.choice([0, 0, 1, 2, 3]), rng.randrange(5), rng.randrange(90)
            for q in queues:
                q.members[iface] = Member(iface, iface, iface, penalty=pen, calls_taken=calls,
                                          last_call=0 if last < 30 else ref.epoch - last)
        elif op < 0.2 and iface in ref_q.members:  # a member leaves
            for q in queues:
                del q.members[iface]
        elif op < 0.3 and iface in ref_q.members:  # pause / unpause
            flag = not ref_q.members[iface].paused
            for q in queues:
                q.members[iface].paused = flag
        elif op < 0.37 and iface in ref_q.members:  # QueuePenalty
            pen = rng.choice([0, 1, 2, 3])
            for q in queues:
                q.members[iface].penalty = pen
        elif op < 0.43 and iface in ref_q.members:  # wrap-up
            until = ref.now + rng.choice([-1.0, 2.0])
            for q in queues:
                q.members[iface].busy_until = until
        elif op < 0.5:  # the device changes
            status = rng.choice([NOT_INUSE, NOT_INUSE, INUSE, RINGING])
            ref.device[iface] = new.device[iface] = status
        elif op < 0.6 and ref.ringing:  # a member stops ringing
            gone = rng.choice(sorted(ref.ringing))
            ref.ringing.discard(gone)
            new.ringing.discard(gone)
        elif op < 0.72:  # a caller joins (some with attempts or a retry pending)
            seq += 1
            pair = [_entry(seq, random.Random(f"{seed}/{seq}")) for _q in (ref_q, new_q)]
            if rng.random() < 0.15:
                for e in pair:
                    e.retry_until = ref.now + 1.0
            for q, e in zip(queues, pair, strict=True):
                q.entries.append(e)
        elif op < 0.8 and ref_q.entries:  # a caller leaves
            i = rng.randrange(len(ref_q.entries))
            for q in queues:
                del q.entries[i]
        else:  # the engine dispatches
            ref_q.rr_next = new_q.rr_next = rng.choice([ref_q.rr_next, ref_q.rr_next,
                                                        rng.randrange(20)])
            want = reference_dispatch(ref_q, ref)
            engine.rung.clear()
            engine.dispatch(new_q)
            assert engine.rung == want, f"step {_step}"
            assert new_q.rr_next == ref_q.rr_next
            for a, b in zip(ref_q.entries, new_q.entries, strict=True):
                for entry_seq, rung in want:
                    if entry_seq == a.seq:
                        for e in (a, b):
                            e.attempts[rung] = Attempt(Member(rung, rung, rung), [], 0.0)
                        ref.ringing.add(rung)
            picks += len(want)
            ref.epoch += 1
            new.epoch += 1
            if rng.random() < 0.5:  # callers rung move on (answered or not) now and then
                for e in (*ref_q.entries, *new_q.entries):
                    e.attempts.clear()
        assert ref.rng.getstate() == new.rng.getstate()
    assert picks > 10  # the sequence did ring members
