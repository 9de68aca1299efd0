"""The queue engine: join, ring members by strategy, answer / no answer / retry, leave.

Event order follows the transcripts: QueueCallerJoin, AgentCalled (+DialBegin), then either
AgentRingNoAnswer (ring timeout; next try after `retry`), or QueueCallerLeave +
QueueMemberStatus(2) + AgentConnect; a caller who gives up gets QueueCallerAbandon +
QueueCallerLeave. All delays are simulated seconds (scaled by `time_scale`).
"""

from __future__ import annotations

import asyncio
import random

import structlog

from . import events as ev
from .channel import Channel
from .core import INUSE, NOT_INUSE, RINGING, Core
from .model import LostCallerBlock, Member
from .queues import Attempt, Entry, SimQueue
from .rules import apply_change

log = structlog.get_logger(__name__)


def _bridge_id(core: Core) -> str:
    r = core.rng.getrandbits(128)
    h = f"{r:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class QueueEngine:
    def __init__(self, core: Core, lost_caller_block: LostCallerBlock | None = None,
                 seed: int = 0) -> None:
        self.core = core
        self.lost_caller_block = lost_caller_block or LostCallerBlock()
        self._shapes = random.Random(f"agent-complete/{seed}")  # apart from core.rng's draws
        self.ringing: set[str] = set()
        self._pending: set[str] = set()
        self._soon: asyncio.Handle | None = None
        core.on_member_free = self._member_free

    def reset(self) -> None:
        self.ringing.clear()
        self._pending.clear()
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None

    # -- joining and leaving ---------------------------------------------------------------
    def join(self, q: SimQueue, entry: Entry, patience_s: float, timeout_s: float) -> None:
        core = self.core
        entry.done = asyncio.get_running_loop().create_future()
        core.device_change(f"Queue:{q.name}", "RINGING")
        pos = q.insert(entry)
        entry.original_position = pos
        core.emit("QueueCallerJoin", ev.AGENT, ev.caller_join_leave, entry.chan, q.name, pos,
                  len(q.entries))
        core.emit("MusicOnHoldStart", ev.CALL, ev.moh, entry.chan, True)
        entry.timers.append(core.later(patience_s, entry.live.caller_hangup))
        entry.rules = list(core.queue_rules.get(q.config.defaultrule, ()))
        for when in sorted({c.time for c in entry.rules}):
            entry.timers.append(core.later(when, self._apply_rules, q, entry))
        if timeout_s > 0:
            entry.timers.append(core.later(timeout_s, self.leave, q, entry, "timeout"))
        self.schedule(q)

    def leave(self, q: SimQueue, entry: Entry, reason: str) -> None:
        """The caller leaves without an operator: "abandon" (hung up) or "timeout"."""
        if entry not in q.entries:
            return
        core = self.core
        self._cancel_attempts(entry, None)
        for t in entry.timers:
            t.cancel()
        pos = q.position(entry)
        q.entries.remove(entry)
        hold = int(core.sim_elapsed(entry.joined))
        core.emit("MusicOnHoldStop", ev.CALL, ev.moh, entry.chan, False)
        if reason == "abandon":
            q.record_abandon(hold)
            core.emit("QueueCallerAbandon", ev.AGENT, ev.caller_abandon, entry.chan, q.name, pos,
                      entry.original_position, hold)
        core.device_change(f"Queue:{q.name}", "NOT_INUSE")
        core.emit("QueueCallerLeave", ev.AGENT, ev.caller_join_leave, entry.chan, q.name, pos,
                  len(q.entries))
        entry.live.call.hold_time = hold
        if entry.done is not None and not entry.done.done():
            entry.done.set_result((reason, None))
        self.schedule(q)

    def _apply_rules(self, q: SimQueue, entry: Entry) -> None:
        """update_qe_rule: every rule whose time has come, then try the members again."""
        if entry not in q.entries:
            return
        waited = self.core.sim_elapsed(entry.joined) + 1e-6
        while entry.rules and entry.rules[0].time <= waited:
            change = entry.rules.pop(0)
            entry.max_penalty, entry.min_penalty = apply_change(
                entry.max_penalty, entry.min_penalty, change)
            for name, value in (("QUEUE_MAX_PENALTY", entry.max_penalty),
                                ("QUEUE_MIN_PENALTY", entry.min_penalty)):  # fmt: skip
                if value is not None:
                    entry.live.set_var(name, str(value))
        self.schedule(q)

    # -- ringing ---------------------------------------------------------------------------
    def schedule(self, q: SimQueue) -> None:
        self._pending.add(q.name)
        if self._soon is None:
            self._soon = asyncio.get_running_loop().call_soon(self._run_pending)

    def _run_pending(self) -> None:
        self._soon = None
        names, self._pending = self._pending, set()
        for name in names:
            q = self.core.queues.get(name)
            if q is not None:
                self.dispatch(q)

    def _member_free(self, interface: str) -> None:
        for q in self.core.queues_of(interface):
            self.schedule(q)

    def dispatch(self, q: SimQueue) -> None:
        entries = q.entries
        if not entries:
            return
        core = self.core
        now = core.now()
        waiting = [e for e in entries if not e.attempts and e.retry_until <= now]
        if not waiting:  # every caller is being rung or waits for its retry
            return
        ringing, device = self.ringing, core.device

        def is_free(m: Member) -> bool:
            return (not m.paused and now >= m.busy_until and m.interface not in ringing
                    and device.get(m.interface, NOT_INUSE) == NOT_INUSE)  # core.status

        for entry, m in q.assign(waiting, is_free, core.wall, core.rng):
            self._ring(q, entry, m)

    def _ring(self, q: SimQueue, entry: Entry, m: Member) -> None:
        core = self.core
        caller = entry.chan
        cid = (caller.cid_num, caller.cid_name)
        if m.interface.startswith("Local/"):
            exten, _, ctx = m.interface[6:].partition("@")
            one, two = core.local_pair(exten, ctx or "default", caller.linkedid, cid)
            core.exten(one, "AppQueue", "(Outgoing Line)")
            chans = [one, two]
        else:
            name = f"{m.interface}-{core.tech_number(m.interface.split('/')[0]):08x}"
            one = core.new_channel(name, caller.linkedid, "default", "s", cid_num=cid[0],
                                   cid_name=cid[1])
            chans = [one]
        attempt = Attempt(m, chans, core.now())
        entry.attempts[m.interface] = attempt
        self.ringing.add(m.interface)
        core.emit("AgentCalled", ev.AGENT, ev.agent, caller, one, q.name, m)
        core.emit("DialBegin", ev.CALL, ev.dial_begin, caller, one, m.interface)
        if len(chans) == 1:
            core.set_state(one, 5)
            core.set_device(m.interface, RINGING)
        op = core.operator(m.interface)
        if not op.no_answer and op.answer_after_s < q.config.timeout:
            attempt.timer = core.later(op.answer_after_s, self._answer, q, entry, attempt)
        else:
            attempt.timer = core.later(q.config.timeout, self._no_answer, q, entry, attempt)

    def _end_attempt(self, attempt: Attempt, status: str, caller: Channel) -> None:
        core = self.core
        if attempt.timer is not None:
            attempt.timer.cancel()
        self.ringing.discard(attempt.member.interface)
        core.emit("DialEnd", ev.CALL, ev.dial_end, caller, attempt.chans[0], status)
        for ch in reversed(attempt.chans):
            core.hangup(ch, soft=False, cause=16 if status == "CANCEL" else 19)
        if core.status(attempt.member.interface) == RINGING:
            core.set_device(attempt.member.interface, NOT_INUSE)
        else:
            self._member_free(attempt.member.interface)

    def _cancel_attempts(self, entry: Entry, keep: Attempt | None) -> None:
        for attempt in list(entry.attempts.values()):
            if attempt is not keep:
                del entry.attempts[attempt.member.interface]
                self._end_attempt(attempt, "CANCEL", entry.chan)

    def _no_answer(self, q: SimQueue, entry: Entry, attempt: Attempt) -> None:
        core = self.core
        if entry.attempts.get(attempt.member.interface) is not attempt:
            return
        del entry.attempts[attempt.member.interface]
        ring = int(core.sim_elapsed(attempt.started))
        core.emit("AgentRingNoAnswer", ev.AGENT, ev.agent, entry.chan, attempt.chans[0], q.name,
                  attempt.member, f"RingTime: {ring}\r\n")
        if not entry.attempts:
            entry.retry_until = core.now() + q.config.retry / core.opt.time_scale
            entry.timers.append(core.later(q.config.retry, self.schedule, q))
        self._end_attempt(attempt, "NOANSWER", entry.chan)

    def _answer(self, q: SimQueue, entry: Entry, attempt: Attempt) -> None:
        core = self.core
        if entry.attempts.get(attempt.member.interface) is not attempt or entry not in q.entries:
            return
        self._cancel_attempts(entry, attempt)
        self.ringing.discard(attempt.member.interface)
        for t in entry.timers:
            t.cancel()
        caller, one, m = entry.chan, attempt.chans[0], attempt.member
        for ch in reversed(attempt.chans):
            ch.update(conn_num=caller.cid_num, conn_name=caller.cid_name)
            core.set_state(ch, 6)
        core.emit("DialEnd", ev.CALL, ev.dial_end, caller, one, "ANSWER")
        core.emit("MusicOnHoldStop", ev.CALL, ev.moh, caller, False)
        core.set_var(caller, "MEMBERINTERFACE", m.interface)
        core.set_var(caller, "MEMBERNAME", m.name)
        pos = q.position(entry)
        q.entries.remove(entry)
        hold = int(core.sim_elapsed(entry.joined))
        q.record_hold(hold)
        core.device_change(f"Queue:{q.name}", "NOT_INUSE")
        core.emit("QueueCallerLeave", ev.AGENT, ev.caller_join_leave, caller, q.name, pos,
                  len(q.entries))
        core.set_device(m.interface, INUSE)
        m.in_call = True
        ring = int(core.sim_elapsed(attempt.started))
        core.emit("AgentConnect", ev.AGENT, ev.agent, caller, one, q.name, m,
                  f"HoldTime: {hold}\r\nRingTime: {ring}\r\n")
        bridge = _bridge_id(core)
        core.emit("BridgeCreate", ev.CALL, ev.bridge, bridge, 0)
        for n, ch in enumerate((one, caller), start=1):
            ch.update(bridge=bridge)
            core.emit("BridgeEnter", ev.CALL, ev.bridge, bridge, n, ch)
        entry.live.call.hold_time = hold
        assert entry.done is not None
        if not entry.done.done():
            entry.done.set_result(("answered", attempt))
        self.schedule(q)

    # -- after the conversation ------------------------------------------------------------
    def complete(self, q: SimQueue, entry: Entry, attempt: Attempt, reason: str,
                 talk: int) -> None:
        call = entry.live.call
        caller, dest = self._complete_blocks(entry.chan, attempt.chans[0], reason, talk)
        shape = "caller" if caller is not None else "none" if dest is None else "dest"
        call.agent_complete = shape
        self.core.emit("AgentComplete", ev.AGENT, ev.agent, caller, dest, q.name,
                       attempt.member,
                       f"HoldTime: {call.hold_time}\r\nTalkTime: {talk}\r\n"
                       f"Reason: {reason}\r\n")
        q.record_complete(call.hold_time, talk)

    def _complete_blocks(self, caller: Channel, member: Channel, reason: str,
                         talk: int) -> tuple[Channel | None, Channel | None]:
        """The caller's and the member's channel of an AgentComplete (None: no block). The
        member's snapshot (Dest*) is only there while its channel lives (see the recording);
        on a call that ended within a second, once the caller's channel is gone, the caller's
        block may be missing too, at the rates of `lost_caller_block`."""
        channels, lost = self.core.channels, self.lost_caller_block
        dest = member if member.name in channels else None
        if talk > lost.max_talk_s or caller.name in channels:
            return caller, dest
        rate = lost.caller_ends if reason == "caller" else lost.agent_ends
        if self._shapes.random() >= rate:
            return caller, dest
        return None, None if self._shapes.random() < lost.no_block else member

    def hangup_agent(self, attempt: Attempt, first_soft: bool) -> None:
        core = self.core
        chans = list(reversed(attempt.chans))  # the ;2 (operator's side) first
        for i, ch in enumerate(chans):
            if ch.bridge:
                core.emit("BridgeLeave", ev.CALL, ev.bridge, ch.bridge, 1, ch)
            core.hangup(ch, soft=first_soft and i == 0)

    def release_member(self, attempt: Attempt) -> None:
        core = self.core
        iface = attempt.member.interface
        wall = core.wall()
        for q in core.queues_of(iface):
            m = q.members[iface]
            wrap = m.wrapuptime or q.config.wrapuptime
            m.in_call = False
            if m is attempt.member:
                m.calls_taken += 1
                m.last_call = wall
            m.busy_until = core.now() + wrap / core.opt.time_scale
            if wrap:
                core.later(wrap, self.schedule, q)
        core.set_device(iface, NOT_INUSE)
