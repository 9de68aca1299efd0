"""Shared simulator state: clock, ids, channels, device states, operators, queues, emitting."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import events as ev
from .ami import AmiServer
from .channel import Channel
from .dialplan_conf import Priority
from .model import Member, SimOperator, SimPhone
from .queues import SimQueue
from .recording import SimRecording
from .rules import PenaltyChange

if TYPE_CHECKING:
    from .calls import LiveCall

ESSENTIAL = frozenset({
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentConnect",
    "AgentComplete", "AgentRingNoAnswer", "AgentDump", "QueueMemberAdded", "QueueMemberRemoved",
    "QueueMemberStatus", "QueueMemberPause", "QueueMemberPenalty", "Hangup",
    "OriginateResponse", "FullyBooted", "Shutdown", "UserEvent", "MixMonitorStart",
    "ChanSpyStart", "ChanSpyStop", "MixMonitorStop", "BlindTransfer", "AttendedTransfer",
})
"""Events sent with noise=False: what a call-centre client needs."""

NOT_INUSE, INUSE, RINGING = 1, 2, 6
DEVICE_NAMES = {NOT_INUSE: "NOT_INUSE", INUSE: "INUSE", RINGING: "RINGING"}


@dataclass(frozen=True, slots=True)
class SimOptions:
    agi_host: str
    agi_port: int
    time_scale: float
    noise: bool
    fallback_queue: str
    prompt_s: float
    agi_timeout_s: float
    inbound_script: str = "route"
    """The FastAGI script of ccrouter-inbound: `route`, or `ivr` when the config has menus."""
    survey: bool = False
    """Queue(...,c,...) then AGI(survey): the caller stays after the operator hangs up."""
    channelvars: tuple[str, ...] = ()
    """manager.conf `channelvars`: reported in every channel snapshot as `ChanVariable`."""
    recording: SimRecording | None = None
    """ccrouter-queue runs MixMonitor for these calls (recordings: in the config)."""
    agi_failover: tuple[tuple[str, int], ...] = ()
    """Several ccrouter instances: FastAGI addresses tried in turn after agi_host:agi_port
    while AGISTATUS is FAILURE (the generated ccrouter-agi subroutine)."""


class Core:
    def agi_addresses(self) -> list[tuple[str, int]]:
        """Where the dialplan's AGI() goes: ccrouter, then any failover instances."""
        return [(self.opt.agi_host, self.opt.agi_port), *self.opt.agi_failover]

    def __init__(self, options: SimOptions, ami: AmiServer, seed: int) -> None:
        self.opt = options
        self.ami = ami
        self.noise = options.noise
        self.rng = random.Random(seed)
        self.loop_t0 = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        """The running loop, from `start()` to `close()` (asking for it is dearer than
        keeping it); None: ask asyncio."""
        self.epoch = int(time.time())
        self.seq = 0
        self.tech_seq: dict[str, int] = {}
        self.channels: dict[str, Channel] = {}  # by name
        self.device: dict[str, int] = {}
        self.operators: dict[str, SimOperator] = {}
        self.phones: dict[str, SimPhone] = {}
        """Supervisors' phones (ChanSpy Originates ring them), by device."""
        self.hangup_watchers: dict[str, list[Callable[[Channel], None]]] = {}
        """Channel name -> called as it hangs up, before its Hangup event (ChanSpy's `E`)."""
        self.queues: dict[str, SimQueue] = {}
        self.live: dict[str, LiveCall] = {}  # by linkedid
        self.globals: dict[str, str] = {}
        self.astdb: dict[tuple[str, str], str] = {}
        self.queue_rules: dict[str, list[PenaltyChange]] = {}
        self.missing_sounds: set[str] = set()
        self.dialplan: dict[str, list[Priority]] = {}
        """Contexts loaded with `PbxSimulator.load_extensions` (`dialplan show`)."""
        self.dialplan_file = "extensions.conf"
        self.persistentmembers = False
        """queues.conf [general] `persistentmembers` (GetConfig shows it)."""
        self.unknown_devices: set[str] = set()
        """Interfaces Asterisk knows nothing of: absent from DeviceStateList (a fault knob)."""
        self.processed = 0
        self.started_at = time.time()
        self.on_member_free: Callable[[str], None] = lambda iface: None

    # -- clock and ids ---------------------------------------------------------------------
    def now(self) -> float:
        """Loop time (real seconds)."""
        return (self.loop or asyncio.get_running_loop()).time()

    def sim_elapsed(self, since: float) -> float:
        return (self.now() - since) * self.opt.time_scale

    def wall(self) -> int:
        """Simulated epoch seconds (for LastCall, LoginTime...)."""
        return int(self.started_at + (self.now() - self.loop_t0) * self.opt.time_scale)

    def later(self, sim_seconds: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        delay = max(0.0, sim_seconds / self.opt.time_scale)
        return (self.loop or asyncio.get_running_loop()).call_later(delay, fn, *args)

    def new_epoch(self) -> None:
        self.epoch = max(self.epoch + 1, int(time.time()))
        self.seq = 0
        self.tech_seq.clear()

    def uniqueid(self) -> str:
        uid = f"{self.epoch}.{self.seq}"
        self.seq += 1
        return uid

    def tech_number(self, tech: str) -> int:
        n = self.tech_seq.get(tech, 0)
        self.tech_seq[tech] = n + 1
        return n

    # -- channels --------------------------------------------------------------------------
    def new_channel(self, name: str, linkedid: str | None, context: str, exten: str,
                    *, state: int = 0, cid_num: str = "", cid_name: str = "",
                    uniqueid: str = "") -> Channel:
        uid = uniqueid or self.uniqueid()  # Originate's ChannelId sets it
        ch = Channel(name, uid, linkedid or uid, context, exten, self.now(), state=state,
                     cid_num=cid_num, cid_name=cid_name, chanvars=self.opt.channelvars)
        self.channels[name] = ch
        self.emit("Newchannel", ev.CALL, Channel.snap, ch)
        return ch

    def local_pair(self, exten: str, context: str, linkedid: str | None,
                   cid: tuple[str, str] = ("", "")) -> tuple[Channel, Channel]:
        base = f"Local/{exten}@{context}-{self.tech_number('Local'):08x}"
        one = self.new_channel(base + ";1", linkedid, context, exten)
        two = self.new_channel(base + ";2", one.linkedid, context, exten, state=4)
        if cid[0]:
            for ch in (one, two):
                ch.update(cid_num=cid[0], cid_name=cid[1], conn_num=cid[0], conn_name=cid[1])
                self.emit("NewCallerid", ev.CALL, ev.newcallerid, ch)
                self.emit("NewConnectedLine", ev.CALL, Channel.snap, ch)
        self.emit("LocalBridge", ev.CALL, ev.local_bridge, one, two)
        return one, two

    def exten(self, ch: Channel, app: str, data: str, priority: int | None = None) -> None:
        ch.update(app=app, appdata=data, priority=ch.priority if priority is None else priority)
        self.emit("Newexten", ev.DIALPLAN, ev.newexten, ch)

    def set_state(self, ch: Channel, state: int) -> None:
        ch.update(state=state)
        self.emit("Newstate", ev.CALL, Channel.snap, ch)

    def set_var(self, ch: Channel, name: str, value: str) -> None:
        ch.vars[name] = value
        if name in ch.chanvars:
            ch.update()  # the next snapshot reports the new value
        self.emit("VarSet", ev.DIALPLAN, ev.varset, ch, name, value)

    def hangup(self, ch: Channel, *, soft: bool = True, cause: int = 16) -> None:
        if self.channels.pop(ch.name, None) is None:
            return
        if soft:
            self.emit("SoftHangupRequest", ev.CALL, ev.hangup_request, ch, cause)
        for watcher in self.hangup_watchers.pop(ch.name, ()):
            watcher(ch)
        self.emit("Hangup", ev.CALL, ev.hangup, ch, cause)

    def cdr(self, ch: Channel, source: str, caller_id: str, dest: str = "") -> None:
        if not (self.noise and self.ami.wants("Cdr")):
            return
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(
            self.started_at + (ch.created - self.loop_t0) * self.opt.time_scale))
        end = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.wall()))
        dur = int(self.sim_elapsed(ch.created))
        self.ami.emit("Cdr", ev.CDR, ev.cdr(ch, source, caller_id, dest, start, start, end, dur,
                                           dur))

    # -- emitting --------------------------------------------------------------------------
    def emit(self, name: str, priv: str, fn: Callable[..., str], *args: Any) -> None:
        if self.noise or name in ESSENTIAL:
            ami = self.ami
            if ami.wants(name):
                ami.emit(name, priv, fn(*args))

    def device_change(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", ev.CALL, ev.device_state, device, state)

    # -- members ---------------------------------------------------------------------------
    def operator(self, interface: str) -> SimOperator:
        return self.operators.get(interface) or SimOperator(interface)

    def status(self, interface: str) -> int:
        return self.device.get(interface, NOT_INUSE)

    def set_device(self, interface: str, status: int) -> None:
        if self.status(interface) == status:
            return
        self.device[interface] = status
        self.device_change(interface, DEVICE_NAMES[status])
        for q in self.queues.values():
            m = q.members.get(interface)
            if m is not None:
                self.member_event("QueueMemberStatus", q, m)
        if status == NOT_INUSE:
            self.on_member_free(interface)

    def member_event(self, name: str, q: SimQueue, m: Member) -> None:
        self.emit(name, ev.AGENT, ev.member_blob, q.name, m, self.status(m.interface))

    def queues_of(self, interface: str) -> list[SimQueue]:
        return [q for q in self.queues.values() if interface in q.members]
