"""`PbxSimulator`: the public face — configuration, calls, load, faults, introspection.

It wires the parts together; where an Originate goes is `originate.py`, start/close/restart
is `lifecycle.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from ccrouter import dialplan as dp

from .actions import Actions
from .ami import AmiServer
from .calls import LiveCall, OriginateInfo
from .core import Core, SimOptions
from .dialplan_conf import parse_extensions
from .engine import QueueEngine
from .lifecycle import Lifecycle
from .model import (
    LostCallerBlock,
    Member,
    SimCall,
    SimCaller,
    SimCustomer,
    SimOperator,
    SimPhone,
)
from .originate import OriginateLegs
from .originate_request import OriginateRequest
from .queues import QueueConfig, SimQueue
from .recording import SimRecording
from .rules import parse_conf_sections, parse_queuerules


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
        recording: SimRecording | None = None,
        agi_failover: Sequence[tuple[str, int]] = (),
    ) -> None:
        """`channelvars`: manager.conf's `channelvars` (channel variables every channel
        snapshot in an event reports as `ChanVariable: NAME=value`); none by default.
        `lost_caller_block`: how often a call that ends within a second of AgentConnect gets an
        AgentComplete without the caller's channel block (default: the rates a real Asterisk
        22 showed)."""
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        opts = SimOptions(agi_host, agi_port, time_scale, noise, fallback_queue, prompt_s,
                          agi_timeout_s, inbound_script, survey, tuple(channelvars), recording,
                          tuple(agi_failover))
        started = time.time()
        self._ami = AmiServer(username, secret, self._handle_action, login_fail_delay_s,
                              lambda: int(time.time() - self._life.started))
        self._core = Core(opts, self._ami, seed)
        self._engine = QueueEngine(self._core, lost_caller_block, seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._legs = OriginateLegs(self._core, self._engine, self._spawn,
                                   lambda caller, info: self.place_call(caller, _originate=info))
        self._actions = Actions(self._core, self._engine, self._legs.originate, started)
        self._life = Lifecycle(self._core, self._ami, self._engine, self._actions, self._tasks,
                               started)
        self.originated: list[OriginateRequest] = self._legs.originated
        """Every Originate action received (tests count dials with it)."""
        self.customer_calls: list[SimCall] = self._legs.customer_calls
        """Originated customer legs that answered, in order."""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await self._life.start(host, port)

    @property
    def ami_port(self) -> int:
        return self._ami.port

    @property
    def ami_logged_in(self) -> int:
        """How many AMI clients are logged in now (with events on), as `manager show
        connected` counts them."""
        return self._ami.logged_in

    @property
    def agi_port(self) -> int:
        """Where the dialplan's AGI() connects; settable once ccrouter has bound its port."""
        return self._core.opt.agi_port

    @agi_port.setter
    def agi_port(self, port: int) -> None:
        self._core.opt = dataclasses.replace(self._core.opt, agi_port=port)

    async def close(self) -> None:
        await self._life.close()

    @property
    def booted_at(self) -> float | None:
        """Loop time of the last `FullyBooted` sent after a `restart(boot_s=...)`."""
        return self._life.booted_at

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

    def load_extensions(self, text: str, filename: str = "extensions_ccrouter.conf") -> list[str]:
        """An extensions.conf text (e.g. ccrouter's generated file) as `dialplan reload` loads
        it: what `dialplan show CONTEXT` prints, and whether `ccrouter-doctor` exists. The
        calls still run the ccrouter contexts built in. Returns the contexts loaded."""
        contexts = parse_extensions(text)
        self._core.dialplan.update(contexts)
        self._core.dialplan_file = filename
        return list(contexts)

    # -- doctor faults -----------------------------------------------------------------------
    @property
    def write_classes(self) -> frozenset[str] | None:
        """manager.conf `write =` of the AMI user (None: all); e.g. without `system` the
        Filter action answers Permission denied."""
        return self._ami.write_classes

    @write_classes.setter
    def write_classes(self, classes: frozenset[str] | None) -> None:
        self._ami.write_classes = classes

    @property
    def channelvars(self) -> tuple[str, ...]:
        return self._core.opt.channelvars

    @channelvars.setter
    def channelvars(self, names: tuple[str, ...]) -> None:
        """manager.conf `channelvars` (for channels created from now on)."""
        self._core.opt = dataclasses.replace(self._core.opt, channelvars=tuple(names))

    @property
    def persistentmembers(self) -> bool:
        return self._core.persistentmembers

    @persistentmembers.setter
    def persistentmembers(self, on: bool) -> None:
        """queues.conf [general] `persistentmembers` as GetConfig reads it."""
        self._core.persistentmembers = on

    def forget_device(self, interface: str) -> None:
        """Asterisk knows nothing of `interface` (no such endpoint): DeviceStateList omits it."""
        self._core.unknown_devices.add(interface)

    def add_operator(self, operator: SimOperator) -> None:
        self._core.operators[operator.interface] = operator

    def add_phone(self, phone: SimPhone) -> None:
        """A supervisor's phone: an Originate of Application ChanSpy to its device rings it."""
        self._core.phones[phone.device] = phone

    def add_customer(self, customer: SimCustomer) -> None:
        """A number behind the trunk; an Originate to `<Tech>/<number>[@...]` reaches it."""
        self._legs.customers[customer.number] = customer

    def pick_up(self, number: str) -> bool:
        """An `on_cue` customer whose phone rings answers now; False if it is not ringing."""
        cue = self._legs.cues.get(number)
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
        await self._life.restart(down_s, boot_s=boot_s, graceful_s=graceful_s,
                                 announce_boot=announce_boot)

    # -- introspection for tests -------------------------------------------------------------
    def members(self, queue: str) -> list[Member]:
        return [replace(m) for m in self._queue(queue).members.values()]

    def live_channels(self) -> list[str]:
        return list(self._core.channels)

    def ami_actions(self) -> list[list[str]]:
        """The actions each AMI connection logged in now (events on) has sent, in order."""
        return [list(s.actions) for s in self._ami.live_sessions()]

    def sent_bytes(self, conn_index: int) -> bytes:
        """Bytes sent on the AMI connection accepted `conn_index`-th (0 = first)."""
        try:
            return bytes(self._ami.sessions[conn_index].record)
        except IndexError:
            raise IndexError(f"no AMI connection #{conn_index}; "
                             f"{len(self._ami.sessions)} accepted so far") from None


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
