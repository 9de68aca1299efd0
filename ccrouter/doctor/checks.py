"""Runs the doctor's checks against a running Asterisk, in order, over one AMI connection:
login, events and the Filter action (the user's classes), the generated contexts and queues,
the operators' devices, the test call (FastAGI reachable from Asterisk, channelvars) and the
clock. Each gives `model.Check`s; a refused login ends the run (nothing else can be asked)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ccrouter import dialplan as dp
from ccrouter.asterisk_conf import extensions_conf, queuerules_conf, queues_conf
from ccrouter.config import Settings
from ccrouter.doctor import model as m
from ccrouter.doctor.ami import AmiClosed, AmiProbe, Message, first
from ccrouter.pbx.agi.ping import ping
from ccrouter.pbx.agi.server import AgiServer, ListenError
from ccrouter.pbx.ami.connection import event_filter

TEST_CALL_S = 10.0
"""How long the test call may take to report its UserEvent."""


class Doctor:
    def __init__(self, settings: Settings, config_path: str, timeout: float = 5.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self.regenerate = f"regenerate with `ccrouter dialplan --config {config_path} --out DIR`"
        self.checks: list[m.Check] = []

    def _add(self, *checks: m.Check) -> None:
        self.checks.extend(checks)

    async def run(self) -> list[m.Check]:
        ami = await self._login()
        if ami is None:
            return self.checks
        try:
            await self._events_and_filter(ami)
            await self._dialplan(ami)
            await self._queues(ami)
            await self._devices(ami)
            await self._test_call(ami)
            await self._clock(ami)
        except (AmiClosed, TimeoutError) as exc:
            self._add(m.fail("ami", f"the connection broke off during the checks ({exc!r})",
                             "see Asterisk's log (`logger show channels`, full log)"))
        finally:
            await ami.close()
        return self.checks

    # -- AMI --------------------------------------------------------------------------------
    async def _login(self) -> AmiProbe | None:
        a = self.settings.ami
        where = f"{a.host}:{a.port}"
        try:
            ami = await AmiProbe.connect(a.host, a.port, self.timeout)
        except (OSError, TimeoutError) as exc:
            self._add(m.fail("ami login", f"cannot connect to AMI at {where}: {exc}",
                             "check ami.host/ami.port; manager.conf [general] `enabled = yes`, "
                             "`port`, `bindaddr`"))
            return None
        try:
            reply = await ami.action("Login", Username=a.username, Secret=a.secret, Events="on")
        except (AmiClosed, TimeoutError) as exc:
            reply = {"Response": ["Error"], "Message": [str(exc) or "no answer"]}
        if first(reply, "Response") != "Success":
            await ami.close()
            self._add(m.fail("ami login", f"{where} refused user {a.username!r}: "
                             f"{first(reply, 'Message')}",
                             f"set CCROUTER_AMI_SECRET to the `secret` of [{a.username}] in "
                             "manager.conf (and check its permit/deny), then `manager reload`"))
            return None
        self._add(m.ok("ami login", f"{where} as {a.username} ({ami.banner})"))
        return ami

    async def _events_and_filter(self, ami: AmiProbe) -> None:
        user = self.settings.ami.username
        booted = await ami.wait_event(lambda e: first(e, "Event") == "FullyBooted", 2.0)
        if booted is None:
            self._add(m.fail("ami read classes", "no FullyBooted event after Login",
                             f"add `system` to `read =` of [{user}] in manager.conf "
                             "(as manager_ccrouter.conf has it)"))
        else:
            self._add(m.ok("ami read classes", "FullyBooted arrived (system)"))
        # The very filter ccrouter installs after its Login.
        reply = await ami.action("Filter", Operation="Add", Filter=event_filter(dp.AMI_EVENTS))
        if first(reply, "Response") != "Success":
            self._add(m.fail("ami event filter", "the Filter action was refused "
                             f"({first(reply, 'Message')})",
                             f"add `system` to `write =` of [{user}] in manager.conf (as "
                             "manager_ccrouter.conf has it): without it ccrouter gets every "
                             "event unfiltered"))
        else:
            self._add(m.ok("ami event filter",
                           f"Filter accepted for the {len(dp.AMI_EVENTS)} events ccrouter reads"))

    # -- generated files --------------------------------------------------------------------
    async def _dialplan(self, ami: AmiProbe) -> None:
        wanted = m.extension_steps(extensions_conf(self.settings))
        for context, steps in wanted.items():
            reply = await ami.action("Command", Command=f"dialplan show {context}")
            if first(reply, "Message") == "Permission denied":
                self._add(m.warn("dialplan", "the contexts and queue rules were not checked: "
                                 "the Command action was refused (Permission denied)",
                                 f"give [{self.settings.ami.username}] `write = ...,command` "
                                 "while you run the doctor"))
                return
            shown = m.shown_steps(reply.get("Output", []))
            self._add(m.compare_context(context, steps, shown, self.regenerate))

    async def _queues(self, ami: AmiProbe) -> None:
        _, items = await ami.list_action("QueueStatus")
        loaded = {first(i, "Queue"): first(i, "Strategy") for i in items
                  if first(i, "Event") == "QueueParams"}
        self._add(m.compare_queues(queues_conf(self.settings), loaded, self.regenerate))
        reply = await ami.action("Command", Command="queue rules show")
        if first(reply, "Message") != "Permission denied":  # dialplan's check said so
            shown = m.shown_rules(reply.get("Output", []))
            wanted = m.rule_lines(queuerules_conf(self.settings))
            self._add(m.compare_rules(wanted, shown, self.regenerate))
        reply = await ami.action("GetConfig", Filename="queues.conf", Category="general")
        if first(reply, "Response") != "Success":
            self._add(m.warn("persistentmembers", f"GetConfig queues.conf: "
                             f"{first(reply, 'Message')}",
                             "give the user `write = ...,config` to check it, or see that "
                             "queues.conf [general] has `persistentmembers = no`"))
            return
        general = dict(v.split("=", 1) for k, vs in reply.items() if k.startswith("Line-")
                       for v in vs if "=" in v)
        self._add(m.persistent_check({k.strip(): v.strip() for k, v in general.items()}))

    async def _devices(self, ami: AmiProbe) -> None:
        reply, items = await ami.list_action("DeviceStateList")
        if first(reply, "Response") != "Success":
            self._add(m.warn("operators", f"DeviceStateList: {first(reply, 'Message')}",
                             "load res_manager_devicestate.so; give the user `write = call`"))
            return
        states = {first(i, "Device"): first(i, "State") for i in items}
        wanted = {o.id: o.state_interface or o.interface for o in self.settings.operators}
        self._add(*m.device_checks(wanted, states))

    # -- the test call ----------------------------------------------------------------------
    async def _test_call(self, ami: AmiProbe) -> None:
        s = self.settings
        url = f"agi://{s.agi.host}:{s.agi.port}"
        server: AgiServer | None = AgiServer({dp.SCRIPT_PING: ping}, s.agi)
        try:
            assert server is not None
            await server.start()  # ccrouter is not running: answer `ping` ourselves
            who = "the doctor's own listener"
        except ListenError:
            server, who = None, "the running ccrouter"  # the port is taken
        try:
            await self._originate(ami, url, who)
        finally:
            if server is not None:
                await server.close()

    async def _originate(self, ami: AmiProbe, url: str, who: str) -> None:
        user, ctx = self.settings.ami.username, dp.CONTEXT_DOCTOR
        reply = await ami.action("Originate", Channel=f"Local/s@{ctx}", Application="Wait",
                                 Data="1", CallerID='"ccrouter doctor" <0>', Timeout="10000",
                                 Async="true")
        if first(reply, "Response") != "Success":
            self._add(m.fail("fastagi", f"Originate refused: {first(reply, 'Message')}",
                             f"add `originate,call` to `write =` of [{user}] in manager.conf"))
            return
        aid = first(reply, "ActionID")
        done = await ami.wait_event(
            lambda e: (first(e, "Event") == "UserEvent"
                       and first(e, "UserEvent") == dp.USER_EVENT_DOCTOR)
            or (first(e, "Event") == "OriginateResponse" and first(e, "ActionID") == aid
                and first(e, "Response") != "Success"), TEST_CALL_S)
        if done is None:
            self._add(m.fail("fastagi", f"no UserEvent {dp.USER_EVENT_DOCTOR} within "
                             f"{TEST_CALL_S:.0f} s of the test call",
                             f"add `user,call` to `read =` of [{user}] and keep UserEvent in its "
                             "eventfilter (as manager_ccrouter.conf has them)"))
            return
        if first(done, "Event") == "OriginateResponse":
            self._add(m.fail("fastagi", f"the test call into {ctx} did not start",
                             f"{self.regenerate}: the file has the {ctx} context; include it "
                             "and `dialplan reload`"))
            return
        status, answer = first(done, "AgiStatus"), first(done, "Ping")
        if status == "SUCCESS" and answer == dp.PING_ANSWER:
            self._add(m.ok("fastagi", f"Asterisk reached {url}/{dp.SCRIPT_PING} ({who})"))
        else:
            self._add(m.fail("fastagi", f"Asterisk could not run {url}/{dp.SCRIPT_PING} "
                             f"(AGISTATUS={status or 'empty'}, answered by {who})",
                             "set agi.host/agi.port to an address Asterisk can reach (firewall, "
                             "bind address), regenerate the dialplan and `dialplan reload`"))
        await asyncio.sleep(0.2)  # the Hangup events follow the UserEvent
        self._add(self._channelvars(ami.events))

    def _channelvars(self, events: list[Message]) -> m.Check:
        wanted = f"{dp.VAR_CARD}={dp.DOCTOR_CARD}"
        if any(wanted in e.get("ChanVariable", []) for e in events):
            return m.ok("channelvars", f"events carry ChanVariable {dp.VAR_CARD}")
        return m.fail("channelvars", f"the test call's events carry no ChanVariable {dp.VAR_CARD}",
                      f"add `channelvars = {dp.VAR_CARD}` to manager.conf [general] (see "
                      "manager_ccrouter.conf), then `manager reload`")

    async def _clock(self, ami: AmiProbe) -> None:
        before = time.time()
        reply = await ami.action("Ping")
        local = (before + time.time()) / 2
        with contextlib.suppress(ValueError):
            self._add(m.skew_check(float(first(reply, "Timestamp")), local))
            return
        self._add(m.warn("clock", "Ping gave no Timestamp", "Asterisk 1.8 or later sends it"))
