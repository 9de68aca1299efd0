"""A cluster in the test process: simulated Asterisk nodes, ccrouter instances (each a
`ClusterInstance` with its own stop event) on one real PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.proc import write_config
from ccrouter.asterisk_conf import CHANNELVARS, queuerules_conf, queues_conf
from ccrouter.cluster.runner import ClusterInstance
from ccrouter.config import AmiSettings, AsteriskSettings, NodeSettings, Settings
from ccrouter.config.cluster import ClusterSettings, InstanceSettings
from ccrouter.db.engine import make_engine
from ccrouter.sim import PbxSimulator, SimOperator
from tests.routing_stack import routing_settings
from tests.stack import wait_until

SECRET = "demo-secret"


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out to outgoing connections: a port picked above it
    could be taken as the local end of one (a database or AMI connection) between the check
    and the bind — a standby then logged `address already in use` (CI, 2026-12-04)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


_EPHEMERAL_LOW = _ephemeral_low()


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports of 127.0.0.1 (a node i is served on the
    instance's first port + i)."""
    for _ in range(200):
        base = random.randint(10_000, _EPHEMERAL_LOW - count if _EPHEMERAL_LOW > 12_000 else 60_000)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def cluster_settings(db_url: str, ami_ports: Sequence[int], agi_ports: Sequence[int], *,
                     lease_s: float = 2.0, http_ports: Sequence[int] = (),
                     **routing: Any) -> Settings:  # fmt: skip
    """The worked example's routing (every operator logged in) on nodes n1..nK, the first
    half of the operators on n1, the rest spread over the others; instances i1..iM."""
    base = routing_settings(**routing)
    names = [f"n{k + 1}" for k in range(len(ami_ports))]
    fast = {"host": "127.0.0.1", "secret": SECRET, "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.3}  # fmt: skip
    nodes = [NodeSettings(name=n, ami=AmiSettings(**{**base.ami.model_dump(), **fast,
                                                     "port": p}))
             for n, p in zip(names, ami_ports, strict=True)]  # fmt: skip
    ops = [op.model_copy(update={"logged_in": True, "node": names[k % len(names)]})
           for k, op in enumerate(base.operators)]  # fmt: skip
    http = list(http_ports) or [0] * len(agi_ports)
    instances = [InstanceSettings(name=f"i{k + 1}", host="127.0.0.1", agi_port=p,
                                  http_port=http[k])
                 for k, p in enumerate(agi_ports)]  # fmt: skip
    return base.model_copy(update={
        "operators": ops,
        "asterisk": AsteriskSettings(node=names[0], nodes=nodes),
        "cluster": ClusterSettings(instances=instances, lease_s=lease_s),
        "database": base.database.model_copy(update={"url": db_url, "commit_window_ms": 10}),
        "http": base.http.model_copy(update={"host": "127.0.0.1", "port": 0}),
        "teams": [],
    })  # fmt: skip


def one_node_two_instances(tmp_path: Path, pg_url: str, *, lease_s: float,
                           short_abandon_s: float) -> Path:  # fmt: skip
    """A `ccrouter run` config: node n1, instances a and b on PostgreSQL, one operator (op2001
    "Only" on PJSIP/2001), callbacks fast enough for a test."""
    return write_config(tmp_path, ami_port=1, db_path=tmp_path / "unused.db", overrides={
        "asterisk": {"nodes": [{"name": "n1", "ami": {"port": free_ports(1)}}]},
        "cluster": {"lease_s": lease_s, "instances": [
            {"name": n, "host": "127.0.0.1", "agi_port": free_ports(1), "http_port": 0}
            for n in ("a", "b")]},
        "database": {"url": pg_url}, "alerts": {"rules": []}, "teams": [],
        "operators": [{"id": "op2001", "name": "Only", "interface": "PJSIP/2001",
                       "logged_in": True, "skills": {"ru": 90, "wallet": 90, "general": 70}}],
        "calls": {"short_abandon_s": short_abandon_s}, "routing": {"state_poll_s": 0.2},
        "callbacks": {"pace_s": 0.0, "retry_backoff_s": [0.5], "poll_s": 0.3,
                      "ring_timeout_s": 60, "max_live_wait_s": 600.0},
    })  # fmt: skip


def daemons_logged_in(sim: PbxSimulator) -> int:
    """The AMI connections of a node's daemon logged in to it now — those that resynced
    (CoreShowChannels); a standby's connection only logs in, filters and pings."""
    return sum("CoreShowChannels" in actions for actions in sim.ami_actions())


def as_instance(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={
        "cluster": settings.cluster.model_copy(update={"instance": name})})  # fmt: skip


class Running:
    """One instance running in this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance = ClusterInstance(settings)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.instance.run(self.stop))

    def serving(self) -> set[str]:
        return {s.node for s in self.instance.slots if s.serving.is_set()}

    async def close(self) -> int:
        self.stop.set()
        return await asyncio.wait_for(self.task, 30)


async def start_sims(settings: Settings, *, time_scale: float = 40.0,
                     talk_time_s: float = 5) -> list[PbxSimulator]:  # fmt: skip
    """One simulator per node: the generated queues, that node's operators' devices, and
    FastAGI dialled at each instance in turn (the generated ccrouter-agi subroutine)."""
    sims = []
    for index, node in enumerate(settings.asterisk.nodes):
        addresses = settings.cluster.agi_addresses(node.name, index)
        sim = PbxSimulator(agi_host=addresses[0][0], agi_port=addresses[0][1],
                           username=settings.ami.username, secret=SECRET,
                           time_scale=time_scale, noise=True, channelvars=CHANNELVARS,
                           fallback_queue=settings.routing.fallback_queue or "",
                           agi_failover=addresses[1:], agi_timeout_s=5.0)  # fmt: skip
        await sim.start(port=node.ami.port)
        sim.load_queues(queues_conf(settings))
        sim.load_queuerules(queuerules_conf(settings))
        for op in settings.operators:
            if op.node == node.name:
                sim.add_operator(SimOperator(op.interface, answer_after_s=1,
                                             talk_time_s=talk_time_s))  # fmt: skip
        sims.append(sim)
    return sims


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[Any]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def rows(url: str, sql: str) -> list[Any]:
    async with database(url) as engine, engine.connect() as conn:
        return list((await conn.execute(sa.text(sql))).all())


class CuttableProxy:
    """A TCP proxy to the database: `cut()` drops every connection through it and refuses new
    ones, as a network partition between one instance and PostgreSQL does."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_w}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()



@dataclass
class CutOff:
    """One node: `first` (i1) serves it reaching PostgreSQL through `proxy`, `second` (i2)
    stands by; `proxy.cut()` partitions i1 from the database."""

    sim: PbxSimulator
    proxy: CuttableProxy
    first: Running
    second: Running


@contextlib.asynccontextmanager
async def holder_behind_a_proxy(pg_url: str) -> AsyncIterator[CutOff]:
    settings = cluster_settings(pg_url, [free_ports(1)], [free_ports(1), free_ports(1)],
                                lease_s=2.0)  # fmt: skip
    (sim,) = await start_sims(settings)
    pg_port = int(pg_url.rsplit(":", 1)[1].split("/")[0])
    proxy = CuttableProxy(pg_port)
    await proxy.start()
    via_proxy = settings.database.model_copy(update={
        "url": pg_url.replace(f":{pg_port}/", f":{proxy.port}/")})  # fmt: skip
    first = Running(as_instance(settings.model_copy(update={"database": via_proxy}), "i1"))
    second: Running | None = None
    try:
        await wait_until(lambda: first.serving() == {"n1"} and daemons_logged_in(sim) == 1, 15,
                         "i1 serves n1")  # fmt: skip
        second = Running(as_instance(settings, "i2"))
        await wait_until(lambda: second is not None and len(second.instance.slots) == 1, 10,
                         "i2 standing by")  # fmt: skip
        await asyncio.sleep(0.5)  # i2 has read who holds the node
        yield CutOff(sim, proxy, first, second)
    finally:
        if second is not None:
            await second.close()
        await first.close()
        await proxy.cut()
        await sim.close()
