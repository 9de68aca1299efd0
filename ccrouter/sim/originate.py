"""Where an AMI Originate goes, and the legs it rings (mirror of what Asterisk's
`action_originate` and the channel drivers do).

A `<Tech>/<number>` that is a `SimCustomer` behind the trunk (or any number with the
`ccrouter-callback` context) rings that customer; `Local/<exten>@ccrouter-inbound` places a
Local inbound call shaped by SIM_PATIENCE/SIM_HANGUP_AFTER/SIM_DTMF; an operator interface
rings that operator (operator-first callbacks: `callback_leg.py`); a supervisor's phone
(`SimPhone`) runs the Originate's ChanSpy (`spy_leg.py`); anything else fails with
OriginateResponse Reason 0. Every Originate is kept in `originated`, every customer leg that
answered in `customer_calls`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ccrouter import dialplan as dp

from . import events as ev
from .callback_leg import operator_first_leg
from .calls import LiveCall, OriginateInfo
from .core import INUSE, NOT_INUSE, Core
from .doctor_leg import doctor_leg
from .engine import QueueEngine
from .model import SimCall, SimCaller, SimCustomer
from .originate_request import OriginateRequest
from .spy_leg import chanspy_leg

Spawn = Callable[[Coroutine[Any, Any, None]], None]
PlaceCall = Callable[[SimCaller, OriginateInfo], SimCall]


class OriginateLegs:
    """Answers Originate actions: picks the leg, rings it and runs it as a task."""

    def __init__(self, core: Core, engine: QueueEngine, spawn: Spawn,
                 place_call: PlaceCall) -> None:
        self._core = core
        self._engine = engine
        self._spawn = spawn
        self._place_call = place_call
        self.customers: dict[str, SimCustomer] = {}
        self.cues: dict[str, asyncio.Event] = {}
        """`on_cue` customers whose phone rings, by number (`PbxSimulator.pick_up`)."""
        self.originated: list[OriginateRequest] = []
        self.customer_calls: list[SimCall] = []

    async def originate(self, req: OriginateRequest) -> bool:
        core = self._core
        self.originated.append(req)
        tech_data = req.channel.split("/", 1)[1]
        exten, _, ctx = tech_data.partition("@")
        phone = core.phones.get(req.channel)
        if phone is not None and req.app.lower() == "chanspy":  # a supervisor listens in
            self._spawn(chanspy_leg(core, req, phone))
            return True
        customer = self.customers.get(exten)
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
        if req.channel.startswith("Local/") and ctx == dp.CONTEXT_DOCTOR:
            loaded = dp.CONTEXT_DOCTOR in core.dialplan
            self._spawn(doctor_leg(core, req, loaded))
            return loaded
        if req.channel.startswith("Local/") and ctx == dp.CONTEXT_INBOUND:
            vars_ = dict(req.variables)
            caller = SimCaller(
                number=req.cid_num, name=req.cid_name, dialled=exten, local=True,
                patience_s=float(vars_.get("SIM_PATIENCE", 60)),
                dtmf=tuple(d for d in vars_.get("SIM_DTMF", "").split(";") if d),
                hangs_up_after_s=float(req.data) if req.app.lower() == "wait" and req.data
                else (float(vars_["SIM_HANGUP_AFTER"]) if "SIM_HANGUP_AFTER" in vars_ else None))
            info = OriginateInfo(req.action_id, req.context, req.exten, req.app, req.data)
            call = self._place_call(caller, info)
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
                                           self.customers, self.cues, answered))
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
                cue = self.cues.setdefault(customer.number, asyncio.Event())
                try:
                    async with asyncio.timeout(req.timeout_s / core.opt.time_scale):
                        await cue.wait()
                    how, wait = "answer", 0.0
                except TimeoutError:
                    how, wait = "no_answer", 0.0
                finally:
                    self.cues.pop(customer.number, None)
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
