"""Every instance answers every node's FastAGI port (issue 13: "each instance serves FastAGI
for any node"): one that does not hold the node sends a call on to the holder when the holder
comes later in the order Asterisk tries, and holds it until it serves the node itself when the
holder before it did not answer — so a call that arrives while the lease moves is routed, with
its card, instead of going to the static fallback. Real PostgreSQL, simulated nodes, ccrouter
instances in this process."""

from __future__ import annotations

import asyncio
import time

import pytest

from ccrouter.cluster.model import UNKNOWN, standby_verdict
from ccrouter.cluster.standby import StandbyPort
from ccrouter.dialplan import VAR_AGI_NEXT, VAR_AGI_ROUND, VAR_CARD
from ccrouter.sim import SimCall, SimCaller
from tests.cluster_stack import (
    Running,
    as_instance,
    cluster_settings,
    free_ports,
    holder_behind_a_proxy,
    rows,
    start_sims,
)
from tests.stack import wait_until

WALLET = "712000100"
ORDER = ["i1", "i2", "i3"]


@pytest.mark.parametrize(("me", "holder", "verdict"), [
    ("i2", "i1", "park"),  # the holder was tried first and did not answer: likely dead
    ("i2", "i3", "next"),  # the holder comes next: Asterisk reaches it
    ("i2", None, "park"),  # nobody holds the node: this instance may take it
    ("i2", "i2", "park"),  # this instance holds it and its daemon is starting
    ("i2", UNKNOWN, "next"),  # the database is away: this instance cannot take the node
    ("i1", "i9", "park"),  # a holder the order does not name (config changed): hold
])  # fmt: skip
def test_standby_verdict(me: str, holder: str | None, verdict: str) -> None:
    assert standby_verdict(ORDER, me, holder) == verdict


async def answered_with_cards(calls: list[SimCall], db_url: str) -> list[str]:
    await asyncio.wait_for(asyncio.gather(*(c.finished for c in calls)), 30)
    assert [c.outcome for c in calls] == ["answered"] * len(calls), [
        (c.outcome, c.agi_status, c.agi_commands) for c in calls]
    told = [c.variables.get(VAR_CARD, "") for c in calls]
    cards = {r.number: r.node for r in await rows(db_url, "SELECT number, node FROM cards")}
    assert all(told) and {cards.get(n) for n in told} == {"n1"}, (told, cards)
    return told


async def test_a_standby_before_the_holder_sends_calls_on(pg_url: str) -> None:
    settings = cluster_settings(pg_url, [free_ports(1)], [free_ports(1), free_ports(1)])
    (sim,) = await start_sims(settings)  # the node tries i1, then i2
    holder = Running(as_instance(settings, "i2"))
    standby: Running | None = None
    try:
        await wait_until(lambda: holder.serving() == {"n1"}, 15, "i2 serves n1")
        standby = Running(as_instance(settings, "i1"))
        await wait_until(lambda: standby is not None and len(standby.instance.slots) == 1, 10,
                         "i1 standing by")  # fmt: skip
        await asyncio.sleep(0.5)  # i1 has read who holds the node
        calls = [sim.place_call(SimCaller(f"7900100{k:04d}", dialled=WALLET)) for k in range(4)]
        await answered_with_cards(calls, pg_url)
        port = standby.instance.slots[0].port
        assert port.sent_on == len(calls) and port.held_total == 0
        assert standby.serving() == set()
        # the last session of each call was the holder's; the standby only asked the round
        # and set the send-on flag, so nothing of it reached the routing
        assert all(c.variables.get(VAR_AGI_NEXT) == "" for c in calls)
        assert all(c.variables.get(VAR_AGI_ROUND) == "1" for c in calls)
    finally:
        if standby is not None:
            await standby.close()
        await holder.close()
        await sim.close()


async def test_calls_while_the_lease_moves_are_held_and_served_by_the_next_holder(
    pg_url: str,
) -> None:
    """i1 (first in the order) is cut off from PostgreSQL: it stops serving by itself, and its
    port sends calls on (it cannot take the node); i2 holds them — the holder before it did
    not serve — until it has the lease and its daemon is up, then routes them: every call
    placed in the gap is answered with a card, none goes to the fallback queue."""
    async with holder_behind_a_proxy(pg_url) as c:
        sim, first, second = c.sim, c.first, c.second
        await c.proxy.cut()
        await wait_until(lambda: first.serving() == set(), 10, "i1 stops serving")
        calls: list[SimCall] = []
        in_gap = 0  # placed while nobody served the node
        until: float | None = None
        while until is None or time.monotonic() < until:  # every 50 ms until 0.5 s after
            in_gap += until is None
            calls.append(sim.place_call(SimCaller(f"7900200{len(calls):04d}", dialled=WALLET,
                                                  patience_s=600)))
            if until is None and second.serving() == {"n1"}:
                until = time.monotonic() + 0.5
            await asyncio.sleep(0.05)
        await answered_with_cards(calls, pg_url)
        assert in_gap >= 2
        # i1 answered the calls (but in the instant its port passed from its daemon back to
        # its standby) and sent them on: it cannot take the node without the database
        assert first.instance.slots[0].port.sent_on >= len(calls) - 1
        # (i2 held those that came before it had the lease; those that came while its daemon
        # started waited in the listening socket's backlog, already handed to the daemon)


HEADER = b"agi_network: yes\nagi_network_script: route\nagi_uniqueid: 1.1\n\n"


class Holder:
    """The lease holder a standby port believes in; tests change it."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def __call__(self) -> str | None:
        return self.name


async def open_port(holder: Holder, park_s: float = 5.0) -> tuple[StandbyPort, int]:
    port_no = free_ports(1)
    port = StandbyPort("127.0.0.1", port_no, order=ORDER, me="i2", holder=holder,
                       park_s=park_s, header_timeout_s=2.0)  # fmt: skip
    port.open()
    return port, port_no


async def asterisk_side(port_no: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect as Asterisk's AGI() does and send the header."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_no)
    writer.write(HEADER)
    return reader, writer


async def next_line(reader: asyncio.StreamReader, timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(reader.readline(), timeout)


async def test_a_held_call_is_sent_on_when_a_later_instance_takes_the_node() -> None:
    holder = Holder("i1")  # before i2: it was tried and did not answer
    port, port_no = await open_port(holder)
    try:
        reader, writer = await asterisk_side(port_no)
        await wait_until(lambda: port.held_total == 1, 2, "held")
        with pytest.raises(TimeoutError):  # held: no command is sent
            await next_line(reader, 0.3)
        holder.name = "i3"  # a later instance took the node: Asterisk reaches it next
        assert await next_line(reader) == f"SET VARIABLE {VAR_AGI_NEXT} 1\n".encode()
        writer.write(b"200 result=1\n")
        assert await next_line(reader) == b""  # then the port closes: AGI() returns
        assert port.sent_on == 1
        writer.close()
    finally:
        await port.close()


async def test_a_held_call_is_sent_on_after_park_s() -> None:
    port, port_no = await open_port(Holder(None), park_s=0.3)  # nobody holds the node
    try:
        reader, writer = await asterisk_side(port_no)
        await wait_until(lambda: port.held_total == 1, 2, "held")
        started = time.monotonic()
        assert await next_line(reader) == f"SET VARIABLE {VAR_AGI_NEXT} 1\n".encode()
        assert time.monotonic() - started >= 0.2  # not at once: after park_s
        writer.close()
    finally:
        await port.close()


@pytest.mark.parametrize(("round_", "held"), [("1", False), ("2", True)])
async def test_a_standby_before_the_holder_asks_the_round(round_: str, held: bool) -> None:
    """The holder comes later: in round 1 the call is sent on; in round 2 (round 1 found
    nobody serving, so that holder did not answer) it is held."""
    port, port_no = await open_port(Holder("i3"))
    try:
        reader, writer = await asterisk_side(port_no)
        assert await next_line(reader) == f"GET VARIABLE {VAR_AGI_ROUND}\n".encode()
        writer.write(f"200 result=1 ({round_})\n".encode())
        if held:
            await wait_until(lambda: port.held_total == 1, 2, "held")
            (call,) = port.take_held()
            assert call.received == HEADER  # what the daemon reads: the header, not the reply
            call.sock.close()
        else:
            assert await next_line(reader) == f"SET VARIABLE {VAR_AGI_NEXT} 1\n".encode()
            assert port.held_total == 0
        writer.close()
    finally:
        await port.close()
