"""Simulated channels and the AMI snapshot blocks Asterisk prints for them.

A channel caches its formatted snapshot (`Channel: ...` through `Linkedid: ...`) and its
`Dest`-prefixed twin; any change goes through `update()`, which drops the caches. Header names
and order follow `ast_manager_build_channel_state_string_prefix` (see the transcripts), which
ends with one `ChanVariable: NAME=value` per manager.conf `channelvars` name.
"""

from __future__ import annotations

from typing import Any

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}


class Channel:
    """One live channel. Mutable on purpose: it is the simulator's own state, never shared."""

    __slots__ = (
        "_dest",
        "_snap",
        "app",
        "appdata",
        "bridge",
        "chanvars",
        "cid_name",
        "cid_num",
        "conn_name",
        "conn_num",
        "context",
        "created",
        "exten",
        "linkedid",
        "name",
        "priority",
        "state",
        "uniqueid",
        "vars",
    )

    def __init__(
        self,
        name: str,
        uniqueid: str,
        linkedid: str,
        context: str,
        exten: str,
        created: float,
        *,
        state: int = 0,
        cid_num: str = "",
        cid_name: str = "",
        chanvars: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.priority = 1
        self.state = state
        self.cid_num = cid_num
        self.cid_name = cid_name
        self.conn_num = ""
        self.conn_name = ""
        self.app = ""
        self.appdata = ""
        self.bridge = ""
        self.created = created
        self.vars: dict[str, str] = {}
        self.chanvars = chanvars  # manager.conf channelvars, in its order
        self._snap: str | None = None
        self._dest: str | None = None

    def update(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self, key, value)
        self._snap = self._dest = None

    def snap(self) -> str:
        if self._snap is None:
            self._snap = self._format("")
        return self._snap

    def dest(self) -> str:
        if self._dest is None:
            self._dest = self._format("Dest")
        return self._dest

    def prefixed(self, prefix: str) -> str:
        return self._format(prefix)

    def _format(self, p: str) -> str:
        text = (
            f"{p}Channel: {self.name}\r\n"
            f"{p}ChannelState: {self.state}\r\n"
            f"{p}ChannelStateDesc: {STATE_DESC.get(self.state, 'Unknown')}\r\n"
            f"{p}CallerIDNum: {self.cid_num or '<unknown>'}\r\n"  # <unknown> when empty
            f"{p}CallerIDName: {self.cid_name or '<unknown>'}\r\n"
            f"{p}ConnectedLineNum: {self.conn_num or '<unknown>'}\r\n"
            f"{p}ConnectedLineName: {self.conn_name or '<unknown>'}\r\n"
            f"{p}Language: en\r\n"
            f"{p}AccountCode: \r\n"
            f"{p}Context: {self.context}\r\n"
            f"{p}Exten: {self.exten}\r\n"
            f"{p}Priority: {self.priority}\r\n"
            f"{p}Uniqueid: {self.uniqueid}\r\n"
            f"{p}Linkedid: {self.linkedid}\r\n"
        )
        if not self.chanvars:
            return text
        return text + "".join(  # manager_channels.c: one header per channelvars name, "" when unset
            f"{p}ChanVariable: {n}={self.vars.get(n, '')}\r\n" for n in self.chanvars
        )
