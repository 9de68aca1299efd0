"""One demo run: the PBX simulator started first (AMI on a free port), ccrouter pointed at it
exactly as it would be at a real Asterisk (queues and operators built from the same config),
a fresh database, tokens for the wallboard and an operator page, the day's traffic, a live
status, and at the end the per-queue table and the HTML report."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import structlog

from ccrouter.app import App, default_features
from ccrouter.asterisk_conf import CHANNELVARS, queuerules_conf, queues_conf
from ccrouter.config import Settings
from ccrouter.db.engine import make_engine
from ccrouter.demo import day as day_
from ccrouter.demo.html import report_html
from ccrouter.demo.report import RunReport, run_report, table_text
from ccrouter.demo.status import show
from ccrouter.demo.traffic import Traffic
from ccrouter.dialplan import SCRIPT_IVR, SCRIPT_ROUTE
from ccrouter.ivr.feature import install as ivr_install
from ccrouter.ivr.incidents import IncidentService
from ccrouter.recordings.model import EXTENSIONS
from ccrouter.runtime import Feature
from ccrouter.sim import PbxSimulator, SimOperator, SimPhone, SimTransfer
from ccrouter.sim.recording import SimRecording
from ccrouter.web.auth import Role, TokenStore
from ccrouter.web.feature import WebFeature
from ccrouter.web.feature import install as web_install
from ccrouter.wiring import demo_figures

log = structlog.get_logger(__name__)

DEMO_SECRET = "demo-secret"
DEFAULT_RATE = 2.0  # new calls per real second (the day's mean)
DEFAULT_TIME_SCALE = 10.0  # simulated seconds per real second: a 60 s conversation takes 6 s
DEFAULT_DAY_S = 300.0  # how long the day lasts without --duration
DEMO_SUPERVISOR = "demo wallboard"
"""The name of the wallboard token the demo prints (a supervisor's)."""
DEMO_SUPERVISOR_PHONE = "PJSIP/100"
"""The phone that supervisor listens in on (qc.spy.devices), a phone of the simulator."""


@dataclass(frozen=True, slots=True)
class Options:
    config: Path
    data_dir: Path
    duration: float | None
    rate: float = DEFAULT_RATE
    time_scale: float = DEFAULT_TIME_SCALE
    day: bool = True
    real_hours: bool = False
    http_port: int | None = None
    keep: bool = False

    @property
    def db_path(self) -> Path:
        return self.data_dir / "ccrouter-demo.db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "ccrouter-demo.log"

    @property
    def report_path(self) -> Path:
        return self.data_dir / "ccrouter-demo-report.html"


def open_all_lines(settings: Settings) -> Settings:
    """Every product line open around the clock (the demo without a day: whole caller journeys
    whatever the hour)."""
    hours = {line: h.model_copy(update={"always_open": True}) for line, h in settings.hours.items()}
    return settings.model_copy(update={"hours": hours})


def demo_extras(settings: Settings, data_dir: Path) -> Settings:
    """What the demo shows even when the config leaves it off: every answered call recorded
    (into `<data>/recordings`, where the simulator writes a short WAV file per answered call),
    and a phone for the demo's supervisor to listen in on live calls."""
    update: dict[str, Any] = {}
    if not settings.recordings.enabled:
        where = str((data_dir / "recordings").resolve())
        update["recordings"] = settings.recordings.model_copy(update={
            "enabled": True, "targets": [], "products": [], "directory": where,
            "read_directory": where, "announcement": None})  # fmt: skip
    spy = settings.qc.spy
    if DEMO_SUPERVISOR not in spy.devices:
        devices = {**spy.devices, DEMO_SUPERVISOR: DEMO_SUPERVISOR_PHONE}
        update["qc"] = settings.qc.model_copy(
            update={"spy": spy.model_copy(update={"devices": devices})})
    return settings.model_copy(update=update)


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


def run_settings(settings: Settings, ami_port: int, opts: Options) -> Settings:
    """The demo run's settings: the simulator, the demo's database, the wallboard's port; every
    line open without a day (unless --real-hours)."""
    out = demo_settings(settings, ami_port, f"sqlite+aiosqlite:///{opts.db_path.resolve()}")
    if opts.http_port is not None:
        out = out.model_copy(update={"http": out.http.model_copy(update={"port": opts.http_port})})
    return out if opts.day or opts.real_hours else open_all_lines(out)


def fresh_database(opts: Options) -> None:
    """A new database each run (card numbers and open cards do not carry over), unless --keep."""
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    if not opts.keep:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{opts.db_path}{suffix}").unlink(missing_ok=True)
        for old in (opts.data_dir / "recordings").glob("ccrouter-*"):  # demo_extras' files
            old.unlink(missing_ok=True)


def day_clock(settings: Settings, opts: Options, t0: float) -> day_.DayClock | None:
    if not opts.day:
        return None
    closed = [d for h in settings.hours.values() for d in h.holidays]
    date = day_.demo_date(dt.date.today(), closed)
    return day_.DayClock(t0, opts.duration or DEFAULT_DAY_S,
                         day_.day_start(date, settings.reports.timezone))


def sim_recording(settings: Settings) -> SimRecording | None:
    """The simulator records what the generated ccrouter-queue would (`recordings:`), writing
    its files where ccrouter reads them (the simulator runs on this machine)."""
    rec = settings.recordings
    if not rec.enabled:
        return None
    queues = frozenset(settings.target(t).queue_name for t in rec.targets)
    return SimRecording(rec.directory, EXTENSIONS[rec.format], queues, frozenset(rec.products),
                        write_directory=rec.read_directory or rec.directory)  # fmt: skip


DEMO_TRANSFER_SHARE = 0.15
"""Of the calls answered by an operator without the last line's product, the share they
transfer (blind) to that line, so the demo shows transfer cards."""


def demo_transfer(settings: Settings) -> tuple[str, SimTransfer] | None:
    """The last product line (by its DID) and a blind transfer to it, for the operators who do
    not serve it (who would not take the call back themselves)."""
    lines = sorted(settings.routing.did.items())
    if not lines:
        return None
    did, product = lines[-1]
    return product, SimTransfer("blind", did, after_s=15, share=DEMO_TRANSFER_SHARE)


def build_pbx(sim: PbxSimulator, settings: Settings, rng: random.Random) -> None:
    """The simulator gets the queues and queue rules ccrouter generates for Asterisk, and one
    phone per operator and per supervisor (qc.spy.devices); queue members come from ccrouter
    itself (membership sync over AMI)."""
    sim.load_queuerules(queuerules_conf(settings))
    sim.load_queues(queues_conf(settings))
    line = demo_transfer(settings)
    for op in settings.operators:
        plan = line[1] if line is not None and line[0] not in op.skills else None
        sim.add_operator(
            SimOperator(interface=op.interface, answer_after_s=rng.uniform(1, 4),
                        talk_time_s=rng.uniform(20, 90), transfer=plan)
        )
    for device in sorted(set(settings.qc.spy.devices.values())):
        sim.add_phone(SimPhone(device, answer_after_s=rng.uniform(1, 3)))


def features(clock: day_.DayClock | None, web: WebFeature) -> Sequence[Feature]:
    """The daemon's features, with the demo's web site (its bound port, its config file for
    reload) and, in a day, the IVR on the day's clock (business hours follow the day)."""
    out: list[Feature] = []
    for f in default_features():
        if f is web_install:
            out.append(web)
        elif f is ivr_install and clock is not None:
            out.append(functools.partial(ivr_install, clock=day_now(clock)))
        else:
            out.append(f)
    return out


def day_now(clock: day_.DayClock) -> Callable[[], float]:
    """Now, on the day's clock."""
    return lambda: clock.sim(time.time())


async def log_everybody_in(app: App) -> None:
    """Demo operators start their shift: the routing feature adds them to their queues."""
    if app.operators is None:
        return
    for op_id in app.operators.ids:
        await app.operators.login(op_id, by="demo")


async def print_urls(app: App, web: WebFeature, opts: Options, out: TextIO) -> None:
    tokens = TokenStore(app.engine)
    sup, _ = await tokens.create(DEMO_SUPERVISOR, Role.SUPERVISOR)
    admin, _ = await tokens.create("demo admin", Role.ADMIN)
    op = app.settings.operators[0] if app.settings.operators else None
    host, port = web.address
    base = f"http://{host}:{port}"
    print(f"wallboard:     {base}/wallboard#token={sup}", file=out)
    if op is not None:
        op_token, _ = await tokens.create(f"demo {op.id}", Role.OPERATOR, operator=op.id)
        print(f"operator page: {base}/operator#token={op_token}   ({op.id}, {op.name})",
              file=out)
    print(f"admin token:   {admin}   (POST {base}/api/v1/admin/reload re-reads {opts.config})",
          file=out)
    print(f"database:      {opts.db_path}", file=out)
    print(f"log:           {opts.log_path}" + ("" if opts.keep else "   (fresh each run)"),
          file=out, flush=True)


async def day_events(app: App, clock: day_.DayClock, stop: asyncio.Event) -> None:
    """At 11:00 an incident is announced on the wallet line for an hour of the day."""
    start, end = clock.hour_window(day_.INCIDENT_HOUR)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, start - time.time()))
        return
    products = ["wallet"] if "wallet" in app.settings.products else []
    incident = await IncidentService(app.engine, app.settings.products).set(
        products=products, prompt="ccrouter/incident", created_by="demo",
        text="Wallet top-ups are delayed; we are working on it", duration_s=end - start)
    log.info("demo_incident", id=incident.id, products=products)


async def run_demo(settings: Settings, opts: Options, stop: asyncio.Event, out: TextIO
                   ) -> tuple[RunReport, dict[str, int]]:  # fmt: skip
    rng = random.Random(7)
    fresh_database(opts)
    settings = demo_extras(settings, opts.data_dir)
    since = time.time()
    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=0, username=settings.ami.username,
                       secret=DEMO_SECRET, time_scale=opts.time_scale, noise=True, seed=7,
                       inbound_script=SCRIPT_IVR if settings.ivr.enabled else SCRIPT_ROUTE,
                       survey=settings.survey.enabled, channelvars=CHANNELVARS,
                       recording=sim_recording(settings))  # fmt: skip
    await sim.start(host="127.0.0.1", port=0)
    build_pbx(sim, settings, rng)
    clock = day_clock(settings, opts, since)
    web = WebFeature(config_path=opts.config.resolve())
    app = App(run_settings(settings, sim.ami_port, opts), features=features(clock, web))
    tasks: list[asyncio.Task[None]] = []
    traffic = Traffic(sim, settings, rng, opts.rate, clock)
    try:
        await app.start()
        sim.agi_port = app.agi_address[1]
        await log_everybody_in(app)
        await print_urls(app, web, opts, out)
        until = None if opts.duration is None and clock is None else (
            since + (opts.duration or (clock.length_s if clock else 0)))  # fmt: skip
        status_stop = asyncio.Event()
        label = (lambda: clock.label(time.time())) if clock else (
            lambda: f"+{time.time() - since:.0f}s")  # fmt: skip
        tasks.append(asyncio.create_task(show(app, since, label, status_stop, out,
                                              demo_figures())))  # fmt: skip
        if clock is not None:
            tasks.append(asyncio.create_task(day_events(app, clock, stop)))
        await traffic.run(until, stop, time.time)
        await drain(app, traffic, stop, max(5.0, 150.0 / opts.time_scale))
        status_stop.set()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writes = app.writer.stats.rows_written if hasattr(app, "writer") else 0
        await app.stop()
        await sim.close()
    until_t = time.time()
    engine = make_engine(f"sqlite+aiosqlite:///{opts.db_path.resolve()}")
    try:  # read back from the database as the run left it: the table is what the rows say
        report = await run_report(engine, settings, since, until_t + 1, clock, demo_figures())
        outcomes = await card_outcomes(engine, since)
    finally:
        await engine.dispose()
    summary = {"cards": sum(outcomes.values()), **outcomes,
               "card_writes": writes, "repeat_callers": traffic.repeats}
    return report, summary


async def drain(app: App, traffic: Traffic, stop: asyncio.Event, limit_s: float) -> None:
    """Let the last callers finish (at most `limit_s`; Ctrl-C: at once): until every placed
    call is over and ccrouter holds no call in progress."""
    deadline = time.monotonic() + limit_s
    while not stop.is_set() and time.monotonic() < deadline:
        if all(c.finished.done() for c in traffic.calls) or not app.tracker.book.views():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def card_outcomes(engine: Any, since: float) -> dict[str, int]:
    """Cards of this run by outcome (one card per call: the number of card rows)."""
    import sqlalchemy as sa

    from ccrouter.db.tables import cards

    async with engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(cards.c.outcome, sa.func.count()).where(cards.c.started_at >= since)
            .group_by(cards.c.outcome)
        )).all()  # fmt: skip
    return {str(outcome or "in_progress"): int(n) for outcome, n in sorted(
        rows, key=lambda r: str(r[0] or ""))}  # fmt: skip


def write_report(report: RunReport, settings: Settings, opts: Options, clock_day: bool,
                 summary: dict[str, int]) -> None:  # fmt: skip
    facts = [f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()]
    if clock_day:
        facts.insert(0, "a day 08:00-20:00 played in " + (
            f"{opts.duration:g} s" if opts.duration else f"{DEFAULT_DAY_S:g} s"))  # fmt: skip
    opts.report_path.write_text(report_html(
        report, title="ccrouter demo: the day's calls", target_sl=settings.reports.target_sl,
        facts=facts), encoding="utf-8")  # fmt: skip


def print_final(report: RunReport, summary: dict[str, int], opts: Options, out: TextIO) -> None:
    print("\n== ccrouter demo: per queue ==", file=out)
    print(table_text(report), file=out)
    print("\n== cards of this run ==", file=out)
    for key, value in summary.items():
        print(f"  {key:>16}: {value}", file=out)
    print(f"\nreport: {opts.report_path}", file=out, flush=True)
