"""Which call each queue member is connected to. Pure.

Asterisk 22 may send `AgentComplete` without the caller's channel block when a call ends within
about a second of `AgentConnect`, sometimes with no channel block at all: then the member the
call was connected to, `(queue, interface)`, is what names the call. The call book notes each
connection at `AgentConnect` and drops it when the call's `AgentComplete` came or the call closed.
"""

from __future__ import annotations

Member = tuple[str, str]
"""(queue, interface) of a queue member."""


class AgentIndex:
    def __init__(self) -> None:
        self._call_at: dict[Member, str] = {}
        self._member_of: dict[str, Member] = {}

    def __len__(self) -> int:
        return len(self._call_at)

    def connect(self, queue: str, interface: str, uniqueid: str) -> None:
        """The call `uniqueid` is connected to this member now (a newer connection of the
        member replaces an older one whose AgentComplete never came)."""
        self.release(uniqueid)
        member = (queue, interface)
        older = self._call_at.get(member)
        if older is not None:
            del self._member_of[older]
        self._call_at[member] = uniqueid
        self._member_of[uniqueid] = member

    def release(self, uniqueid: str) -> None:
        """The call `uniqueid` is connected to no member any more."""
        member = self._member_of.pop(uniqueid, None)
        if member is not None:
            del self._call_at[member]

    def connected(self, queue: str, interface: str) -> str:
        """The uniqueid of the call connected to this member ("" when none)."""
        return self._call_at.get((queue, interface), "")
