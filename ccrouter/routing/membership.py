"""Membership sync: Asterisk's queue members and penalties kept equal to the skills matrix.

Desired state = the configured operators with the database's login/pause/skills state
(`OperatorService`), mapped by `domain.skills` to members of the target queues (and each
operator's personal last-agent queue). Actual state = Asterisk's: read with QueueStatus after
every AMI (re)connect, then kept current from QueueMember* events. Whenever they differ the
service sends exactly the difference (QueueRemove, QueueAdd, QueuePenalty, QueuePause with the
reason). Only the queues ccrouter generates are managed.

A change made in Asterisk behind ccrouter's back (an event that moves a member away from the
desired state) is logged as `membership_manual_change` and, per `routing.manual_changes`,
reverted, or adopted: a pause/unpause becomes the operator's state (written to the database);
another change is left alone until that operator's state changes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import structlog

from ccrouter.config import Settings
from ccrouter.dialplan import PAUSE_STATIC_LOGGED_OUT
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.translate import BadEvent, member_from_status_item
from ccrouter.routing.model.skills import (
    Action,
    Add,
    Key,
    Member,
    OperatorState,
    Remove,
    SetPause,
    SetPenalty,
    TargetSkills,
    membership_diff,
    operator_members,
    personal_queue,
    same_member,
)
from ccrouter.routing.state import OperatorService

log = structlog.get_logger(__name__)

NOT_INUSE = 1
"""Device state "not in use" (QueueMember Status): a free operator."""

MAX_IN_FLIGHT = 64
"""Membership actions awaiting their reply at once. A floor of thousands of operators means
tens of thousands of QueueAdds at start-up: one round trip at a time, that is minutes."""


class AmiSender(Protocol):
    connected: bool

    async def send(
        self, action: Mapping[str, Any], *, as_list: bool = False, timeout: float | None = None
    ) -> Any: ...


def ami_actions(action: Action) -> list[dict[str, str]]:
    """The AMI action(s) for one membership change (header names as in ami-actions.txt)."""
    if isinstance(action, Add):
        m = action.member
        out = [{"Action": "QueueAdd", "Queue": m.queue, "Interface": m.interface,
                "Penalty": str(m.penalty), "Paused": "true" if m.paused else "false",
                "MemberName": m.name or m.interface,
                "StateInterface": m.state_interface or m.interface}]  # fmt: skip
        if m.paused and m.reason:  # QueueAdd has no Reason: set it with QueuePause
            out.append({"Action": "QueuePause", "Queue": m.queue, "Interface": m.interface,
                        "Paused": "true", "Reason": m.reason})  # fmt: skip
        return out
    if isinstance(action, Remove):
        return [{"Action": "QueueRemove", "Queue": action.queue, "Interface": action.interface}]
    if isinstance(action, SetPenalty):
        return [{"Action": "QueuePenalty", "Interface": action.interface,
                 "Penalty": str(action.penalty), "Queue": action.queue}]  # fmt: skip
    pause = {"Action": "QueuePause", "Queue": action.queue, "Interface": action.interface,
             "Paused": "true" if action.paused else "false"}  # fmt: skip
    if action.paused and action.reason:
        pause["Reason"] = action.reason
    return [pause]


def _member(m: ev.MemberState) -> Member:
    return Member(m.queue, m.interface, m.penalty, m.paused, m.paused_reason, m.member_name,
                  m.state_interface, m.membership != "static", m.status, m.in_call)  # fmt: skip


class MembershipService:
    def __init__(
        self,
        settings: Settings,
        operators: OperatorService,
        ami: AmiSender,
        targets: list[TargetSkills],
    ) -> None:
        r = settings.routing
        self._operators = operators
        self._ami = ami
        self._targets = targets
        self._personal = r.last_agent.enabled
        self._policy = r.manual_changes
        self._static = r.static_member_keys()  # queues.conf members: paused, never removed
        self._poll_s = r.state_poll_s
        self._timeout = max(settings.ami.action_timeout_s, 10.0)
        self.states: dict[str, OperatorState] = {}
        self.desired: dict[Key, Member] = {}
        self.actual: dict[Key, Member] = {}
        self.synced = False
        """True once QueueStatus was read on the current AMI connection."""
        self.managed = {t.queue for t in targets}
        self._adopted: set[Key] = set()
        self._adopt_pauses: dict[str, tuple[bool, str]] = {}
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._version = -1
        self._by_operator: dict[str, list[Member]] = {}
        self._by_interface: dict[str, list[str]] = {}  # interface -> operator ids
        self._per_queue: Counter[str] = Counter()  # queue -> members in `actual`
        self._staffed: frozenset[str] | None = None  # cached `staffed()`; None: recompute
        self._stale = True
        """Desired or actual members changed in a way that may need actions: `_apply` diffs
        only then (a diff of tens of thousands of members on every poll is not free)."""
        self.actions_sent = 0
        self.last_resync_diff_s = 0.0

    @property
    def applying(self) -> bool:
        """Actions are being sent and not all of their replies are in yet."""
        return self._lock.locked()

    @property
    def version(self) -> int:
        """The operator-state version the desired members were computed from."""
        return self._version

    # --- desired state ----------------------------------------------------------------------

    async def load(self) -> None:
        """(Re)load operator state from the database and recompute the desired members."""
        version = await self._operators.store.version()
        states = await self._operators.states()
        changed = {i for i, s in states.items() if self.states.get(i) != s}
        self.states = states
        self._by_interface = {}
        for op in states.values():
            self._by_interface.setdefault(op.interface, []).append(op.id)
        if self._personal:
            self.managed |= {personal_queue(i) for i in states}
        self._adopted = {k for k in self._adopted if self._owner(k) not in changed}
        for i in changed:  # only the operators that changed are recomputed
            self._by_operator[i] = operator_members(states[i], self._targets,
                                                    personal=self._personal)  # fmt: skip
        self.desired = {m.key: m for members in self._by_operator.values() for m in members}
        self._version = version
        self._stale = True
        self._dirty.set()

    def _owner(self, key: Key) -> str | None:
        owners = self._by_interface.get(key[1])
        return owners[0] if owners else None

    # --- what the router asks -----------------------------------------------------------------

    def staffed(self) -> frozenset[str] | None:
        """Queues with at least one logged-in member (Asterisk's view; None before a sync)."""
        if not self.synced or not self._ami.connected:
            return None
        if self._staffed is None:
            self._staffed = frozenset(self._per_queue)
        return self._staffed

    def free_personal_queue(self, interface: str) -> str | None:
        """The personal queue of the operator on `interface` if logged in, unpaused and free."""
        if not self._personal or not self.synced or not self._ami.connected:
            return None
        for op_id in self._by_interface.get(interface, ()):
            m = self.actual.get((personal_queue(op_id), interface))
            if m is not None and not m.paused and not m.in_call and m.status == NOT_INUSE:
                return m.queue
        return None

    # --- Asterisk's state -----------------------------------------------------------------------

    async def resync(self, ami: AmiSender) -> None:
        """After every AMI (re)connect: read QueueStatus, apply exactly the difference."""
        self.synced = False
        items = await ami.send({"Action": "QueueStatus"}, as_list=True, timeout=self._timeout)
        actual: dict[Key, Member] = {}
        now = time.time()
        for item in items:
            if item.get("Event") != "QueueMember":
                continue
            try:
                m = _member(member_from_status_item(item, now))
            except BadEvent as e:
                log.warning("membership_bad_status_item", error=str(e))
                continue
            if m.queue in self.managed:
                actual[m.key] = m
        self._replace_actual(actual)
        self.synced, self._stale = True, True
        started = time.perf_counter()
        diff = membership_diff(self.desired, actual, self.managed, leave_alone=self._adopted)
        self.last_resync_diff_s = time.perf_counter() - started
        log.info("membership_resync", members=len(actual), desired=len(self.desired),
                 actions=len(diff.actions))  # fmt: skip
        await self._apply()

    def on_event(self, event: ev.DomainEvent) -> None:
        """Tracker listener: QueueMember* events keep `actual` current and reveal manual changes."""
        if isinstance(event, ev.MemberAdded | ev.MemberChanged):
            after: Member | None = _member(event.member)
        elif isinstance(event, ev.MemberRemoved):
            after = None
        else:
            return
        key = (event.member.queue, event.member.interface)
        if key[0] not in self.managed:
            return
        before, want = self.actual.get(key), self.desired.get(key)
        if after is None:
            self._pop_actual(key)
        else:
            self._put_actual(key, after)
        if (before is None or after is None or not same_member(before, after)
                or before.dynamic != after.dynamic):  # fmt: skip
            self._stale = True  # not a mere status change (in call, ringing, free)
        if not self.synced or key in self._adopted:
            return
        if same_member(before, want) and not same_member(after, want):
            self._manual_change(key, before, after)

    def _manual_change(self, key: Key, before: Member | None, after: Member | None) -> None:
        what = ("removed" if after is None else "added" if before is None
                else "paused" if after.paused and not (before.paused) else
                "unpaused" if before.paused and not after.paused else "penalty")  # fmt: skip
        log.warning("membership_manual_change", queue=key[0], interface=key[1], change=what,
                    policy=self._policy)  # fmt: skip
        if self._policy == "adopt":
            owner = self._owner(key)
            if owner is not None and what in ("paused", "unpaused") and after is not None:
                self._adopt_pauses[owner] = (after.paused, after.reason)
            else:
                self._adopted.add(key)
        self._stale = True
        self._dirty.set()

    # --- applying -------------------------------------------------------------------------------

    async def _apply(self) -> None:
        async with self._lock:
            if not self.synced or not self._ami.connected or not self._stale:
                return
            self._stale = False  # set again by a failed action or a change meanwhile
            diff = membership_diff(self.desired, self.actual, self.managed,
                                   leave_alone=self._adopted)  # fmt: skip
            idle = [SetPause(*key, True, PAUSE_STATIC_LOGGED_OUT) for key in diff.static_extra
                    if key in self._static and not self.actual[key].paused]  # fmt: skip
            for key in diff.static_extra:
                if key not in self._static:
                    log.warning("membership_static_member", queue=key[0], interface=key[1],
                                hint="member => in queues.conf; AMI cannot remove it")  # fmt: skip
            await self._send_all([*diff.actions, *idle])

    async def _send_all(self, actions: Sequence[Action]) -> None:
        """Send `actions`, up to MAX_IN_FLIGHT awaiting their replies at once; the actions of
        one member stay in order. Stops early when the AMI connection drops (the resync after
        the reconnect sends what is still missing)."""
        chains: dict[Key, list[Action]] = {}
        for action in actions:
            key = action.member.key if isinstance(action, Add) else (action.queue,
                                                                     action.interface)
            chains.setdefault(key, []).append(action)
        todo = deque(chains.values())

        async def worker() -> None:
            while todo and self._ami.connected:
                for action in todo.popleft():
                    await self._send(action)

        async with asyncio.TaskGroup() as tg:
            for _ in range(min(MAX_IN_FLIGHT, len(todo))):
                tg.create_task(worker())
        if todo:
            self._stale = True

    async def _send(self, action: Action) -> None:
        for msg in ami_actions(action):
            try:
                await self._ami.send(msg)
            except Exception as e:  # one failed action must not stop the rest
                log.warning("membership_action_failed", action=msg["Action"],
                            queue=msg.get("Queue"), interface=msg.get("Interface"), error=str(e))
                self._stale = True  # tried again on the next round
                return
            self.actions_sent += 1
        self._assume(action)
        log.info("membership_action", action=type(action).__name__, **_describe(action))

    def _assume(self, action: Action) -> None:
        """Record a successful action's effect (its event may lag; a later event overrides)."""
        if isinstance(action, Add):
            self._put_actual(action.member.key, action.member)
            return
        key = (action.queue, action.interface)
        if isinstance(action, Remove):
            self._pop_actual(key)
            return
        m = self.actual.get(key)
        if m is None:
            return
        if isinstance(action, SetPenalty):
            self._put_actual(key, Member(m.queue, m.interface, action.penalty, m.paused,
                                         m.reason, m.name, m.state_interface, m.dynamic,
                                         m.status, m.in_call))  # fmt: skip
        else:
            self._put_actual(key, Member(m.queue, m.interface, m.penalty, action.paused,
                                         action.reason, m.name, m.state_interface, m.dynamic,
                                         m.status, m.in_call))  # fmt: skip

    # `actual` changes only here, so the per-queue counts behind `staffed()` stay exact.
    def _put_actual(self, key: Key, member: Member) -> None:
        if key not in self.actual:
            self._per_queue[key[0]] += 1
            if self._per_queue[key[0]] == 1:
                self._staffed = None
        self.actual[key] = member

    def _pop_actual(self, key: Key) -> None:
        if self.actual.pop(key, None) is not None:
            self._per_queue[key[0]] -= 1
            if not self._per_queue[key[0]]:
                del self._per_queue[key[0]]
                self._staffed = None

    def _replace_actual(self, actual: dict[Key, Member]) -> None:
        self.actual = actual
        self._per_queue = Counter(q for q, _ in actual)
        self._staffed = None

    def wake(self) -> None:
        """Look for operator changes now (a NOTIFY said one was written), not at the poll."""
        self._dirty.set()

    async def run(self) -> None:
        """Pick up operator changes (CLI/API writes to the database) and converge."""
        await self.load()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self._poll_s)
            self._dirty.clear()
            try:
                await self._adopt()
                if await self._operators.store.version() != self._version:
                    await self.load()
                    self._dirty.clear()
                await self._apply()
            except Exception:  # a database or AMI hiccup: retry next round
                log.exception("membership_sync_failed")

    async def _adopt(self) -> None:
        pauses, self._adopt_pauses = self._adopt_pauses, {}
        for op_id, (paused, reason) in pauses.items():
            if paused:
                await self._operators.pause(op_id, reason, by="asterisk")
            else:
                await self._operators.unpause(op_id, by="asterisk")


def _describe(action: Action) -> dict[str, Any]:
    if isinstance(action, Add):
        m = action.member
        return {"queue": m.queue, "interface": m.interface, "penalty": m.penalty,
                "paused": m.paused}  # fmt: skip
    if isinstance(action, Remove):
        return {"queue": action.queue, "interface": action.interface}
    if isinstance(action, SetPenalty):
        return {"queue": action.queue, "interface": action.interface, "penalty": action.penalty}
    assert isinstance(action, SetPause)
    return {"queue": action.queue, "interface": action.interface, "paused": action.paused,
            "reason": action.reason}  # fmt: skip
