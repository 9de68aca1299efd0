"""An Originate with `Application: ChanSpy` on a supervisor's phone, as Asterisk runs it and
the recorded transcript (`ami-chanspy.txt`) shows: the phone rings and answers
(`OriginateResponse` Reason 4), ChanSpy (Data `<chanprefix>,<options>`) picks the channel —
with option `u` the channel of exactly that name or uniqueid, else the first whose name starts
with the prefix —, `ChanSpyStart` (Spyer*/Spyee* snapshots); when the spied-on channel hangs up
(option `E`) `ChanSpyStop` comes right before that channel's `Hangup`, then the spying channel
hangs up with Cause 0. ChanSpy finding no channel ends at once (no ChanSpy events).
"""

from __future__ import annotations

import asyncio

from . import events as ev
from .channel import Channel
from .core import Core
from .model import SimPhone
from .originate_request import OriginateRequest


def _spyee(core: Core, spec: str, options: str, spyer: list[Channel]) -> Channel | None:
    if "u" in options:
        found = core.channels.get(spec)
        if found is None:
            found = next((c for c in core.channels.values() if c.uniqueid == spec), None)
        return None if found in spyer else found
    return next((c for name, c in core.channels.items()
                 if name.startswith(spec) and c not in spyer), None)  # fmt: skip


async def chanspy_leg(core: Core, req: OriginateRequest, phone: SimPhone) -> None:
    cid = (req.cid_num, req.cid_name)
    if req.channel.startswith("Local/"):
        exten, _, ctx = req.channel[6:].partition("@")
        chans = list(core.local_pair(exten, ctx or "default", None, cid))
    else:
        name = f"{req.channel}-{core.tech_number(req.channel.split('/')[0]):08x}"
        chans = [core.new_channel(name, None, "default", "s", cid_num=cid[0], cid_name=cid[1])]
    one = chans[0]
    core.emit("DialBegin", ev.CALL, ev.dial_begin, None, one, req.channel.split("/", 1)[1])
    cause = 0
    try:
        if phone.no_answer or phone.answer_after_s > req.timeout_s:
            await asyncio.sleep(req.timeout_s / core.opt.time_scale)
            core.emit("DialEnd", ev.CALL, ev.dial_end, None, one, "NOANSWER")
            core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id,
                      False, req.channel, req.context, req.exten, req.app, req.data, 3,
                      one.uniqueid, *cid)
            cause = 19
            return
        await asyncio.sleep(phone.answer_after_s / core.opt.time_scale)
        for ch in chans:
            core.set_state(ch, 6)
        core.emit("DialEnd", ev.CALL, ev.dial_end, None, one, "ANSWER")
        core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id, True,
                  one.name, req.context, req.exten, req.app, req.data, 4, one.uniqueid, *cid)
        core.exten(one, req.app, req.data, 1)
        spec, _, options = req.data.partition(",")
        spyee = _spyee(core, spec, options, chans)
        if spyee is None:
            return
        core.emit("ChanSpyStart", ev.CALL, ev.chanspy, one, spyee)
        done = asyncio.Event()

        def spyee_gone(ch: Channel) -> None:
            core.emit("ChanSpyStop", ev.CALL, ev.chanspy, one, ch)
            done.set()

        core.hangup_watchers.setdefault(spyee.name, []).append(spyee_gone)
        try:
            async with asyncio.timeout(None if phone.hangs_up_after_s is None
                                       else phone.hangs_up_after_s / core.opt.time_scale):
                await done.wait()
        except TimeoutError:  # the supervisor hung up first
            watchers = core.hangup_watchers.get(spyee.name, [])
            if spyee_gone in watchers:
                watchers.remove(spyee_gone)
            core.emit("ChanSpyStop", ev.CALL, ev.chanspy, one, spyee)
            cause = 16
    finally:
        for ch in reversed(chans):
            core.hangup(ch, soft=ch is not one, cause=cause)
