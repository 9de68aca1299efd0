"""`ccrouter demo`: the daemon against the built-in PBX simulator, a stream of calls, a summary.

The simulator is started first (AMI on a free port), ccrouter is pointed at it exactly as it
would be at a real Asterisk, and the simulator's queues and operators are built from the same
config. Runs until Ctrl-C or `--duration` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from ccrouter.app import App, run
from ccrouter.asterisk_conf import CHANNELVARS, queuerules_conf, queues_conf
from ccrouter.config import Settings
from ccrouter.dialplan import SCRIPT_IVR, SCRIPT_ROUTE
from ccrouter.logs import configure_logging
from ccrouter.sim import PbxSimulator, SimCall, SimCaller, SimOperator

log = structlog.get_logger(__name__)

DEMO_SECRET = "demo-secret"


def open_all_lines(settings: Settings) -> Settings:
    """Every product line open around the clock: the demo shows whole caller journeys whatever
    the hour (`ccrouter demo --real-hours` keeps the configured hours)."""
    hours = {line: h.model_copy(update={"always_open": True}) for line, h in settings.hours.items()}
    return settings.model_copy(update={"hours": hours})


def demo_settings(settings: Settings, ami_port: int, db_url: str | None = None) -> Settings:
    """The config, pointed at the simulator (and, when given, at another database)."""
    update: dict[str, Any] = {
        "ami": settings.ami.model_copy(
            update={"host": "127.0.0.1", "port": ami_port, "secret": DEMO_SECRET}
        ),
        "agi": settings.agi.model_copy(update={"host": "127.0.0.1", "port": 0}),
    }
    if db_url:
        update["database"] = settings.database.model_copy(update={"url": db_url})
    return settings.model_copy(update=update)


def build_pbx(sim: PbxSimulator, settings: Settings, rng: random.Random) -> None:
    """The simulator gets the queues and queue rules ccrouter generates for Asterisk, and one
    phone per operator; queue members come from ccrouter itself (membership sync over AMI)."""
    sim.load_queuerules(queuerules_conf(settings))
    sim.load_queues(queues_conf(settings))
    for op in settings.operators:
        sim.add_operator(
            SimOperator(interface=op.interface, answer_after_s=rng.uniform(1, 4),
                        talk_time_s=rng.uniform(20, 90))
        )


async def log_everybody_in(app: App) -> None:
    """Demo operators start their shift: the routing feature adds them to their queues."""
    if app.operators is None:
        return
    for op_id in app.operators.ids:
        await app.operators.login(op_id, by="demo")


def caller_factory(settings: Settings, rng: random.Random) -> Any:
    dids = list(settings.routing.did) or ["2000"]

    def make(_i: int) -> SimCaller:
        return SimCaller(
            number="7" + "".join(rng.choice("0123456789") for _ in range(10)),
            name="Demo caller",
            dialled=rng.choice(dids),
            patience_s=rng.uniform(5, 120),
            dtmf=ivr_answers(settings, rng),
        )

    return make


def ivr_answers(settings: Settings, rng: random.Random) -> tuple[str, ...]:
    """A demo caller's keys for the example IVR: language, main menu, request number prompt,
    then a survey rating (some press nothing or a wrong key, as callers do)."""
    if not settings.ivr.enabled:
        return ()
    language = rng.choice(["1", "1", "2", "3", "", "7"])
    main = rng.choice(["1", "1", "2", "2", "0", "4", "3"])
    after = {"3": rng.choice(["40123456#", "77123456#", "99999#"])}.get(main, "")
    request = rng.choice(["2", "", "1"])
    card = "1234567#" if request == "1" else ""  # a mistyped request number
    rating = rng.choice(["5", "5", "4", "3", "1", ""])
    return tuple(k for k in (language, main, after, request, card, rating) if k) or ("",)


async def demo(
    settings: Settings,
    *,
    duration: float | None,
    rate: float,
    time_scale: float,
    db_url: str | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, int]:
    rng = random.Random(7)
    stop = stop or asyncio.Event()
    since = time.time()
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, username=settings.ami.username,
                       secret=DEMO_SECRET, time_scale=time_scale, noise=True, seed=7,
                       inbound_script=SCRIPT_IVR if settings.ivr.enabled else SCRIPT_ROUTE,
                       survey=settings.survey.enabled, channelvars=CHANNELVARS)  # fmt: skip
    await sim.start(host="127.0.0.1", port=0)
    build_pbx(sim, settings, rng)
    app = App(demo_settings(settings, sim.ami_port, db_url))
    await app.start()
    sim.agi_port = app.agi_address[1]
    await log_everybody_in(app)
    calls: list[SimCall] = []
    try:
        load = asyncio.create_task(
            sim.run_load(rate_per_s=rate, duration_s=duration or 10**9,
                         caller_factory=caller_factory(settings, rng))
        )
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({load, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if load.done():
            calls = load.result()
            await asyncio.wait_for(
                asyncio.gather(*(c.finished for c in calls), return_exceptions=True),
                timeout=max(10.0, 200.0 / time_scale),
            )
        else:
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load
    finally:
        await app.writer.flush()
        summary = await summarize(app, since)
        await app.stop()
        await sim.close()
    return summary


async def summarize(app: App, since: float) -> dict[str, int]:
    """Cards of this run by outcome."""
    from sqlalchemy import func, select

    from ccrouter.db.tables import cards

    async with app.engine.connect() as conn:
        rows = (await conn.execute(
            select(cards.c.outcome, func.count())
            .where(cards.c.started_at >= since)
            .group_by(cards.c.outcome)
        )).all()  # fmt: skip
    counts = Counter({str(outcome or "in progress"): int(n) for outcome, n in rows})
    return {"cards": sum(counts.values()), **counts}


DEFAULT_RATE = 2.0  # new calls per second
DEFAULT_TIME_SCALE = 10.0  # simulated seconds per real second: a 60 s conversation takes 6 s


def main(args: argparse.Namespace) -> int:
    from ccrouter.cli_support import default_config
    from ccrouter.config import load_settings

    settings = load_settings(Path(args.config or default_config()))
    if not getattr(args, "real_hours", False):
        settings = open_all_lines(settings)
    configure_logging(settings.log.model_copy(update={"format": "console"}))

    async def _run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        summary = await demo(settings, duration=args.duration, rate=args.rate or DEFAULT_RATE,
                             time_scale=args.time_scale or DEFAULT_TIME_SCALE, stop=stop)
        print("\n== ccrouter demo summary ==")
        for key, value in summary.items():
            print(f"  {key:>16}: {value}")
        return 0

    return run(_run())
