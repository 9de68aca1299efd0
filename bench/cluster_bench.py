"""Lease takeover: how long a node has no ccrouter after its holder is SIGKILLed.

One simulated Asterisk node, two `ccrouter run` processes of one cluster on a real
PostgreSQL (started here, as the tests do). `kills` times: SIGKILL the holder, time until
another instance holds the lease (the row, polled every 20 ms) and until it serves again
(logged in to the node's AMI: members resynced, FastAGI listening), then start the killed
instance again as the standby (systemd's Restart=on-failure). Figures: p50/p99/max of both,
against `cluster.lease_s`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proc import Daemon, write_config
from bench.stats import percentile

LEASE_S = 2.0


async def measure(kills: int = 20, progress: Any = None) -> dict[str, Any]:
    from ccrouter.cluster.lease import lease_table
    from ccrouter.config import load_settings
    from ccrouter.db.engine import make_engine
    from ccrouter.db.migrate import migrate
    from tests.cluster_stack import as_instance, free_ports, start_sims
    from tests.pg import PgServer

    server = PgServer.start()
    moved: list[float] = []
    serving: list[float] = []
    try:
        url = await server.database()
        with tempfile.TemporaryDirectory() as tmp:
            cfg = write_config(Path(tmp), ami_port=1, db_path=Path(tmp) / "unused.db", overrides={
                "asterisk": {"nodes": [{"name": "n1", "ami": {"port": free_ports(1)}}]},
                "cluster": {"lease_s": LEASE_S, "instances": [
                    {"name": n, "host": "127.0.0.1", "agi_port": free_ports(1), "http_port": 0}
                    for n in ("a", "b")]},
                "database": {"url": url}, "alerts": {"rules": []}, "teams": [],
            })  # fmt: skip
            settings = as_instance(load_settings(cfg, environ={}), "a")
            (sim,) = await start_sims(settings)
            engine = make_engine(url)
            await migrate(engine)
            running: dict[str, Any] = {}

            async def start(name: str) -> None:
                cm = Daemon.start(cfg, env={"CCROUTER_INSTANCE": name})
                running[name] = (cm, await cm.__aenter__())

            async def holder() -> tuple[str, int] | None:
                for lease in await lease_table(engine):
                    if lease.expires_in_s > 0:
                        return lease.holder, lease.term
                return None

            try:
                await start("a")
                while await holder() is None or not sim.ami_logged_in:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await start("b")
                await asyncio.sleep(1.0)
                for i in range(kills):
                    held = await holder()
                    assert held is not None
                    name, term = held
                    cm, daemon = running.pop(name)
                    daemon.kill()
                    killed = time.monotonic()
                    while (now := await holder()) is None or now[1] == term:  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                    moved.append(time.monotonic() - killed)
                    await running[now[0]][1].wait_log("ami_resynced", timeout=30)
                    serving.append(time.monotonic() - killed)
                    await cm.__aexit__(None, None, None)
                    await start(name)  # the standby again
                    await asyncio.sleep(0.5)
                    if progress is not None:
                        progress.step(i + 1)
            finally:
                for cm, _ in running.values():
                    await cm.__aexit__(None, None, None)
                await sim.close()
                await engine.dispose()
    finally:
        server.stop()

    def ms(values: list[float], q: float) -> float:
        return round(percentile(sorted(values), q) * 1000, 1)

    return {
        "kills": kills, "lease_s": LEASE_S,
        "moved_p50_ms": ms(moved, 50), "moved_p99_ms": ms(moved, 99),
        "moved_max_ms": round(max(moved) * 1000, 1),
        "serving_p50_ms": ms(serving, 50), "serving_p99_ms": ms(serving, 99),
        "serving_max_ms": round(max(serving) * 1000, 1),
        "within_lease": max(moved) <= LEASE_S,
    }  # fmt: skip



if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20)),
                     indent=2))  # fmt: skip
