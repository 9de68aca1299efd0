"""An operator-first callback as Asterisk runs it (dialplan/extensions_ccrouter.conf
`ccrouter-callback-operator`, apps/app_dial.c, main/stasis_channels.c for UserEvent).

Originate (Async) rings the operator's interface (its Uniqueid is the Originate's ChannelId);
no answer within the Originate timeout: DialEnd NOANSWER, Hangup, OriginateResponse Failure
Reason 3 and the context never runs. Answered: OriginateResponse Success Reason 4, then the
context: Playback(${CCROUTER_WHISPER}), Dial(${CCROUTER_DIAL},${CCROUTER_DIAL_TIMEOUT}) to the
customer (a SimCustomer behind the trunk), Hangup(); whoever hangs up, the `h` extension runs on
the operator's channel and sends UserEvent(CcrouterCallback) with Card, DialStatus (DIALSTATUS)
and AnsweredTime (ANSWEREDTIME) before the operator's channel is gone (Hangup comes after).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping

from ccrouter import dialplan as dp

from . import events as ev
from . import recording
from .channel import Channel
from .core import INUSE, NOT_INUSE, RINGING, Core
from .model import SimCustomer, SimOperator
from .originate_request import OriginateRequest

_FAILED = {"busy": ("BUSY", 17), "congestion": ("CONGESTION", 34), "no_answer": ("NOANSWER", 19)}


async def operator_first_leg(
    core: Core, req: OriginateRequest, op: SimOperator, customers: Mapping[str, SimCustomer],
    cues: MutableMapping[str, asyncio.Event], answered: asyncio.Future[bool],
) -> None:  # fmt: skip
    scale = core.opt.time_scale
    cid = (req.cid_num, req.cid_name)
    tech = req.channel.split("/", 1)[0]
    ch = core.new_channel(f"{req.channel}-{core.tech_number(tech):08x}", None, req.context,
                          req.exten or "s", cid_num=cid[0], cid_name=cid[1],
                          uniqueid=req.channel_id)  # fmt: skip
    core.emit("DialBegin", ev.CALL, ev.dial_begin, None, ch, req.channel.split("/", 1)[1])
    core.set_state(ch, 5)
    core.set_device(req.channel, RINGING)
    try:
        if op.no_answer or op.answer_after_s > req.timeout_s:
            await asyncio.sleep(req.timeout_s / scale)
            core.emit("DialEnd", ev.CALL, ev.dial_end, None, ch, "NOANSWER")
            core.hangup(ch, cause=19)
            core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id,
                      False, req.channel, req.context, req.exten, req.app, req.data, 3,
                      "<unknown>", *cid)  # fmt: skip
            answered.set_result(False)
            return
        await asyncio.sleep(op.answer_after_s / scale)
        core.set_state(ch, 6)
        core.set_device(req.channel, INUSE)
        core.emit("DialEnd", ev.CALL, ev.dial_end, None, ch, "ANSWER")
        core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id, True,
                  ch.name, req.context, req.exten, req.app, req.data, 4, ch.uniqueid, *cid)
        answered.set_result(True)
        for k, v in req.variables:
            core.set_var(ch, k, v)
        core.exten(ch, "NoOp", f"ccrouter callback {ch.vars.get(dp.VAR_CARD, '')}", 1)
        whisper = ch.vars.get(dp.VAR_WHISPER, "")
        core.exten(ch, "ExecIf", f"{int(bool(whisper))}?Playback({whisper})", 2)
        if whisper:
            await asyncio.sleep(core.opt.prompt_s / scale)
        rec, path, priority = core.opt.recording, "", 3
        if rec is not None and rec.records("", ch.vars.get(dp.VAR_PRODUCT, "")):
            path = rec.path(ch.vars.get(dp.VAR_CARD, ""))  # Gosub(ccrouter-record,s,1)
            recording.start(core, ch, path, priority)
            priority += 1
        await _dial(core, ch, op, customers, cues, path, priority)
    finally:
        if not answered.done():
            answered.set_result(False)
        core.hangup(ch)
        if core.status(req.channel) != NOT_INUSE:
            core.set_device(req.channel, NOT_INUSE)


async def _dial(core: Core, ch: Channel, op: SimOperator, customers: Mapping[str, SimCustomer],
                cues: MutableMapping[str, asyncio.Event], recorded: str, priority: int
                ) -> None:  # fmt: skip
    """Dial(${CCROUTER_DIAL},${CCROUTER_DIAL_TIMEOUT}), Hangup(), then the h extension; the
    `recorded` MixMonitor file (option b) is written once the customer is bridged."""
    scale = core.opt.time_scale
    dial, timeout = ch.vars.get(dp.VAR_DIAL, ""), float(ch.vars.get(dp.VAR_DIAL_TIMEOUT) or 0)
    core.exten(ch, "Dial", f"{dial},{ch.vars.get(dp.VAR_DIAL_TIMEOUT, '')}", priority)
    tech, _, data = dial.partition("/")
    number = data.split("@", 1)[0]
    customer = customers.get(number) or SimCustomer(number)
    status, talk = "CHANUNAVAIL", ""
    if customer.answer != "fail":
        endpoint = data.split("@", 1)[1] if "@" in data else data
        cust = core.new_channel(f"{tech}/{endpoint}-{core.tech_number(tech):08x}", ch.linkedid,
                                "default", "s", cid_num=ch.cid_num, cid_name=ch.cid_name)
        core.emit("DialBegin", ev.CALL, ev.dial_begin, ch, cust, data)
        core.set_state(cust, 5)
        how, wait = customer.answer, customer.answer_after_s
        if how == "no_answer" or (how == "answer" and wait > timeout):
            how, wait = "no_answer", timeout
        if how == "on_cue":
            cue = cues.setdefault(number, asyncio.Event())
            try:
                async with asyncio.timeout(timeout / scale):
                    await cue.wait()
                how, wait = "answer", 0.0
            except TimeoutError:
                how, wait = "no_answer", 0.0
            finally:
                cues.pop(number, None)
        await asyncio.sleep(wait / scale)
        if how != "answer":
            status, cause = _FAILED.get(how, ("NOANSWER", 19))
            core.emit("DialEnd", ev.CALL, ev.dial_end, ch, cust, status)
            core.hangup(cust, cause=cause)
        else:
            status = "ANSWER"
            core.set_state(cust, 6)
            core.emit("DialEnd", ev.CALL, ev.dial_end, ch, cust, status)
            if recorded and core.opt.recording is not None:
                core.opt.recording.write_file(recorded)
            await asyncio.sleep(op.talk_time_s / scale)
            talk = str(int(op.talk_time_s))
            if not op.hangs_up:  # the customer hangs up first: Dial returns
                core.hangup(cust)
    if status != "ANSWER" or not op.hangs_up:  # Dial returned: Hangup() -> h
        core.exten(ch, "Hangup", "", priority + 1)
    core.set_var(ch, "DIALSTATUS", status)
    core.set_var(ch, "ANSWEREDTIME", talk)
    ch.update(exten="h")
    card = ch.vars.get(dp.VAR_CARD, "")
    body = f"Card: {card},DialStatus: {status},AnsweredTime: {talk}"
    core.exten(ch, "UserEvent", f"{dp.USER_EVENT_CALLBACK},{body}", 1)
    core.emit("UserEvent", ev.USER, ev.user_event, ch, dp.USER_EVENT_CALLBACK,
              (("Card", card), ("DialStatus", status), ("AnsweredTime", talk)))
    for other in [c for c in core.channels.values() if c.linkedid == ch.linkedid and c is not ch]:
        core.hangup(other)
