"""Operators transferring the caller from their phone (SIP REFER), in the order Asterisk 22 sends
the events. No transcript of a transfer was recorded: the shapes and order come from its source.

Blind (main/bridge.c `ast_bridge_transfer_blind`, two-party bridge): the transferee is queued a
goto (BLINDTRANSFER set on it), the transferer is removed from the bridge (BridgeLeave), then
`BlindTransfer` is published with the bridge snapshot taken before the removal; the caller
leaves the bridge for `<exten>@ccrouter-inbound`; app_queue answers the transfer with
`AgentComplete` `Reason: transfer` (apps/app_queue.c `handle_blind_transfer`); the phone hangs
up its leg. The caller then runs the dialplan from there, on the same channel.

Attended (main/bridge.c `two_bridge_attended_transfer`, the bridges merged into the caller's):
the operator puts the caller on hold and calls the target on a second channel of their phone;
on completion both operator channels leave, the target moves into the caller's bridge,
`AttendedTransfer` (DestType Bridge) is published, then app_queue's `AgentComplete` `Reason:
transfer` (`handle_attended_transfer`), and the phone hangs up both its legs. MixMonitor stays
on the caller's channel and goes on writing the same file.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ccrouter import dialplan as dp

from . import events as ev
from . import recording
from .channel import Channel
from .core import INUSE, NOT_INUSE, Core
from .engine import _bridge_id
from .model import Outcome, SimOperator, SimTransfer

if TYPE_CHECKING:
    from .calls import LiveCall
    from .queues import Attempt, Entry, SimQueue


def planned(core: Core, op: SimOperator) -> SimTransfer | None:
    """The transfer `op` makes of the call just answered, if any (drawn by `share`)."""
    plan = op.transfer
    if plan is None or plan.share <= 0.0:
        return None
    if plan.share < 1.0 and core.rng.random() >= plan.share:
        return None
    return plan


async def run(live: LiveCall, q: SimQueue, entry: Entry, attempt: Attempt, plan: SimTransfer,
              started: float) -> Outcome:  # fmt: skip
    if plan.kind == "blind":
        _blind(live, q, entry, attempt, plan, started)
        return "answered"
    return await _attended(live, q, entry, attempt, plan, started)


def _blind(live: LiveCall, q: SimQueue, entry: Entry, attempt: Attempt, plan: SimTransfer,
           started: float) -> None:  # fmt: skip
    core, chan, engine = live.core, live.chan, live.engine
    member = attempt.chans[0]
    talk = int(core.sim_elapsed(started))
    live.call.talk_time = talk
    live.call.transfers.append(f"blind:{plan.to}")
    bridge = chan.bridge
    core.set_var(chan, "BLINDTRANSFER", member.name)
    core.emit("BridgeLeave", ev.CALL, ev.bridge, bridge, 1, member)
    member.update(bridge="")
    core.emit("BlindTransfer", ev.CALL, ev.blind_transfer, member, chan, bridge, 2,
              dp.CONTEXT_INBOUND, plan.to)
    core.emit("BridgeLeave", ev.CALL, ev.bridge, bridge, 0, chan)
    chan.update(bridge="")
    core.emit("BridgeDestroy", ev.CALL, ev.bridge, bridge, 0)
    engine.complete(q, entry, attempt, "transfer", talk)
    for ch in reversed(attempt.chans):
        core.hangup(ch, soft=False)
    engine.release_member(attempt)
    live.blind_to = plan.to


async def _attended(live: LiveCall, q: SimQueue, entry: Entry, attempt: Attempt,
                    plan: SimTransfer, started: float) -> Outcome:  # fmt: skip
    core, chan, engine = live.core, live.chan, live.engine
    first = attempt.chans[0]
    target = core.operator(plan.to)
    core.emit("MusicOnHoldStart", ev.CALL, ev.moh, chan, True)  # the phone put the caller on hold
    second = core.new_channel(f"{attempt.member.interface}-"
                              f"{core.tech_number(attempt.member.interface.split('/')[0]):08x}",
                              None, "default", plan.to.rsplit("/", 1)[-1], state=4,
                              cid_num=first.name.split("/")[-1].split("-")[0])  # fmt: skip
    dest = core.new_channel(f"{plan.to}-{core.tech_number(plan.to.split('/')[0]):08x}",
                            second.linkedid, "default", "s", state=5)  # fmt: skip
    core.emit("DialBegin", ev.CALL, ev.dial_begin, second, dest, plan.to)
    core.set_device(plan.to, INUSE)
    if not await _wait(live, target.answer_after_s):
        return await _hung_up_on_hold(live, q, entry, attempt, started, [dest, second])
    core.set_state(dest, 6)
    core.emit("DialEnd", ev.CALL, ev.dial_end, second, dest, "ANSWER")
    consult = _bridge_id(core)
    core.emit("BridgeCreate", ev.CALL, ev.bridge, consult, 0)
    for n, ch in enumerate((second, dest), start=1):
        ch.update(bridge=consult)
        core.emit("BridgeEnter", ev.CALL, ev.bridge, consult, n, ch)
    if not await _wait(live, plan.consult_s):
        return await _hung_up_on_hold(live, q, entry, attempt, started, [dest, second])
    talk = int(core.sim_elapsed(started))
    live.call.talk_time = talk
    live.call.transfers.append(f"attended:{plan.to}")
    bridge = chan.bridge
    core.set_var(chan, "ATTENDEDTRANSFER", first.name)
    for ch, b, left in ((first, bridge, 1), (second, consult, 1), (dest, consult, 0)):
        core.emit("BridgeLeave", ev.CALL, ev.bridge, b, left, ch)
    dest.update(bridge=bridge)
    core.emit("BridgeEnter", ev.CALL, ev.bridge, bridge, 2, dest)
    core.emit("BridgeDestroy", ev.CALL, ev.bridge, consult, 0)
    core.emit("AttendedTransfer", ev.CALL, ev.attended_transfer, first, bridge, second, consult,
              chan, dest)
    core.emit("MusicOnHoldStop", ev.CALL, ev.moh, chan, False)
    engine.complete(q, entry, attempt, "transfer", talk)
    for ch in [*reversed(attempt.chans), second]:
        ch.update(bridge="")
        core.hangup(ch, soft=False)
    engine.release_member(attempt)
    live.call.operator = plan.to
    caller_left = not await _wait(live, target.talk_time_s)
    if live.recording and core.opt.recording is not None:  # the same file, now longer
        rec = core.opt.recording
        recording.write(rec.local(live.recording), 2 * rec.seconds)
    if caller_left or not target.hangs_up:  # the caller hangs up: the target's leg goes too
        live.dead.set()
        live._hangup_caller_side(caller_first=True)
        core.emit("BridgeLeave", ev.CALL, ev.bridge, bridge, 0, dest)
    else:  # the target hangs up: the caller's Queue() returns, its dialplan goes on
        core.emit("BridgeLeave", ev.CALL, ev.bridge, bridge, 1, dest)
        core.emit("BridgeLeave", ev.CALL, ev.bridge, bridge, 0, chan)
        chan.update(bridge="")
    dest.update(bridge="")
    core.hangup(dest, soft=False)
    core.emit("BridgeDestroy", ev.CALL, ev.bridge, bridge, 0)
    core.set_device(plan.to, NOT_INUSE)
    return "answered"


async def _hung_up_on_hold(live: LiveCall, q: SimQueue, entry: Entry, attempt: Attempt,
                           started: float, consult: list[Channel]) -> Outcome:  # fmt: skip
    """The caller hung up while on hold: app_queue's AgentComplete says caller."""
    core = live.core
    for ch in consult:
        core.hangup(ch, soft=False)
    talk = int(core.sim_elapsed(started))
    live.call.talk_time = talk
    live._hangup_caller_side(caller_first=True)
    live.engine.complete(q, entry, attempt, "caller", talk)
    live.engine.hangup_agent(attempt, first_soft=False)
    live.engine.release_member(attempt)
    core.set_device(consult[0].name.rsplit("-", 1)[0], NOT_INUSE)
    return "answered"


async def _wait(live: LiveCall, seconds: float) -> bool:
    """`seconds` of simulated time; False when the caller hung up meanwhile."""
    live.talk = asyncio.get_running_loop().create_future()
    timer = live.core.later(seconds, live.talk_over, "on")
    try:
        who = await live.talk
    finally:
        timer.cancel()
    return who != "caller"
