"""`Local/s@ccrouter-doctor`, the test call `ccrouter doctor` originates, as Asterisk runs the
generated context: Set(CCROUTER_CARD=doctor), AGI(agi://host:port/ping), UserEvent
(CcrouterDoctor, AgiStatus, Ping), Hangup(). Without that context loaded (`load_extensions`)
the Local channel cannot be created: OriginateResponse Failure, Reason 0 (core_local.c finds
no extension). The ;1 half runs the Originate's application (Wait: no phone rings).
"""

from __future__ import annotations

from ccrouter import dialplan as dp

from . import events as ev
from .agi import AgiSession, run_with_failover
from .call_channel import CallChannel
from .core import Core
from .model import SimCaller
from .originate_request import OriginateRequest


async def doctor_leg(core: Core, req: OriginateRequest, loaded: bool) -> None:
    cid = (req.cid_num, req.cid_name)
    if not loaded:
        core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id, False,
                  req.channel, req.context, req.exten, req.app, req.data, 0, "<unknown>", *cid)
        return
    one, two = core.local_pair("s", dp.CONTEXT_DOCTOR, None, cid)
    leg = CallChannel(core, SimCaller(number=req.cid_num, name=req.cid_name, dialled="s"), two)
    try:
        for ch in (one, two):
            core.set_state(ch, 6)
        core.emit("OriginateResponse", ev.CALL, ev.originate_response, req.action_id, True,
                  one.name, req.context, req.exten, req.app, req.data, 4, one.uniqueid, *cid)
        core.exten(one, req.app or "Wait", req.data, 1)
        core.exten(two, "NoOp", "ccrouter doctor test call", 1)
        core.exten(two, "Set", f"{dp.VAR_CARD}={dp.DOCTOR_CARD}", 2)
        leg.set_var(dp.VAR_CARD, dp.DOCTOR_CARD)
        status = await run_with_failover(
            core.agi_addresses(), lambda: AgiSession(leg, 0.0, core.opt.agi_timeout_s),
            dp.SCRIPT_PING, [], lambda url: core.exten(two, "AGI", url, 3))  # fmt: skip
        leg.set_var("AGISTATUS", status)
        body = (("AgiStatus", status), ("Ping", leg.get_var(dp.VAR_PING) or ""))
        core.exten(two, "UserEvent", f"{dp.USER_EVENT_DOCTOR},AgiStatus: {status},"
                                     f"Ping: {body[1][1]}", 4)
        core.emit("UserEvent", ev.USER, ev.user_event, two, dp.USER_EVENT_DOCTOR, body)
        core.exten(two, "Hangup", "", 5)
    finally:
        core.hangup(two)
        core.hangup(one)
