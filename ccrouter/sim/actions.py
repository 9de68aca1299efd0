"""AMI actions after Login, answering byte for byte like `ami-actions.txt`.

Shapes follow manager.c and app_queue.c.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from .ami_session import AmiSession, Message
from .calls import LiveCall
from .core import DEVICE_NAMES, NOT_INUSE, Core
from .dialplan_conf import dialplan_show
from .engine import QueueEngine
from .model import Member
from .originate_request import OriginateRequest

Originator = Callable[[OriginateRequest], Awaitable[bool]]
APP_QUEUE_ACTIONS = frozenset({
    "queuestatus", "queuesummary", "queueadd", "queueremove", "queuepause", "queuepenalty",
    "queuelog", "queuememberringinuse", "queuerule", "queuereload", "queuereset",
    "queuechangeprioritycaller", "queuewithdrawcaller",
})
"""The manager actions app_queue.c registers: unknown while the PBX boots (not loaded yet)."""
_TRUE = ("true", "yes", "1", "on", "y", "t")


def parse_callerid(value: str) -> tuple[str, str]:
    """`"Name" <num>` / `Name <num>` / `num` -> (num, name)."""
    m = re.match(r'\s*"?([^"<]*?)"?\s*<([^>]*)>', value)
    if m:
        return m.group(2).strip(), m.group(1).strip()
    return value.strip(), ""


class Actions:
    def __init__(self, core: Core, engine: QueueEngine, originate: Originator,
                 started: float) -> None:
        self.core = core
        self.engine = engine
        self.originate = originate
        self.started = started
        self.booting = False
        """True after a restart until FullyBooted: app_queue's actions are not registered."""
        self.table: dict[str, Callable[[AmiSession, Message], Awaitable[None]]] = {
            "ping": self.ping, "coresettings": self.coresettings, "corestatus": self.corestatus,
            "command": self.command, "setvar": self.setvar, "getvar": self.getvar,
            "queuesummary": self.queuesummary, "queuestatus": self.queuestatus,
            "queueadd": self.queueadd, "queueremove": self.queueremove,
            "queuepause": self.queuepause, "queuepenalty": self.queuepenalty,
            "originate": self.originate_action, "coreshowchannels": self.coreshowchannels,
            "playdtmf": self.playdtmf, "hangup": self.hangup,
            "devicestatelist": self.devicestatelist, "getconfig": self.getconfig,
        }

    async def handle(self, s: AmiSession, m: Message) -> None:
        name = m.action.lower()
        fn = self.table.get(name)
        if fn is None or (self.booting and name in APP_QUEUE_ACTIONS):
            s.error(m, f"Invalid/unknown command: {m.action}. "
                       "Use Action: ListCommands to show available commands.")
            return
        await fn(s, m)

    # -- core ------------------------------------------------------------------------------
    async def ping(self, s: AmiSession, m: Message) -> None:
        s.respond(m, "Success", None, f"Ping: Pong\r\nTimestamp: {time.time():.6f}\r\n")

    async def coresettings(self, s: AmiSession, m: Message) -> None:
        s.respond(m, "Success", None,
                  "AMIversion: 11.0.0\r\nAsteriskVersion: 22.10.1\r\nSystemName: \r\n"
                  "CoreMaxCalls: 200\r\nCoreMaxLoadAvg: 0.000000\r\nCoreRunUser: root\r\n"
                  "CoreRunGroup: root\r\nCoreMaxFilehandles: 0\r\nCoreRealTimeEnabled: No\r\n"
                  "CoreCDRenabled: Yes\r\nCoreHTTPenabled: No\r\nSoundsSearchCustomDir: No\r\n")

    async def corestatus(self, s: AmiSession, m: Message) -> None:
        t = time.localtime(self.started)
        d, hms = time.strftime("%Y-%m-%d", t), time.strftime("%H:%M:%S", t)
        s.respond(m, "Success", None,
                  f"CoreStartupDate: {d}\r\nCoreStartupTime: {hms}\r\nCoreReloadDate: {d}\r\n"
                  f"CoreReloadTime: {hms}\r\nCoreCurrentCalls: {len(self.core.channels)}\r\n"
                  f"CoreProcessedCalls: {self.core.processed}\r\n")

    async def command(self, s: AmiSession, m: Message) -> None:
        cmd = m.get("Command")
        words = cmd.split()
        if cmd.strip().lower() == "core show version":
            out, resp = ["Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux"], "Success"
        elif [w.lower() for w in words[:3]] == ["queue", "rules", "show"] and len(words) <= 4:
            out, resp = self._rules_show(words[3] if len(words) == 4 else ""), "Success"
        elif [w.lower() for w in words[:2]] == ["dialplan", "show"] and len(words) == 3:
            out = dialplan_show(self.core.dialplan, words[2], self.core.dialplan_file)
            resp = "Error" if out[0].startswith("There is no existence") else "Success"
        else:
            out = [f"No such command '{cmd}' (type 'core show help {' '.join(words[:2])}' "
                   "for other possible commands)"]
            resp = "Error"
        s.respond(m, resp, "Command output follows", "".join(f"Output: {o}\r\n" for o in out))

    async def setvar(self, s: AmiSession, m: Message) -> None:
        target = self._var_target(s, m)
        if target is None:
            return
        name, live = target
        if live is not None:
            live.set_var(name, m.get("Value"))
        else:
            self.core.globals[name] = m.get("Value")
        s.ok(m, "Variable Set")

    async def getvar(self, s: AmiSession, m: Message) -> None:
        target = self._var_target(s, m)
        if target is None:
            return
        name, live = target
        value = (live.get_var(name) or "") if live is not None else self.core.globals.get(name, "")
        s.respond(m, "Success", None, f"Variable: {name}\r\nValue: {value}\r\n")

    def _var_target(self, s: AmiSession, m: Message) -> tuple[str, LiveCall | None] | None:
        """Setvar/Getvar's Variable and (optional) Channel; None after answering an error."""
        name, chan = m.get("Variable"), m.get("Channel")
        if not name:
            s.error(m, "No variable specified")
            return None
        if not chan:
            return name, None
        live = self._live_by_channel(chan)
        if live is None:
            s.error(m, "No such channel")
            return None
        return name, live

    def _live_by_channel(self, name: str) -> LiveCall | None:
        ch = self.core.channels.get(name)
        return None if ch is None else self.core.live.get(ch.linkedid)

    def _rules_show(self, only: str) -> list[str]:
        """app_queue.c handle_queue_rule_show (the sim has no QUEUE_RAISE_PENALTY: by 0)."""
        out = []
        for name, changes in self.core.queue_rules.items():
            if only and name.lower() != only.lower():
                continue
            out.append(f"Rule: {name}")
            out += [f"\tAfter {c.time} seconds, adjust QUEUE_MAX_PENALTY "
                    f"{'by' if c.max_relative else 'to'} {c.max_value}, adjust QUEUE_MIN_PENALTY "
                    f"{'by' if c.min_relative else 'to'} {c.min_value} and adjust "
                    "QUEUE_RAISE_PENALTY by 0" for c in changes]
        return out

    async def getconfig(self, s: AmiSession, m: Message) -> None:
        """manager.c action_getconfig, for queues.conf's [general] `persistentmembers` (the
        only file the simulated PBX has on disk)."""
        name, category = m.get("Filename"), m.get("Category")
        if not name:
            s.error(m, "Filename not specified")
            return
        if name != "queues.conf":
            s.error(m, "Config file not found")
            return
        if category and category != "general":
            s.respond(m, "Success", None, "No categories found\r\n")
            return
        value = "yes" if self.core.persistentmembers else "no"
        s.respond(m, "Success", None,
                  f"Category-000000: general\r\nLine-000000-000000: persistentmembers={value}\r\n")

    async def devicestatelist(self, s: AmiSession, m: Message) -> None:
        """res_manager_devicestate.c: the cached device states as DeviceStateChange items
        (ActionID right after `Event:`), then DeviceStateListComplete."""
        core = self.core
        known = dict.fromkeys([*core.operators, *(i for q in core.queues.values()
                                                  for i in q.members), *core.device])
        s.list_start(m, "Device State Changes will follow")
        n = 0
        for iface in known:
            if iface in core.unknown_devices:
                continue
            state = DEVICE_NAMES.get(core.status(iface), "UNKNOWN")
            s.list_item(m, "DeviceStateChange", f"Device: {iface}\r\nState: {state}\r\n",
                        id_first=True)
            n += 1
        s.list_complete(m, "DeviceStateListComplete", n)

    # -- queues ----------------------------------------------------------------------------
    async def queuesummary(self, s: AmiSession, m: Message) -> None:
        only, core, n = m.get("Queue"), self.core, 0
        s.list_start(m, "Queue summary will follow")
        for q in core.queues.values():
            if only and q.name != only:
                continue
            avail = sum(1 for mem in q.members.values()
                        if not mem.paused and core.status(mem.interface) == NOT_INUSE)
            longest = max((int(core.sim_elapsed(e.joined)) for e in q.entries), default=0)
            s.list_item(m, "QueueSummary",
                        f"Queue: {q.name}\r\nLoggedIn: {len(q.members)}\r\nAvailable: {avail}\r\n"
                        f"Callers: {len(q.entries)}\r\nHoldTime: {q.holdtime}\r\n"
                        f"TalkTime: {q.talktime}\r\nLongestHoldTime: {longest}\r\n")
            n += 1
        s.list_complete(m, "QueueSummaryComplete", n)

    async def queuestatus(self, s: AmiSession, m: Message) -> None:
        only, member, core, n = m.get("Queue"), m.get("Member"), self.core, 0
        s.list_start(m, "Queue status will follow")
        for q in core.queues.values():
            if only and q.name != only:
                continue
            sl, sl2 = q.service_levels()
            c = q.config
            s.list_item(m, "QueueParams",
                        f"Queue: {q.name}\r\nMax: {c.maxlen}\r\nStrategy: {c.strategy}\r\n"
                        f"Calls: {len(q.entries)}\r\nHoldtime: {q.holdtime}\r\n"
                        f"TalkTime: {q.talktime}\r\nCompleted: {q.completed}\r\n"
                        f"Abandoned: {q.abandoned}\r\nServiceLevel: {c.servicelevel}\r\n"
                        f"ServicelevelPerf: {sl:.1f}\r\nServicelevelPerf2: {sl2:.1f}\r\n"
                        f"Weight: {c.weight}\r\n")
            n += 1
            for mem in q.members.values():
                if member and mem.interface != member and mem.name != member:
                    continue
                s.list_item(m, "QueueMember", self._member_item(q.name, mem))
                n += 1
            for pos, e in enumerate(q.entries, start=1):
                ch = e.chan
                s.list_item(m, "QueueEntry",
                            f"Queue: {q.name}\r\nPosition: {pos}\r\nChannel: {ch.name}\r\n"
                            f"Uniqueid: {ch.uniqueid}\r\nCallerIDNum: {ch.cid_num or 'unknown'}\r\n"
                            f"CallerIDName: {ch.cid_name or 'unknown'}\r\n"
                            f"ConnectedLineNum: {ch.conn_num or 'unknown'}\r\n"
                            f"ConnectedLineName: {ch.conn_name or 'unknown'}\r\n"
                            f"Wait: {int(core.sim_elapsed(e.joined))}\r\nPriority: {e.prio}\r\n")
                n += 1
        s.list_complete(m, "QueueStatusComplete", n)

    def _member_item(self, queue: str, mem: Member) -> str:
        return (f"Queue: {queue}\r\nName: {mem.name}\r\nLocation: {mem.interface}\r\n"
                f"StateInterface: {mem.state_interface}\r\nMembership: {mem.membership}\r\n"
                f"Penalty: {mem.penalty}\r\nCallsTaken: {mem.calls_taken}\r\n"
                f"LastCall: {mem.last_call}\r\nLastPause: {mem.last_pause}\r\n"
                f"LoginTime: {mem.login_time}\r\nInCall: {int(mem.in_call)}\r\n"
                f"Status: {self.core.status(mem.interface)}\r\nPaused: {int(mem.paused)}\r\n"
                f"PausedReason: {mem.paused_reason}\r\nWrapuptime: {mem.wrapuptime}\r\n")

    async def queueadd(self, s: AmiSession, m: Message) -> None:
        qname, iface = m.get("Queue"), m.get("Interface")
        if not qname or not iface:
            s.error(m, "'Queue' or 'Interface' not set.")
            return
        q = self.core.queues.get(qname)
        if q is None:
            s.error(m, "Unable to add interface to queue: No such queue")
            return
        if iface in q.members:
            s.error(m, "Unable to add interface: Already there")
            return
        penalty = int(m.get("Penalty") or 0) if m.get("Penalty").lstrip("-").isdigit() else 0
        paused = m.get("Paused").lower() in _TRUE
        wall = self.core.wall()
        mem = Member(iface, m.get("MemberName") or iface, m.get("StateInterface") or iface,
                     penalty=penalty, paused=paused, paused_reason=m.get("Reason") if paused
                     else "", dynamic=True, login_time=wall, last_pause=wall if paused else 0,
                     wrapuptime=int(m.get("Wrapuptime") or 0))
        q.members[iface] = mem
        self.core.member_event("QueueMemberAdded", q, mem)
        self.engine.schedule(q)
        s.ok(m, "Added interface to queue")

    async def queueremove(self, s: AmiSession, m: Message) -> None:
        qname, iface = m.get("Queue"), m.get("Interface")
        if not qname or not iface:
            s.error(m, "Need 'Queue' and 'Interface' parameters.")
            return
        q = self.core.queues.get(qname)
        if q is None:
            s.error(m, "Unable to remove interface from queue: No such queue")
            return
        mem = q.members.get(iface)
        if mem is None:
            s.error(m, "Unable to remove interface: Not there")
            return
        if not mem.dynamic:
            s.error(m, "Member not dynamic")
            return
        del q.members[iface]
        self.core.member_event("QueueMemberRemoved", q, mem)
        s.ok(m, "Removed interface from queue")

    async def queuepause(self, s: AmiSession, m: Message) -> None:
        iface, paused_h = m.get("Interface"), m.get("Paused")
        if not iface or not paused_h:
            s.error(m, "Need 'Interface' and 'Paused' parameters.")
            return
        paused, qname, reason = paused_h.lower() in _TRUE, m.get("Queue"), m.get("Reason")
        found = False
        for q in self.core.queues.values():
            mem = q.members.get(iface)
            if mem is None or (qname and q.name != qname):
                continue
            found = True
            mem.paused, mem.paused_reason = paused, reason if paused else ""
            if paused:
                mem.last_pause = self.core.wall()
            self.core.device_change(f"Queue:{q.name}_pause_{iface}",
                                    "INUSE" if paused else "NOT_INUSE")
            self.core.member_event("QueueMemberPause", q, mem)
            self.engine.schedule(q)
        if not found:
            s.error(m, "Interface not found")
            return
        s.ok(m, f"Interface {'paused' if paused else 'unpaused'} successfully")

    async def queuepenalty(self, s: AmiSession, m: Message) -> None:
        iface, qname, pen = m.get("Interface"), m.get("Queue"), m.get("Penalty")
        targets = [q for q in self.core.queues.values()
                   if iface in q.members and (not qname or q.name == qname)]
        if not iface or not pen.isdigit() or not targets:
            s.error(m, "Invalid interface, queuename or penalty")
            return
        for q in targets:
            q.members[iface].penalty = int(pen)
            self.core.member_event("QueueMemberPenalty", q, q.members[iface])
            self.engine.schedule(q)
        s.ok(m, "Interface penalty set successfully")

    # -- channels --------------------------------------------------------------------------
    async def coreshowchannels(self, s: AmiSession, m: Message) -> None:
        core = self.core
        s.list_start(m, "Channels will follow")
        n = 0
        for ch in list(core.channels.values()):
            secs = int(core.sim_elapsed(ch.created))
            dur = f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
            s.list_item(m, "CoreShowChannel",
                        f"{ch.snap()}Application: {ch.app}\r\nApplicationData: {ch.appdata}\r\n"
                        f"Duration: {dur}\r\nBridgeId: {ch.bridge}\r\n", id_first=True)
            n += 1
        s.list_complete(m, "CoreShowChannelsComplete", n)

    async def playdtmf(self, s: AmiSession, m: Message) -> None:
        live = self._live_by_channel(m.get("Channel"))
        if live is None:
            s.error(m, "Channel not found")
            return
        if not m.get("Digit"):
            s.error(m, "No digit specified")
            return
        live.keypad.push(m.get("Digit"))
        s.ok(m, "DTMF successfully queued")

    async def hangup(self, s: AmiSession, m: Message) -> None:
        live = self._live_by_channel(m.get("Channel"))
        if live is None:
            s.error(m, "No such channel")
            return
        live.caller_hangup()
        s.ok(m, "Channel Hungup")

    async def originate_action(self, s: AmiSession, m: Message) -> None:
        channel = m.get("Channel")
        if not channel:
            s.error(m, "Channel not specified")
            return
        if "/" not in channel:
            s.error(m, "Invalid channel")
            return
        timeout = m.get("Timeout") or "30000"
        if not timeout.isdigit():
            s.error(m, "Invalid timeout")
            return
        num, name = parse_callerid(m.get("CallerID"))
        variables = tuple(tuple(p.split("=", 1)) for v in m.all("Variable")
                          for p in v.split(",") if "=" in p)
        req = OriginateRequest(channel, m.get("Context"), m.get("Exten"), m.get("Application"),
                               m.get("Data"), num, name, int(timeout) / 1000,
                               m.get("Async").lower() in _TRUE, m.get("ActionID"),
                               variables, m.get("ChannelId"))  # type: ignore[arg-type]
        if req.asynchronous:
            s.ok(m, "Originate successfully queued")
            await self.originate(req)
        elif await self.originate(req):
            s.ok(m, "Originate successfully queued")
        else:
            s.error(m, "Originate failed")
