"""`ccrouter sim --config FILE`: the PBX simulator alone, standing where Asterisk would.

It serves AMI on the config's `ami.host:ami.port` (user `ami.username`, secret `ami.secret` or
$CCROUTER_AMI_SECRET), dials FastAGI where the generated dialplan would (`agi.host:agi.port`),
loads the queues and queue rules `ccrouter dialplan` generates, gives every operator a phone,
and places calls at `--rate` once ccrouter has logged in to AMI. So `ccrouter run` can be tried
in another terminal exactly as against a real PBX:

    ccrouter sim --config config/ccrouter.yaml       # terminal 1
    ccrouter run --config config/ccrouter.yaml       # terminal 2 (the same secret)

One log line per call (`sim_call_ended`), a count of outcomes at the end (`sim_stopped`). The
config-reading part lives here, outside `ccrouter/sim/`, which knows only the dialplan contract.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from ccrouter.asterisk_conf import CHANNELVARS, agi_url
from ccrouter.config import Settings
from ccrouter.demo.session import build_pbx, sim_recording
from ccrouter.demo.traffic import Traffic
from ccrouter.dialplan import SCRIPT_IVR, SCRIPT_ROUTE, VAR_CARD
from ccrouter.sim import PbxSimulator, SimCall

log = structlog.get_logger(__name__)

DEFAULT_RATE = 0.5  # new calls per second: a handful to follow in the other terminal
DEFAULT_TIME_SCALE = 5.0  # simulated seconds per real second


class SimSetupError(Exception):
    """The config cannot drive the simulator; the message names the key."""


def agi_address(settings: Settings) -> tuple[str, int]:
    """Where the simulator's dialplan connects for FastAGI: the address the generated dialplan
    dials (a wildcard listen address becomes the loopback)."""
    try:
        url = urlsplit(agi_url(settings, SCRIPT_ROUTE))
    except ValueError as exc:
        raise SimSetupError(str(exc)) from None
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def make_simulator(settings: Settings, *, time_scale: float, seed: int) -> PbxSimulator:
    """A simulator configured as the config's Asterisk would be (queues, rules, phones)."""
    agi_host, agi_port = agi_address(settings)
    sim = PbxSimulator(
        agi_host=agi_host, agi_port=agi_port, username=settings.ami.username,
        secret=settings.ami.secret, time_scale=time_scale, noise=True, seed=seed,
        fallback_queue=settings.routing.fallback_queue or "fallback",
        inbound_script=SCRIPT_IVR if settings.ivr.enabled else SCRIPT_ROUTE,
        survey=settings.survey.enabled, channelvars=CHANNELVARS,
        recording=sim_recording(settings),
    )  # fmt: skip
    build_pbx(sim, settings, random.Random(seed))
    return sim


async def wait_for_login(sim: PbxSimulator, stop: asyncio.Event) -> bool:
    """Until an AMI client is logged in (True) or `stop` is set (False)."""
    while not stop.is_set():
        if sim.ami_logged_in:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    return False


async def simulate(
    settings: Settings,
    *,
    rate: float,
    duration: float | None,
    time_scale: float,
    wait: bool = True,
    seed: int = 7,
    stop: asyncio.Event | None = None,
) -> Counter[str]:
    """Serve AMI and place calls until `stop` or `duration`; the outcomes of the calls placed."""
    stop = stop or asyncio.Event()
    sim = make_simulator(settings, time_scale=time_scale, seed=seed)
    try:
        await sim.start(host=settings.ami.host, port=settings.ami.port)
    except OSError as exc:
        raise SimSetupError(
            f"ami.port: cannot listen on {settings.ami.host}:{settings.ami.port}: "
            f"{exc.strerror or exc}"
        ) from None
    outcomes: Counter[str] = Counter()
    try:
        agi_host, agi_port = agi_address(settings)
        log.info("sim_ready", ami=f"{settings.ami.host}:{sim.ami_port}",
                 ami_user=settings.ami.username, agi=f"{agi_host}:{agi_port}",
                 rate_per_s=rate, time_scale=time_scale)  # fmt: skip
        if not settings.ami.secret:
            log.warning("sim_ami_secret_empty",
                        fix="set CCROUTER_AMI_SECRET to the same value for both commands")
        if wait:
            log.info("sim_waiting_for_ccrouter", hint="ccrouter run --config <the same file>")
            if not await wait_for_login(sim, stop):
                return outcomes
        await _place_calls(sim, settings, rate, time_scale, duration, stop, outcomes)
    finally:
        await sim.close()
        log.info("sim_stopped", calls=sum(outcomes.values()), **outcomes)
    return outcomes


async def _place_calls(sim: PbxSimulator, settings: Settings, rate: float, time_scale: float,
                       duration: float | None, stop: asyncio.Event,
                       outcomes: Counter[str]) -> None:  # fmt: skip
    """Poisson arrivals at `rate` until `stop` or `duration`, one log line per ended call; then
    the calls still in progress are given a short while to end."""
    rng = random.Random(11)
    traffic = Traffic(sim, settings, rng, mean_rate=rate)  # the demo's callers, flat rate
    loop = asyncio.get_running_loop()
    end = loop.time() + duration if duration else None
    live: set[asyncio.Future[str]] = set()

    def ended(call: SimCall) -> None:
        live.discard(call.finished)
        outcome = call.outcome or "unknown"
        outcomes[outcome] += 1
        log.info("sim_call_ended", call=call.uniqueid, dialled=call.caller.dialled,
                 queue=call.queue or None, operator=call.operator or None, outcome=outcome,
                 card=call.variables.get(VAR_CARD))  # fmt: skip

    placed = 0
    while not stop.is_set():
        pause = rng.expovariate(rate)
        if end is not None and loop.time() + pause >= end:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        if stop.is_set():
            break
        call = sim.place_call(traffic.caller())
        placed += 1
        live.add(call.finished)
        call.when_finished(ended)
    if live and not stop.is_set():
        await asyncio.wait(set(live), timeout=max(10.0, 300.0 / time_scale))


def main(args: argparse.Namespace) -> int:
    """Exit codes: 0 stopped (Ctrl-C, SIGTERM, or --duration over); 1 the simulator cannot
    start (its port taken, no fixed AGI port); 2 an invalid config or argument."""
    from ccrouter.cli_support import default_config, settings_or_none
    from ccrouter.logs import configure_logging

    path = Path(args.config or default_config())
    settings = settings_or_none(path)
    if settings is None:
        print(f"{path}: invalid configuration, not starting", file=sys.stderr)
        return 2
    configure_logging(settings.log)

    async def _run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await simulate(settings, rate=args.rate or DEFAULT_RATE, duration=args.duration,
                           time_scale=args.time_scale or DEFAULT_TIME_SCALE,
                           wait=not args.no_wait, stop=stop)
        except SimSetupError as exc:
            log.error("sim_start_failed", error=str(exc))
            return 1
        return 0

    return asyncio.run(_run())
