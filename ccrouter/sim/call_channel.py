"""One call's channels and variables as the PBX shows them: the channels a call is created on
(a trunk channel, a Local pair for an originated Local call, or an answered originated leg),
its `SimCall` handle, the caller's keypad, and what an AGI session needs from the channel it
runs on (`agi.AgiChannel`: environment, variables, ${...} expansion, EXEC, astdb, sounds).
The dialplan the call runs is `calls.LiveCall`.
"""

from __future__ import annotations

import asyncio
import re
import threading

from ccrouter import dialplan as dp

from . import events as ev
from .agi import KNOWN_APPS, Keypad
from .channel import Channel
from .core import Core
from .model import SimCall, SimCaller

_VAR = re.compile(r"\$\{([^}]*)\}")


class CallChannel:
    """The channel side of one call; `LiveCall` adds the dialplan it runs."""

    def __init__(self, core: Core, caller: SimCaller, chan: Channel | None = None) -> None:
        self.core = core
        self.caller = caller
        self.dead = asyncio.Event()
        self.keypad = Keypad(caller.dtmf)
        num, name = caller.number, caller.name
        self.outer: Channel | None
        if chan is not None:  # an originated customer leg that answered (ccrouter-callback)
            self.outer, self.chan = None, chan
        elif caller.local:
            self.outer, self.chan = core.local_pair(caller.dialled, dp.CONTEXT_INBOUND, None,
                                                    (num, name))
            core.exten(self.outer, "AppDial2", "(Outgoing Line)")
            core.emit("DialBegin", ev.CALL, ev.dial_begin, None, self.outer,
                      f"{caller.dialled}@{dp.CONTEXT_INBOUND}")
        else:
            self.outer = None
            name_ = f"PJSIP/trunk-{core.tech_number('PJSIP'):08x}"
            self.chan = core.new_channel(name_, None, dp.CONTEXT_INBOUND, caller.dialled, state=4,
                                         cid_num=num, cid_name=name)
        loop = asyncio.get_running_loop()
        self.call = SimCall(caller, self.chan.uniqueid, self.chan.linkedid, loop.create_future())
        self.call.variables = self.chan.vars

    # -- what the AGI session needs ----------------------------------------------------------
    def agi_env(self) -> list[tuple[str, str]]:
        c, ch = self.caller, self.chan
        return [
            ("agi_channel", ch.name), ("agi_language", self.language()),
            ("agi_type", ch.name.split("/", 1)[0]), ("agi_uniqueid", ch.uniqueid),
            ("agi_version", "22.10.1"), ("agi_callerid", c.number or "unknown"),
            ("agi_calleridname", c.name or "unknown"), ("agi_callingpres", "0"),
            ("agi_callingani2", "0"), ("agi_callington", "0"), ("agi_callingtns", "0"),
            ("agi_dnid", "unknown" if self.outer is not None else c.dialled),
            ("agi_rdnis", "unknown"), ("agi_context", ch.context), ("agi_extension", ch.exten),
            ("agi_priority", str(ch.priority)), ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""), ("agi_threadid", str(threading.get_ident())),
        ]

    def language(self) -> str:
        """CHANNEL(language): `en` until the dialplan or an AGI SET VARIABLE changes it."""
        return self.chan.vars.get("CHANNEL(language)") or "en"

    def get_var(self, name: str) -> str | None:
        value = self.chan.vars.get(name)
        return value if value is not None else self.core.globals.get(name)

    def set_var(self, name: str, value: str) -> None:
        self.core.set_var(self.chan, name, value)

    def expand(self, expr: str) -> str:
        c, ch = self.caller, self.chan

        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            special = {
                "CALLERID(num)": c.number, "CALLERID(name)": c.name,
                "CALLERID(all)": f'"{c.name}" <{c.number}>', "CHANNEL(language)": self.language(),
                "CHANNEL(name)": ch.name, "CHANNEL": ch.name, "EXTEN": ch.exten,
                "CONTEXT": ch.context, "UNIQUEID": ch.uniqueid, "LINKEDID": ch.linkedid,
            }
            if key in special:
                return special[key]
            return self.get_var(key) or ""

        return _VAR.sub(one, expr)

    def exec_app(self, app: str, data: str) -> int:
        low = app.lower()
        if low not in KNOWN_APPS:
            return -2
        if low in ("set", "mset"):
            for part in data.split(",") if low == "mset" else [data]:
                key, sep, value = part.partition("=")
                if sep:
                    self.set_var(key.strip(), value)
        return 0

    def agi_hangup(self) -> None:
        self.dead.set()

    def agi_command(self, command: str, code: int) -> None:
        self.call.agi_commands.append(command)
        core = self.core
        if core.noise:
            cid = core.rng.getrandbits(31)
            core.emit("AGIExecStart", ev.AGI, ev.agi_exec_start, self.chan, cid, command)
            core.emit("AGIExecEnd", ev.AGI, ev.agi_exec_end, self.chan, cid, command, code,
                      "Success" if code == 200 else "Failure")

    def db(self) -> dict[tuple[str, str], str]:
        return self.core.astdb

    def missing_sound(self, name: str) -> bool:
        return "no-such" in name or name in self.core.missing_sounds
