"""One inbound call through the ccrouter dialplan (mirror of dialplan/extensions_ccrouter.conf):

Answer(); Set(CCROUTER_STATUS=); AGI(agi://host:port/route,did=${EXTEN});
CCROUTER_STATUS != ok -> ccrouter-fallback (queue `fallback_queue` if it exists, else hang up);
else Queue(${CCROUTER_QUEUE},,,,${CCROUTER_QUEUE_TIMEOUT}) honouring QUEUE_PRIO and
QUEUE_MIN/MAX_PENALTY; then hang up. The call's channels and what its AGI sessions see of
them: `call_channel.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from ccrouter import dialplan as dp

from . import events as ev
from . import recording, transfer
from .agi import AgiSession, run_with_failover
from .call_channel import CallChannel
from .channel import Channel
from .core import Core
from .engine import QueueEngine
from .model import Outcome, SimCaller
from .queues import Entry, SimQueue

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class OriginateInfo:
    action_id: str
    context: str
    exten: str
    app: str
    data: str


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class LiveCall(CallChannel):
    """The simulator's side of one call: the dialplan it runs (its channel side: `CallChannel`)."""

    def __init__(self, core: Core, engine: QueueEngine, caller: SimCaller,
                 originate: OriginateInfo | None = None, chan: Channel | None = None) -> None:
        self.engine = engine
        self.originate = originate
        self.stage = "new"
        self.entry: Entry | None = None
        self.queue: SimQueue | None = None
        self.talk: asyncio.Future[str] | None = None
        self.agi: AgiSession | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.recording = ""
        """The MixMonitor file of this call (ccrouter-queue records it), or ""."""
        self.blind_to = ""
        """Set by a blind transfer: the ccrouter-inbound extension the caller goes on at."""
        super().__init__(core, caller, chan)

    # -- the dialplan ----------------------------------------------------------------------
    async def run(self) -> None:
        outcome: Outcome = "lost"
        try:
            outcome = await self._flow()
        finally:
            for t in self.timers:
                t.cancel()
            self.stage = "done"
            self.core.live.pop(self.call.linkedid, None)
            self.call.outcome = outcome
            if not self.call.finished.done():
                self.call.finished.set_result(outcome)

    async def _flow(self) -> Outcome:
        if self.originate is not None and self.originate.context == dp.CONTEXT_CALLBACK:
            outcome = await self._callback_flow()
        else:
            outcome = await self._inbound(self.caller.dialled)
        while self.blind_to and not self.dead.is_set():  # blind-transferred: on from there
            exten, self.blind_to = self.blind_to, ""
            self.chan.update(context=dp.CONTEXT_INBOUND, exten=exten, bridge="")
            outcome = await self._inbound(exten)
        return outcome

    async def _inbound(self, dialled: str) -> Outcome:
        """ccrouter-inbound from Answer() (a no-op on a blind-transferred caller, already up)."""
        core, chan, caller = self.core, self.chan, self.caller
        core.exten(chan, "Answer", "", 1)
        if chan.state != 6:
            core.set_state(chan, 6)
            if self.outer is not None:
                self._outer_answered()
            if caller.hangs_up_after_s is not None:
                self.timers.append(core.later(caller.hangs_up_after_s, self.caller_hangup))
        core.exten(chan, "Set", f"{dp.VAR_STATUS}=", 2)
        self.set_var(dp.VAR_STATUS, "")
        self.stage = "ivr"
        arg = f"{dp.ARG_DIALLED}={dialled}"
        status = await self._run_agi(core.opt.inbound_script, [arg], 3)
        self.call.agi_status = status
        self.set_var("AGISTATUS", status)
        if self.dead.is_set():
            return self._end("ivr_only")
        if self.get_var(dp.VAR_STATUS) == dp.STATUS_HANGUP:  # ExecIf(...?Hangup())
            core.exten(chan, "ExecIf", "1?Hangup()", 5)
            return self._end("ivr_only")
        if self.get_var(dp.VAR_STATUS) != dp.STATUS_OK:
            core.exten(chan, "Goto", f"{dp.CONTEXT_FALLBACK},s,1", 4)
            box = self.get_var(dp.VAR_VOICEMAIL) or ""
            if box:  # ccrouter-fallback: GotoIf(CCROUTER_VOICEMAIL != "") -> ccrouter-voicemail
                core.exten(chan, "VoiceMail", f"{box},u", 2)
                self.call.agi_commands.append(f"VoiceMail({box},u)")
                await asyncio.sleep(core.opt.prompt_s / core.opt.time_scale)
                return self._end("ivr_only")
            fallback = core.queues.get(core.opt.fallback_queue)
            if fallback is not None:
                core.exten(chan, "Queue", fallback.name, 1)
                await self._queue(fallback, 0)
            return self._end("fallback")
        return await self._ccrouter_queue(4)

    async def _callback_flow(self) -> Outcome:
        """dialplan ccrouter-callback: language, prompt, then ccrouter-queue (or hang up)."""
        core, chan = self.core, self.chan
        core.exten(chan, "NoOp", f"ccrouter callback {self.get_var(dp.VAR_CARD) or ''}", 1)
        lang = self.get_var(dp.VAR_LANGUAGE) or ""
        core.exten(chan, "ExecIf", f"{int(bool(lang))}?Set(CHANNEL(language)={lang})", 2)
        prompt = self.get_var(dp.VAR_PROMPT) or ""
        if prompt:
            core.exten(chan, "Playback", prompt, 3)
            self.call.agi_commands.append(f"Playback({prompt})")
            await asyncio.sleep(core.opt.prompt_s / core.opt.time_scale)
        if self.dead.is_set():
            return self._end("ivr_only")
        if not self.get_var(dp.VAR_QUEUE):
            return self._end("ivr_only")
        core.exten(chan, "Goto", f"{dp.CONTEXT_QUEUE},s,1", 5)
        return await self._ccrouter_queue(3)

    async def _ccrouter_queue(self, priority: int) -> Outcome:
        core, chan = self.core, self.chan
        qname = self.get_var(dp.VAR_QUEUE) or ""
        if not qname:  # GotoIf(CCROUTER_QUEUE = "") -> ccrouter-fallback
            return self._end(await self._overflow("", "ivr_only"))
        rec = core.opt.recording  # Gosub(ccrouter-record,s,1): MixMonitor(...,b)
        if rec is not None and rec.records(qname, self.get_var(dp.VAR_PRODUCT) or ""):
            path = rec.path(self.get_var(dp.VAR_CARD) or "")
            current = chan.vars.get(dp.VAR_MIXMONITOR_FILENAME)
            if current != path:  # ExecIf($["${MIXMONITOR_FILENAME}" = "<path>"]?Return())
                if current:  # a transferred caller, now on its transfer card
                    recording.stop(core, chan, 3)
                self.recording = path
                recording.start(core, chan, path, 4)
        last = await self._last_agent(priority)
        if last is not None:
            return self._end(last)
        timeout = _int_or_none(self.get_var(dp.VAR_QUEUE_TIMEOUT)) or 0
        opts = "c" if core.opt.survey else ""
        core.exten(chan, "Queue", f"{qname},{opts},,,{timeout or ''}", priority)
        q = core.queues.get(qname)
        if q is None:
            log.warning("sim.queue.unknown", queue=qname, uniqueid=chan.uniqueid)
            self.set_var("QUEUESTATUS", "UNKNOWN")
            return self._end("ivr_only")
        outcome = await self._queue(q, timeout)
        if outcome == "timeout" and not self.dead.is_set():
            outcome = await self._overflow(q.name, outcome)
        done = outcome == "answered" and not self.dead.is_set() and not self.blind_to
        if core.opt.survey and done:
            # Queue(...,c,...) returned because the operator hung up: the dialplan goes on.
            await self._run_agi(dp.SCRIPT_SURVEY, [], priority + 2)
        return self._end(outcome)

    async def _run_agi(self, script: str, args: list[str], priority: int) -> str:
        """AGI(agi://host:port/script,args): AGISTATUS. With `agi_failover` (several ccrouter
        instances: the generated ccrouter-agi subroutine) each address is tried in turn while
        the status is FAILURE."""
        core, opt = self.core, self.core.opt

        def session() -> AgiSession:  # the live one: a hang-up is told to it
            self.agi = AgiSession(self, opt.prompt_s / opt.time_scale, opt.agi_timeout_s)
            return self.agi

        try:
            return await run_with_failover(
                core.agi_addresses(), session, script, args,
                lambda url: core.exten(self.chan, "AGI", url, priority))  # fmt: skip
        finally:
            self.agi = None

    async def _last_agent(self, priority: int) -> Outcome | None:
        """ccrouter-queue: Queue(${CCROUTER_LAST_AGENT_QUEUE},,,,${CCROUTER_LAST_AGENT_RING})
        first when set; None = not answered there (on to the target queue)."""
        qname = self.get_var(dp.VAR_LAST_AGENT_QUEUE) or ""
        if not qname:
            return None
        ring = _int_or_none(self.get_var(dp.VAR_LAST_AGENT_RING)) or 0
        self.core.exten(self.chan, "Queue", f"{qname},,,,{ring or ''}", priority)
        q = self.core.queues.get(qname)
        if q is None:
            self.set_var("QUEUESTATUS", "UNKNOWN")
            return None
        outcome = await self._queue(q, ring)
        return outcome if outcome == "answered" or self.dead.is_set() else None

    async def _overflow(self, qname: str, outcome: Outcome) -> Outcome:
        """After TIMEOUT/JOINEMPTY/LEAVEEMPTY, ccrouter-fallback: voicemail, or the queue in
        CCROUTER_FALLBACK_QUEUE (default: the fallback queue) unless it is the same queue,
        starting from CCROUTER_FALLBACK_MAX_PENALTY when set."""
        core, chan = self.core, self.chan
        core.exten(chan, "Goto", f"{dp.CONTEXT_FALLBACK},s,1", 7)
        box = self.get_var(dp.VAR_VOICEMAIL) or ""
        if box:
            core.exten(chan, "VoiceMail", f"{box},u", 2)
            self.call.agi_commands.append(f"VoiceMail({box},u)")
            return outcome
        if self.get_var(dp.VAR_OVERFLOW_CALLBACK):  # -> ccrouter-callback-overflow
            await self._callback_overflow()
            return outcome
        name = self.get_var(dp.VAR_FALLBACK_QUEUE) or core.opt.fallback_queue
        fallback = core.queues.get(name)
        if fallback is None or name == qname:
            return outcome
        limit = self.get_var(dp.VAR_FALLBACK_MAX_PENALTY) or ""
        if limit:
            self.set_var(dp.VAR_QUEUE_MAX_PENALTY, limit)
        core.exten(chan, "Queue", fallback.name, 5)
        return await self._queue(fallback, 0)

    async def _callback_overflow(self) -> None:
        """ccrouter-callback-overflow: Set(CCROUTER_STATUS=), AGI(callback_offer), then
        Playback(ss-noservice) unless the script set CCROUTER_STATUS=ok; Hangup()."""
        core, chan = self.core, self.chan
        core.exten(chan, "Goto", f"{dp.CONTEXT_CALLBACK_OVERFLOW},s,1", 3)
        core.exten(chan, "Set", f"{dp.VAR_STATUS}=", 2)
        self.set_var(dp.VAR_STATUS, "")
        self.set_var("AGISTATUS", await self._run_agi(dp.SCRIPT_CALLBACK_OFFER, [], 3))
        if not self.dead.is_set() and self.get_var(dp.VAR_STATUS) != dp.STATUS_OK:
            core.exten(chan, "ExecIf", "1?Playback(ss-noservice)", 4)
            self.call.agi_commands.append("Playback(ss-noservice)")

    def _outer_answered(self) -> None:
        core, outer, o = self.core, self.outer, self.originate
        assert outer is not None
        if o is not None:
            core.emit("OriginateResponse", ev.CALL, ev.originate_response, o.action_id, True,
                      outer.name, o.context, o.exten, o.app, o.data, 4, outer.uniqueid,
                      self.caller.number, self.caller.name)
        core.set_state(outer, 6)
        core.device_change(outer.name.split("-")[0], "INUSE")
        core.emit("DialEnd", ev.CALL, ev.dial_end, None, outer, "ANSWER")
        if o is not None and o.app:
            outer.update(context="default", exten="s")
            core.exten(outer, o.app, o.data, 1)
        else:
            ctx, exten = (o.context, o.exten) if o is not None else ("default", "s")
            outer.update(context=ctx, exten=exten)
            core.exten(outer, "Wait", str(int(self.caller.patience_s)), 1)

    async def _queue(self, q: SimQueue, timeout: int) -> Outcome:
        core, engine = self.core, self.engine
        self.call.queue = q.name
        if not q.config.joinempty and not any(not m.paused for m in q.members.values()):
            self.set_var("QUEUESTATUS", "JOINEMPTY")
            return "timeout"
        for name in ("ANSWEREDTIME", "DIALEDTIME", "QUEUEWAIT"):
            core.set_var(self.chan, name, "")
        entry = Entry(self, self.chan, _int_or_none(self.get_var(dp.VAR_QUEUE_PRIO)) or 0,
                      _int_or_none(self.get_var(dp.VAR_QUEUE_MIN_PENALTY)),
                      _int_or_none(self.get_var(dp.VAR_QUEUE_MAX_PENALTY)), core.now(),
                      core.seq)
        self.entry, self.queue, self.stage = entry, q, "queue"
        engine.join(q, entry, self.caller.patience_s, timeout)
        assert entry.done is not None
        reason, attempt = await entry.done
        self.entry = None
        if reason != "answered" or attempt is None:
            self.set_var("QUEUESTATUS", "TIMEOUT" if reason == "timeout" else "LEAVEEMPTY")
            if reason == "abandon":
                self.set_var("ABANDONED", "TRUE")
            return "abandoned" if reason == "abandon" else "timeout"
        op = core.operator(attempt.member.interface)
        if self.recording and core.opt.recording is not None:  # option b: audio once bridged
            rec = core.opt.recording
            recording.write(rec.local(self.recording), rec.seconds)
        self.call.operator = attempt.member.interface
        self.stage = "talk"
        self.talk = asyncio.get_running_loop().create_future()
        started = core.now()
        plan = transfer.planned(core, op)
        timer = (core.later(plan.after_s, self.talk_over, "transfer") if plan is not None else
                 core.later(op.talk_time_s, self.talk_over, "agent" if op.hangs_up else "caller"))
        try:
            who = await self.talk
        finally:
            timer.cancel()
        if who == "transfer" and plan is not None:
            return await transfer.run(self, q, entry, attempt, plan, started)
        talk = int(core.sim_elapsed(started))
        self.call.talk_time = talk
        if who == "agent":
            engine.hangup_agent(attempt, first_soft=True)
            if not core.opt.survey:  # without Queue() option c Asterisk hangs the caller up
                self._hangup_caller_side(caller_first=False)
            engine.complete(q, entry, attempt, "agent", talk)
        else:
            self._hangup_caller_side(caller_first=True)
            engine.complete(q, entry, attempt, "caller", talk)
            engine.hangup_agent(attempt, first_soft=False)
        core.emit("BridgeDestroy", ev.CALL, ev.bridge, self.chan.bridge, 0)
        engine.release_member(attempt)
        return "answered"

    def talk_over(self, who: str) -> None:
        if self.talk is not None and not self.talk.done():
            if who == "caller":
                self.dead.set()
            self.talk.set_result(who)

    def caller_hangup(self) -> None:
        """The caller hangs up (patience or hangs_up_after_s ran out)."""
        if self.dead.is_set() or self.stage == "done":
            return
        self.dead.set()
        if self.stage == "queue" and self.entry is not None and self.queue is not None:
            self.engine.leave(self.queue, self.entry, "abandon")
        elif self.stage == "talk" and self.talk is not None and not self.talk.done():
            self.talk.set_result("caller")
        elif self.agi is not None:
            self.agi.channel_hungup()

    def _hangup_caller_side(self, caller_first: bool) -> None:
        core, chans = self.core, [self.chan]
        if self.outer is not None:
            chans = [self.outer, self.chan] if caller_first else [self.chan, self.outer]
        for i, ch in enumerate(chans):
            if ch.name not in core.channels:
                continue
            if i == 0:
                core.emit("SoftHangupRequest", ev.CALL, ev.hangup_request, ch, 16)
                if len(chans) == 2:
                    core.emit("HangupRequest", ev.CALL, ev.hangup_request, chans[1], 16)
            if ch.bridge:
                core.emit("BridgeLeave", ev.CALL, ev.bridge, ch.bridge, 0, ch)
            core.hangup(ch, soft=False)
            core.cdr(ch, self.caller.number, f'"{self.caller.name}" <{self.caller.number}>')
            if self.outer is not None:
                core.device_change(ch.name.split("-")[0], "NOT_INUSE")

    def _end(self, outcome: Outcome) -> Outcome:
        if self.blind_to and not self.dead.is_set():  # the caller goes on in the dialplan
            return outcome
        self._hangup_caller_side(caller_first=self.dead.is_set())
        self.core.processed += 1
        return outcome
