"""`PbxSimulator`: the public face — configuration, calls, load, faults, introspection."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import replace

import structlog

from ccrouter import dialplan as dp

from . import events as ev
from .actions import Actions, OriginateRequest
from .ami import AmiServer
from .callback_leg import operator_first_leg
from .calls import LiveCall, OriginateInfo, cancel_quietly
from .core import INUSE, NOT_INUSE, Core, SimOptions
from .engine import QueueEngine
from .model import LostCallerBlock, Member, SimCall, SimCaller, SimCustomer, SimOperator
from .queues import QueueConfig, SimQueue
from .rules import parse_conf_sections, parse_queuerules

log = structlog.get_logger(__name__)


class PbxSimulator:
    """An Asterisk 22 stand-in: AMI server, FastAGI client, queues, operators and callers."""

    def __init__(
        self,
        agi_host: str = "127.0.0.1",
        agi_port: int = dp.AGI_DEFAULT_PORT,
        username: str = "ccrouter",
        secret: str = "lab-secret",
        time_scale: float = 1.0,
        noise: bool = True,
        seed: int = 0,
        *,
        fallback_queue: str = "fallback",
        login_fail_delay_s: float = 1.0,
        prompt_s: float = 0.0,
        agi_timeout_s: float = 10.0,
        inbound_script: str = dp.SCRIPT_ROUTE,
        survey: bool = False,
        channelvars: tuple[str, ...] = (),
        lost_caller_block: LostCallerBlock | None = None,
    ) -> None:
        """`channelvars`: manager.conf's `channelvars` (channel variables every channel
        snapshot in an event reports as `ChanVariable: NAME=value`); none by default.
        `lost_caller_block`: how often a call that ends within a second of AgentConnect gets an
        AgentComplete without the caller's channel block (default: the rates a real Asterisk
        22 showed)."""
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        opts = SimOptions(agi_host, agi_port, time_scale, noise, fallback_queue, prompt_s,
                          agi_timeout_s, inbound_script, survey, tuple(channelvars))
        self._started = time.time()
        self._ami = AmiServer(username, secret, self._handle_action, login_fail_delay_s,
                              lambda: int(time.time() - self._started))
        self._core = Core(opts, self._ami, seed)
        self._engine = QueueEngine(self._core, lost_caller_block, seed)
        self._actions = Actions(self._core, self._engine, self._originate, self._started)
        self._tasks: set[asyncio.Task[None]] = set()
        self._customers: dict[str, SimCustomer] = {}
        self._cues: dict[str, asyncio.Event] = {}
        self.originated: list[OriginateRequest] = []
        """Every Originate action received (tests count dials with it)."""
        self.customer_calls: list[SimCall] = []
        """Originated customer legs that answered, in order."""
        self.booted_at: float | None = None
        """Loop time of the last `FullyBooted` sent after a `restart(boot_s=...)`."""
        self._boot_timer: asyncio.TimerHandle | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._core.loop_t0 = asyncio.get_running_loop().time()
        await self._ami.start(host, port)
        log.info("sim.started", ami_port=self._ami.port, agi_port=self._core.opt.agi_port)

    @property
    def ami_port(self) -> int:
        return self._ami.port

    @property
    def agi_port(self) -> int:
        """Where the dialplan's AGI() connects; settable once ccrouter has bound its port."""
        return self._core.opt.agi_port

    @agi_port.setter
    def agi_port(self, port: int) -> None:
        self._core.opt = dataclasses.replace(self._core.opt, agi_port=port)

    async def close(self) -> None:
        if self._boot_timer is not None:
            self._boot_timer.cancel()
        await cancel_quietly(list(self._tasks))
        self._engine.reset()
        await self._ami.close()

    # -- configuration ---------------------------------------------------------------------
    def add_queue(self, name: str, strategy: str = "rrmemory", timeout: int = 15, retry: int = 1,
                  wrapuptime: int = 0, joinempty: bool = True, defaultrule: str = "",
                  **extra: int) -> None:  # fmt: skip
        if name in self._core.queues:
            raise ValueError(f"queue {name!r} already exists")
        cfg = QueueConfig(name, strategy, timeout, retry, wrapuptime, joinempty, **extra,
                          defaultrule=defaultrule)  # fmt: skip
        self._core.queues[name] = SimQueue(cfg)

    def load_queuerules(self, text: str) -> None:
        """queuerules.conf text (e.g. ccrouter's generated file): `penaltychange` rules, used
        by queues whose `defaultrule` names them (see rules.py)."""
        self._core.queue_rules.update(parse_queuerules(text))

    def load_queues(self, text: str) -> list[str]:
        """queues.conf text (e.g. ccrouter's generated file): add its queues; their names.
        joinempty: with `paused` (or no/strict) a queue without an unpaused member refuses
        callers; other conditions are moot here (simulated members are never unavailable,
        invalid or unknown; a queue with no member at all still takes callers)."""
        names = []
        for name, opts in parse_conf_sections(text):
            self.add_queue(
                name, strategy=opts.get("strategy", "ringall"),
                timeout=int(opts.get("timeout", 15)), retry=int(opts.get("retry", 5)),
                wrapuptime=int(opts.get("wrapuptime", 0)),
                joinempty=not ({"paused", "no", "strict"}
                               & set(opts.get("joinempty", "yes").lower().split(","))),
                defaultrule=opts.get("defaultrule", ""),
            )  # fmt: skip
            names.append(name)
        for name, line in _member_lines(text, names):  # `member =>`: static members
            interface, penalty, member_name, *_ = [*(f.strip() for f in line.split(",")), "", ""]
            self.add_member(name, interface, name=member_name, penalty=int(penalty or 0))
        return names

    def add_operator(self, operator: SimOperator) -> None:
        self._core.operators[operator.interface] = operator

    def add_customer(self, customer: SimCustomer) -> None:
        """A number behind the trunk; an Originate to `<Tech>/<number>[@...]` reaches it."""
        self._customers[customer.number] = customer

    def pick_up(self, number: str) -> bool:
        """An `on_cue` customer whose phone rings answers now; False if it is not ringing."""
        cue = self._cues.get(number)
        if cue is None:
            return False
        cue.set()
        return True

    def add_member(self, queue: str, interface: str, name: str = "", penalty: int = 0,
                   paused: bool = False) -> None:
        """A static member (kept across `restart()`)."""
        q = self._queue(queue)
        if interface in q.members:
            raise ValueError(f"{interface!r} is already a member of queue {queue!r}")
        q.members[interface] = Member(interface, name or interface, interface, penalty=penalty,
                                      paused=paused, login_time=self._core.wall())

    def _queue(self, name: str) -> SimQueue:
        q = self._core.queues.get(name)
        if q is None:
            raise KeyError(f"no queue named {name!r}; known: {sorted(self._core.queues)}")
        return q

    @property
    def missing_sounds(self) -> set[str]:
        """Sound files STREAM FILE cannot find (names containing "no-such" never exist)."""
        return self._core.missing_sounds

    # -- calls -----------------------------------------------------------------------------
    def place_call(self, caller: SimCaller, *, _originate: OriginateInfo | None = None) -> SimCall:
        """Start an inbound call now; returns its live handle (await `call.finished`)."""
        live = LiveCall(self._core, self._engine, caller, _originate)
        self._core.live[live.call.linkedid] = live
        self._spawn(live.run())
        return live.call

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run_load(self, rate_per_s: float, duration_s: float,
                       caller_factory: Callable[[int], SimCaller] | None = None,
                       wait: bool = True) -> list[SimCall]:
        """Poisson arrivals at `rate_per_s` (real time) for `duration_s`; await them if `wait`."""
        if rate_per_s <= 0 or duration_s <= 0:
            raise ValueError(f"rate_per_s and duration_s must be > 0, got {rate_per_s}, "
                             f"{duration_s}")
        rng, loop = self._core.rng, asyncio.get_running_loop()
        factory = caller_factory or (lambda i: SimCaller(number=f"7900{rng.randrange(10**7):07d}"))
        start = loop.time()
        due, calls = start + rng.expovariate(rate_per_s), list[SimCall]()
        while due < start + duration_s:
            now = loop.time()
            while due <= now and due < start + duration_s:
                calls.append(self.place_call(factory(len(calls))))
                due += rng.expovariate(rate_per_s)
            await asyncio.sleep(max(0.0, min(due, start + duration_s) - loop.time()))
        if wait:
            await asyncio.gather(*(c.finished for c in calls))
        return calls

    # -- AMI -------------------------------------------------------------------------------
    async def _handle_action(self, session: object, msg: object) -> None:
        await self._actions.handle(session, msg)  # type: ignore[arg-type]

    async def _originate(self, req: OriginateRequest) -> bool:
        core = self._core
        self.originated.append(req)
        tech_data = req.channel.split("/", 1)[1]
        exten, _, ctx = tech_data.partition("@")
        customer = self._customers.get(exten)
        if customer is not None or (req.context == dp.CONTEXT_CALLBACK and exten.isdigit()):
            customer = customer or SimCustomer(exten)
            if customer.answer == "fail":  # no channel at all (e.g. the trunk is down)
                core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id,
                          False, req.channel, req.context, req.exten, req.app, req.data, 0,
                          "<unknown>", req.cid_num, req.cid_name)
                return False
            answered = asyncio.get_running_loop().create_future()
            self._spawn(self._customer_leg(req, customer, answered))
            return True if req.asynchronous else bool(await answered)
        if req.channel.startswith("Local/") and ctx == dp.CONTEXT_INBOUND:
            vars_ = dict(req.variables)
            caller = SimCaller(
                number=req.cid_num, name=req.cid_name, dialled=exten, local=True,
                patience_s=float(vars_.get("SIM_PATIENCE", 60)),
                dtmf=tuple(d for d in vars_.get("SIM_DTMF", "").split(";") if d),
                hangs_up_after_s=float(req.data) if req.app.lower() == "wait" and req.data
                else (float(vars_["SIM_HANGUP_AFTER"]) if "SIM_HANGUP_AFTER" in vars_ else None))
            info = OriginateInfo(req.action_id, req.context, req.exten, req.app, req.data)
            call = self.place_call(caller, _originate=info)
            live = core.live.get(call.linkedid)
            if live is not None:
                for k, v in req.variables:
                    core.set_var(live.chan, k, v)
            return True
        is_operator = req.channel in core.operators or any(
            req.channel in q.members for q in core.queues.values())
        if not is_operator:
            if req.asynchronous:
                core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id,
                          False, req.channel, req.context, req.exten, req.app, req.data, 0,
                          "<unknown>", req.cid_num, req.cid_name)
            return False
        answered = asyncio.get_running_loop().create_future()
        if req.context == dp.CONTEXT_CALLBACK_OPERATOR:  # operator-first callback
            self._spawn(operator_first_leg(core, req, core.operator(req.channel),
                                           self._customers, self._cues, answered))
        else:
            self._spawn(self._operator_leg(req, answered))
        if req.asynchronous:
            return True
        return bool(await answered)

    async def _customer_leg(self, req: OriginateRequest, customer: SimCustomer,
                            answered: asyncio.Future[bool]) -> None:
        """Originate to a customer: ring; busy/congestion/no answer end it (Hangup, then
        OriginateResponse with Reason 5/8/3 = the AST_CONTROL_* frame seen last); an answer
        gives OriginateResponse Reason 4 and runs the Originate's Context (ccrouter-callback)."""
        core = self._core
        tech, _, data = req.channel.partition("/")
        endpoint = data.split("@", 1)[1] if "@" in data else data
        name = f"{tech}/{endpoint}-{core.tech_number(tech):08x}"
        ch = core.new_channel(name, None, req.context or "default", req.exten or "s",
                              cid_num=req.cid_num, cid_name=req.cid_name,
                              uniqueid=req.channel_id)
        core.emit("DialBegin", ev.CALL, ev.dial_begin, None, ch, data)
        core.set_state(ch, 5)
        cid = (req.cid_num, req.cid_name)
        try:
            how = customer.answer
            wait = req.timeout_s if how == "no_answer" else customer.answer_after_s
            if how == "answer" and customer.answer_after_s > req.timeout_s:
                how, wait = "no_answer", req.timeout_s
            if how == "on_cue":
                cue = self._cues.setdefault(customer.number, asyncio.Event())
                try:
                    async with asyncio.timeout(req.timeout_s / core.opt.time_scale):
                        await cue.wait()
                    how, wait = "answer", 0.0
                except TimeoutError:
                    how, wait = "no_answer", 0.0
                finally:
                    self._cues.pop(customer.number, None)
            await asyncio.sleep(wait / core.opt.time_scale)
            if how != "answer":
                status, cause, reason = {"busy": ("BUSY", 17, 5), "congestion": (
                    "CONGESTION", 34, 8)}.get(how, ("NOANSWER", 19, 3))
                core.emit("DialEnd", ev.CALL, ev.dial_end, None, ch, status)
                core.hangup(ch, cause=cause)
                core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id,
                          False, req.channel, req.context, req.exten, req.app, req.data, reason,
                          "<unknown>", *cid)
                answered.set_result(False)
                return
            core.set_state(ch, 6)
            core.emit("DialEnd", ev.CALL, ev.dial_end, None, ch, "ANSWER")
            core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id, True,
                      ch.name, req.context, req.exten, req.app, req.data, 4, ch.uniqueid, *cid)
            answered.set_result(True)
            for k, v in req.variables:
                core.set_var(ch, k, v)
            caller = SimCaller(number=customer.number, dialled=req.exten,
                               patience_s=customer.patience_s)
            info = OriginateInfo(req.action_id, req.context, req.exten, req.app, req.data)
            live = LiveCall(core, self._engine, caller, info, chan=ch)
            core.live[ch.linkedid] = live
            self.customer_calls.append(live.call)
            await live.run()
        finally:
            if not answered.done():
                answered.set_result(False)

    async def _operator_leg(self, req: OriginateRequest, answered: asyncio.Future[bool]) -> None:
        """Originate towards an operator: ring, answer, run Wait(N) or talk, hang up."""
        core = self._core
        op = core.operator(req.channel)
        cid = (req.cid_num, req.cid_name)
        if req.channel.startswith("Local/"):
            exten, _, ctx = req.channel[6:].partition("@")
            chans = list(core.local_pair(exten, ctx, None, cid))
        else:
            name = f"{req.channel}-{core.tech_number(req.channel.split('/')[0]):08x}"
            chans = [core.new_channel(name, None, "default", "s", cid_num=cid[0], cid_name=cid[1])]
        one = chans[0]
        core.emit("DialBegin", ev.CALL, ev.dial_begin, None, one, req.channel.split("/", 1)[1])
        try:
            if op.no_answer or op.answer_after_s * 1.0 > req.timeout_s:
                await asyncio.sleep(req.timeout_s / core.opt.time_scale)
                core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id,
                          False, req.channel, req.context, req.exten, req.app, req.data, 3,
                          one.uniqueid, *cid)
                answered.set_result(False)
                return
            await asyncio.sleep(op.answer_after_s / core.opt.time_scale)
            for ch in chans:
                core.set_state(ch, 6)
            core.set_device(req.channel, INUSE)
            core.emit("DialEnd", ev.CALL, ev.dial_end, None, one, "ANSWER")
            core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id, True,
                      one.name, req.context, req.exten, req.app, req.data, 4, one.uniqueid, *cid)
            answered.set_result(True)
            hold = op.talk_time_s
            if req.app:
                core.exten(one, req.app, req.data, 1)
                if req.app.lower() == "wait" and req.data.replace(".", "", 1).isdigit():
                    hold = float(req.data)
            if len(chans) == 2:
                core.exten(chans[1], req.app or "Wait", req.data or str(int(hold)), 3)
            await asyncio.sleep(hold / core.opt.time_scale)
        finally:
            if not answered.done():
                answered.set_result(False)
            for ch in reversed(chans):
                core.hangup(ch)
            if core.status(req.channel) == INUSE:
                core.set_device(req.channel, NOT_INUSE)

    # -- faults ----------------------------------------------------------------------------
    async def drop_ami(self) -> None:
        """Close every AMI connection (FIN), like a network drop; the port stays open."""
        self._ami.drop_all()
        await asyncio.sleep(0)

    def set_half_open(self, on: bool) -> None:
        """Keep AMI sockets open but send nothing and read nothing (until turned off)."""
        self._ami.set_half_open(on)

    async def restart(self, down_s: float = 0.0, *, boot_s: float = 0.0,
                      graceful_s: float | None = None, announce_boot: bool = True) -> None:
        """Asterisk restart: Shutdown event, AMI dropped, calls vanish without events, new
        uniqueid epoch, static queue config kept, dynamic members and stats gone.
        With `down_s` > 0 the AMI port refuses connections for that many real seconds.
        With `boot_s` > 0 the new PBX then boots for that many real seconds: logins work (no
        FullyBooted with them), app_queue's actions answer `Invalid/unknown command`, and
        `FullyBooted` goes to every logged-in session when it is done (`booted_at`; not with
        `announce_boot=False`: like a manager.conf user without the `system` read class).
        With `graceful_s` (`core restart now`, asterisk.c `can_safely_quit`): every action
        answers `Asterisk is shutting down` from then on, every call is hung up with its real
        events (a queued caller's QueueCallerAbandon/Leave, Hangup), and `graceful_s` real
        seconds later comes `Shutdown` (`Cleanly`) and the sockets close."""
        if graceful_s is not None:
            await self._shut_down(graceful_s)
        else:
            self._core.emit("Shutdown", ev.SYSTEM, ev.shutdown, True)
        self._ami.drop_all()
        self._ami.shutting_down, self._ami.booted = False, True
        port, host = self._ami.port, self._ami.host
        if down_s > 0:
            await self._ami.stop_listening()
        await self._tear_down()
        if boot_s > 0:
            self._begin_boot()
        if down_s > 0:
            await asyncio.sleep(down_s)
            await self._ami.start(host, port)
        if boot_s > 0:
            self._boot_timer = asyncio.get_running_loop().call_later(boot_s, self._booted,
                                                                     announce_boot)
        log.info("sim.restarted", epoch=self._core.epoch)

    async def _shut_down(self, window_s: float) -> None:
        self._ami.shutting_down = True
        for live in list(self._core.live.values()):
            live.caller_hangup()  # ast_softhangup_all
        await asyncio.sleep(window_s)
        self._core.emit("Shutdown", ev.SYSTEM, lambda: "Shutdown: Cleanly\r\nRestart: True\r\n")

    async def _tear_down(self) -> None:
        core = self._core
        core.noise, saved = False, core.noise
        core.ami = _Muted()  # type: ignore[assignment]
        try:
            await cancel_quietly(list(self._tasks))
        finally:
            core.ami = self._ami
            core.noise = saved
        self._engine.reset()
        core.channels.clear()
        core.live.clear()
        core.device.clear()
        for q in core.queues.values():
            q.reset_stats()
            for iface in [i for i, m in q.members.items() if m.dynamic]:
                del q.members[iface]
            for iface, m in list(q.members.items()):
                q.members[iface] = replace(m, calls_taken=0, last_call=0, in_call=False,
                                           busy_until=0.0, login_time=core.wall())
        core.new_epoch()
        core.processed = 0
        self._started = self._actions.started = time.time()  # CoreStatus: the new start-up

    def _begin_boot(self) -> None:
        self.booted_at = None
        self._ami.booted = False
        self._actions.booting = True

    def _booted(self, announce: bool) -> None:
        self._boot_timer = None
        self._ami.booted = announce
        self._actions.booting = False
        self.booted_at = asyncio.get_running_loop().time()
        if announce:
            self._core.emit("FullyBooted", ev.SYSTEM, ev.fully_booted,
                            int(time.time() - self._started))
        log.info("sim.fully_booted")

    # -- introspection for tests -------------------------------------------------------------
    def members(self, queue: str) -> list[Member]:
        return [replace(m) for m in self._queue(queue).members.values()]

    def live_channels(self) -> list[str]:
        return list(self._core.channels)

    def sent_bytes(self, conn_index: int) -> bytes:
        """Bytes sent on the AMI connection accepted `conn_index`-th (0 = first)."""
        try:
            return bytes(self._ami.sessions[conn_index].record)
        except IndexError:
            raise IndexError(f"no AMI connection #{conn_index}; "
                             f"{len(self._ami.sessions)} accepted so far") from None


class _Muted:
    """Stands in for the AMI server while a restart tears calls down: nothing is sent."""

    def wants(self, name: str) -> bool:
        return False

    def emit(self, name: str, priv: str, body: str) -> None:
        return None


def _member_lines(text: str, queues: list[str]) -> list[tuple[str, str]]:
    """(queue, what follows `member =>`) of a queues.conf text, in order."""
    out, section = [], ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        key, sep, value = line.partition("=")
        if sep and key.strip() == "member" and section in queues:  # `member =>` or `member =`
            out.append((section, value.removeprefix(">").strip()))
    return out
