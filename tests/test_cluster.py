"""Two simulated Asterisk nodes, two ccrouter instances in this process, one real PostgreSQL:
each node is served by the instance holding its lease; a clean stop hands both nodes over at
once; cards name their node, card numbers are unique across the cluster, and a caller's
history follows them from one node to the other."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import sqlalchemy as sa
from structlog.testing import capture_logs

from ccrouter.db.engine import make_engine
from ccrouter.dialplan import VAR_CARD
from ccrouter.routing.state import OperatorService, OperatorStore
from ccrouter.sim import PbxSimulator, SimCall, SimCaller
from ccrouter.web.auth import Role, TokenStore
from tests.cluster_stack import (
    Running,
    as_instance,
    cluster_settings,
    daemons_logged_in,
    free_ports,
    holder_behind_a_proxy,
    rows,
    start_sims,
)
from tests.stack import wait_until

WALLET = "712000100"


def membership_in_step(run: Running, sims: dict[str, PbxSimulator]) -> bool:
    """Every node of the instance is served, its simulator with exactly the members its
    daemon wants."""
    if not run.instance.slots:
        return False
    for slot in run.instance.slots:
        app: Any = slot.app
        if app is None or not slot.serving.is_set() or app.membership is None:
            return False
        m = app.membership
        want = {(q, i): (x.penalty, x.paused) for (q, i), x in m.desired.items()}
        have = {(q, x.interface): (x.penalty, x.paused)
                for q in m.managed for x in sims[slot.node].members(q)}  # fmt: skip
        if want != have or not want:
            return False
    return True


async def answered(calls: list[SimCall]) -> None:
    await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), 30)
    assert [c.outcome for c in calls] == ["answered"] * len(calls), [c.outcome for c in calls]


async def test_nodes_are_served_by_their_lease_holder_and_handed_over_on_stop(
    pg_url: str,
) -> None:
    settings = cluster_settings(pg_url, [free_ports(1), free_ports(1)],
                                [free_ports(2), free_ports(2)])  # fmt: skip
    sims = await start_sims(settings)
    by_node = dict(zip(("n1", "n2"), sims, strict=True))
    first = Running(as_instance(settings, "i1"))
    second: Running | None = None
    try:
        await wait_until(lambda: first.serving() == {"n1", "n2"}, 15, "i1 serves both nodes")
        second = Running(as_instance(settings, "i2"))
        await wait_until(lambda: membership_in_step(first, by_node), 10, "members in step")
        await wait_until(lambda: len(second.instance.slots) == 2, 10, "i2 standing by")
        assert second.serving() == set()  # the nodes are held: it waits
        placed = [(node, sim.place_call(SimCaller(f"7900{node[1]}{k:06d}", dialled=WALLET)))
                  for k in range(3) for node, sim in by_node.items()]  # fmt: skip
        await answered([c for _, c in placed])

        with capture_logs() as logs:
            assert await first.close() == 0  # as at SIGTERM: cards flushed, leases released
        released = sorted(e["term"] for e in logs if e["event"] == "lease_released")
        assert released == [1, 1]  # both nodes given back at once, not left to expire
        await wait_until(lambda: second is not None and second.serving() == {"n1", "n2"}, 10,
                         "i2 takes both nodes")  # fmt: skip
        await wait_until(lambda: second is not None and membership_in_step(second, by_node),
                         10, "members in step after the move")  # fmt: skip
        # The same callers again, each on the other node: their history is the cluster's.
        again = [("n2" if node == "n1" else "n1", call.caller) for node, call in placed]
        placed += [(node, by_node[node].place_call(SimCaller(caller.number, dialled=WALLET)))
                   for node, caller in again]  # fmt: skip
        await answered([c for _, c in placed[6:]])
        await second.close()
        second = None
    finally:
        if second is not None:
            await second.close()
        if not first.task.done():
            await first.close()
        for sim in sims:
            await sim.close()

    cards = {r.number: r for r in await rows(pg_url, "SELECT number, node, caller_num, "
                                                     "repeat_of, state FROM cards")}  # fmt: skip
    routed = [c.variables[VAR_CARD] for _, c in placed]
    assert len(set(routed)) == len(routed) == 12  # unique across nodes and instances
    assert set(routed) <= set(cards)
    assert [(cards[n].node, cards[n].state) for n in routed] == [
        (node, "closed") for node, _ in placed]
    repeats = [cards[n] for n in routed[6:]]
    assert all(r.repeat_of for r in repeats), [(r.number, r.repeat_of) for r in repeats]
    assert {cards[r.repeat_of].node for r in repeats} == {"n1", "n2"}


async def test_operator_changes_reach_the_node_holder_at_once_by_notify(pg_url: str) -> None:
    """With polling turned down to once a minute, a logout written by another process (the
    API or CLI of any instance) still reaches the holder's members in well under it: the write
    NOTIFYs and the holder LISTENs — also after its listening connection was cut."""
    settings = cluster_settings(pg_url, [free_ports(1)], [free_ports(1)], state_poll_s=60)
    (sim,) = await start_sims(settings)
    run = Running(as_instance(settings, "i1"))
    engine = make_engine(pg_url)
    operators = OperatorService(settings, OperatorStore(engine))
    try:
        await wait_until(lambda: membership_in_step(run, {"n1": sim}), 15, "members in step")
        iface = settings.operators[0].interface
        assert any(m.interface == iface for m in sim.members("wallet-ru"))
        await operators.logout(settings.operators[0].id, by="test")
        await wait_until(lambda: not any(m.interface == iface for m in sim.members("wallet-ru")),
                         5, "logout applied without waiting for the poll")  # fmt: skip
        async with engine.connect() as conn:  # the listener's connection dies (a failover)
            killed = (await conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE "
                "'LISTEN%' AND pid <> pg_backend_pid()"))).scalar_one()  # fmt: skip
        assert killed == 1
        await asyncio.sleep(2.5)  # it listens again (and catches up) after _RETRY_S
        await operators.login(settings.operators[0].id, by="test")
        await wait_until(lambda: any(m.interface == iface for m in sim.members("wallet-ru")),
                         5, "login applied after the listener came back")  # fmt: skip
    finally:
        await run.close()
        await sim.close()
        await engine.dispose()


async def test_every_nodes_site_shows_the_whole_cluster_live_and_reports_by_node(
    pg_url: str,
) -> None:
    """Node n1's wallboard API shows n2's calls, queues and operators (published by n2's
    holder through the database), each marked with its node; the KPI report filters by node."""
    http = free_ports(2)
    settings = cluster_settings(pg_url, [free_ports(1), free_ports(1)], [free_ports(2)],
                                http_ports=[http])  # fmt: skip
    sims = await start_sims(settings, talk_time_s=120)  # 3 s real: still up when we look
    by_node = dict(zip(("n1", "n2"), sims, strict=True))
    run = Running(as_instance(settings, "i1"))
    engine = make_engine(pg_url)
    try:
        await wait_until(lambda: membership_in_step(run, by_node), 15, "both nodes served")
        secret, _ = await TokenStore(engine).create("sup", Role.SUPERVISOR)
        auth = {"Authorization": f"Bearer {secret}"}
        on_n2 = by_node["n2"].place_call(SimCaller("79002000001", dialled=WALLET))
        on_n1 = [by_node["n1"].place_call(SimCaller(f"7900100000{k}", dialled=WALLET))
                 for k in range(2)]  # fmt: skip
        await wait_until(lambda: on_n2.operator != "", 10, "the n2 call answered")
        n1_site = f"http://127.0.0.1:{http}"  # node n1 is the instance's first: http_port + 0

        async def get(path: str) -> Any:
            async with aiohttp.ClientSession(headers=auth) as s, s.get(n1_site + path) as r:
                return r.status, await r.json()

        async def seen_from_n1() -> bool:
            _, rows = await get("/api/v1/live/calls")
            return any(r["node"] == "n2" and r["card"] == on_n2.variables.get(VAR_CARD)
                       for r in rows)  # fmt: skip

        async with asyncio.timeout(10):
            while not await seen_from_n1():
                await asyncio.sleep(0.2)
        status, queues = await get("/api/v1/live/queues")
        assert status == 200 and {q["node"] for q in queues} == {"n1", "n2"}
        _, ops = await get("/api/v1/live/operators")
        n2_ops = {o.interface for o in settings.operators if o.node == "n2"}
        assert {o["interface"] for o in ops if o["node"] == "n2"} == n2_ops
        await answered([on_n2, *on_n1])
        await asyncio.sleep(0.5)  # the cards' last writes
        for node, offered in (("n1", 2), ("n2", 1)):
            status, report = await get(f"/api/v1/reports/kpi?node={node}")
            assert status == 200 and report["total"]["offered"] == offered, report["total"]
        status, error = await get("/api/v1/reports/kpi?node=n9")
        assert status == 400 and "unknown node 'n9'" in str(error)
    finally:
        await run.close()
        for sim in sims:
            await sim.close()
        await engine.dispose()


async def test_a_holder_cut_off_from_the_database_stops_before_another_takes_over(
    pg_url: str,
) -> None:
    """Instance i1 reaches PostgreSQL through a proxy that is then cut (a partition): it cannot
    renew, stops serving the node by itself (after 0.5 x lease_s), and only then — when its
    row has expired — i2 takes the node. At no moment are both daemons logged in to the node's
    AMI (each instance's standby connection, which only listens, is: i2's until its daemon
    took over, then i1's)."""
    async with holder_behind_a_proxy(pg_url) as c:
        sim, first, second = c.sim, c.first, c.second
        await wait_until(lambda: sim.ami_logged_in == 2, 10, "i2's standby connection")
        logged_in: list[int] = []
        taken_s = None
        cut_at = time.monotonic()
        await c.proxy.cut()
        while time.monotonic() - cut_at < 10.0 and not (second.serving() and
                                                        daemons_logged_in(sim) == 1):  # fmt: skip
            logged_in.append(daemons_logged_in(sim))
            if taken_s is None and second.instance.slots[0].term is not None:
                taken_s = time.monotonic() - cut_at
            await asyncio.sleep(0.01)
        assert second.serving() == {"n1"}, "i2 never took the node"
        assert first.serving() == set()
        assert max(logged_in) == 1, "two instances were logged in to one node at once"
        assert 0 in logged_in  # i1 left before i2 came
        assert taken_s is not None  # (how soon is the bench's figure: `make bench`, cluster)


async def test_a_node_nobody_publishes_for_drops_out_of_the_live_views(pg_url: str) -> None:
    """Each holder's `live_nodes` row carries its node's rows to the others; a row not
    refreshed for STALE_S (its holder died, nobody took over) is no longer shown."""
    from ccrouter.db.migrate import migrate
    from ccrouter.web.cluster_live import STALE_S, ClusterLive

    engine = make_engine(pg_url)
    await migrate(engine)
    try:
        n1, n2 = ClusterLive(engine, "n1", "i1"), ClusterLive(engine, "n2", "i2")
        await n2.exchange({"calls": [{"card": "0000013"}], "queues": [], "operators": []})
        await n1.exchange({"calls": [], "queues": [], "operators": []})
        assert n1.rows("calls") == [{"card": "0000013", "node": "n2"}]
        assert n2.rows("calls") == []  # its own node's rows are not echoed back
        async with engine.begin() as conn:  # n2's holder stopped publishing STALE_S ago
            await conn.execute(sa.text("UPDATE live_nodes SET updated_at = updated_at - :s "
                                       "WHERE node = 'n2'"), {"s": STALE_S + 1})  # fmt: skip
        await n1.exchange({"calls": [], "queues": [], "operators": []})
        assert n1.rows("calls") == []
    finally:
        await engine.dispose()
