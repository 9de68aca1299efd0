"""AMI messages -> typed domain events, through one explicit name -> function table.

Header names are Asterisk 22's, checked against the recorded transcripts in
shared/fixtures/asterisk and apps/app_queue.c. Unknown events are skipped (the caller logs them
at debug level); a known event with a missing or malformed header raises `BadEvent`, which
names the event and the header.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ccrouter.dialplan import VAR_MIXMONITOR_FILENAME
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.names import NO_CALLER_ID as _NO_CALLER_ID
from ccrouter.pbx.ami.names import BadEvent as BadEvent
from ccrouter.pbx.ami.names import chan_card
from ccrouter.pbx.ami.names import interface_of as interface_of  # the tracker reads it here
from ccrouter.pbx.ami.protocol import Headers
from ccrouter.pbx.ami.transfers import EVENTS as TRANSFER_EVENTS

Msg = Mapping[str, Any]


def _s(m: Msg, key: str) -> str:
    v = m.get(key, "")
    if isinstance(v, list):
        v = v[-1]
    return str(v)


def _plain(m: Msg) -> Msg:
    """`m` with every value a str as `_s` reads it (the last of a repeated header), except the
    raw `ChanVariable` (see `chan_card`); `m` itself in the parser's common case (`Headers`),
    so the translators below read headers with a plain `m.get`."""
    if m.__class__ is Headers:
        return m
    for v in m.values():
        if v.__class__ is not str:
            break
    else:
        return m
    return {str(k): v if k == "ChanVariable" else _s(m, k) for k, v in m.items()}


def _missing(m: Msg, key: str) -> BadEvent:
    return BadEvent(_s(m, "Event"), key, "is missing")


def _not_a_number(m: Msg, *keys: str) -> BadEvent:
    """The error for the first of `keys` (headers read as numbers) that is not one."""
    for key in keys:
        v = _s(m, key)
        try:
            int(v or 0)
        except ValueError:
            return BadEvent(_s(m, "Event"), key, f"is not a number: {v[:40]!r}")
    raise AssertionError(f"no bad number among {keys}")  # pragma: no cover


# Frozen events built without a per-field object.__setattr__ (see `ev.builder`).
_ChannelRef = ev.builder(ev.ChannelRef)
_MemberState = ev.builder(ev.MemberState)
_CallerJoined = ev.builder(ev.CallerJoined)
_CallerLeft = ev.builder(ev.CallerLeft)
_CallerAbandoned = ev.builder(ev.CallerAbandoned)
_AgentRinging = ev.builder(ev.AgentRinging)
_AgentNoAnswer = ev.builder(ev.AgentNoAnswer)
_AgentAnswered = ev.builder(ev.AgentAnswered)
_AgentFinished = ev.builder(ev.AgentFinished)
_AgentDumped = ev.builder(ev.AgentDumped)
_ChannelHungUp = ev.builder(ev.ChannelHungUp)
_MemberAdded = ev.builder(ev.MemberAdded)
_MemberRemoved = ev.builder(ev.MemberRemoved)
_MemberChanged = ev.builder(ev.MemberChanged)


def _chan(m: Msg) -> ev.ChannelRef:
    """The channel snapshot of a `_plain` message."""
    g = m.get
    uniqueid = g("Uniqueid")
    if not uniqueid:
        raise _missing(m, "Uniqueid")
    num, name, cv = g("CallerIDNum", ""), g("CallerIDName", ""), g("ChanVariable")
    return _ChannelRef(
        uniqueid, g("Linkedid", ""), g("Channel", ""),
        "" if num in _NO_CALLER_ID else num, "" if name in _NO_CALLER_ID else name,
        g("Exten", ""), g("Context", ""), chan_card(cv) if cv else "",
    )  # fmt: skip


def header(m: Msg, key: str) -> str:
    """One header's value ("" when absent; the last one when repeated)."""
    return _s(m, key)


def channel_from_item(m: Msg) -> ev.ChannelRef:
    """A `CoreShowChannel` item of a CoreShowChannels reply (the same channel snapshot
    headers as events, ChanVariable included; main/manager.c action_coreshowchannels)."""
    return _chan(_plain(m))


def _member(m: Msg, at: float, *, listed: bool = False) -> ev.MemberState:
    # QueueStatus list items say Name/Location where member events say MemberName/Interface.
    name_key, iface_key = ("Name", "Location") if listed else ("MemberName", "Interface")
    g = m.get
    queue, interface = g("Queue"), g(iface_key)
    if not queue:
        raise _missing(m, "Queue")
    if not interface:
        raise _missing(m, iface_key)
    try:
        penalty, status = int(g("Penalty") or 0), int(g("Status") or 0)
        calls_taken = int(g("CallsTaken") or 0)
    except ValueError:
        raise _not_a_number(m, "Penalty", "Status", "CallsTaken") from None
    return _MemberState(
        at, queue, interface, g(name_key, ""), g("StateInterface", ""), penalty,
        g("Paused") == "1", g("PausedReason", ""), status, g("InCall") == "1", calls_taken,
        g("Membership", ""),
    )  # fmt: skip


def member_from_status_item(m: Msg, at: float) -> ev.MemberState:
    """A `QueueMember` item of a QueueStatus reply."""
    return _member(_plain(m), at, listed=True)


def caller_from_queue_entry(m: Msg, at: float) -> ev.CallerJoined:
    """A `QueueEntry` item of a QueueStatus reply, as the join we may have missed.

    QueueEntry carries Uniqueid but no Linkedid (apps/app_queue.c manager_queues_status).
    """
    m = _plain(m)
    chan, queue = _chan(m), _queue(m)
    try:
        position = int(m.get("Position") or 0)
    except ValueError:
        raise _not_a_number(m, "Position") from None
    return _CallerJoined(at, chan, queue, position, 0)


def _queue(m: Msg) -> str:
    queue: str | None = m.get("Queue")
    if not queue:
        raise _missing(m, "Queue")
    return queue


def _in_queue(m: Msg) -> tuple[ev.ChannelRef, str, int, int]:
    """The caller, queue, Position and Count of a QueueCallerJoin or QueueCallerLeave."""
    chan, queue, g = _chan(m), _queue(m), m.get
    try:
        return chan, queue, int(g("Position") or 0), int(g("Count") or 0)
    except ValueError:
        raise _not_a_number(m, "Position", "Count") from None


def _caller_joined(m: Msg, at: float) -> ev.CallerJoined:
    return _CallerJoined(at, *_in_queue(m))


def _caller_left(m: Msg, at: float) -> ev.CallerLeft:
    return _CallerLeft(at, *_in_queue(m))


def _caller_abandoned(m: Msg, at: float) -> ev.CallerAbandoned:
    chan, queue, g = _chan(m), _queue(m), m.get
    try:
        position, original = int(g("Position") or 0), int(g("OriginalPosition") or 0)
        hold = int(g("HoldTime") or 0)
    except ValueError:
        raise _not_a_number(m, "Position", "OriginalPosition", "HoldTime") from None
    return _CallerAbandoned(at, chan, queue, position, original, hold)


def _agent(m: Msg) -> tuple[ev.ChannelRef, str, str, str]:
    """The channel, Queue, Interface and MemberName that every Agent* event carries."""
    chan, queue, g = _chan(m), _queue(m), m.get
    interface = g("Interface")
    if not interface:
        raise _missing(m, "Interface")
    return chan, queue, interface, g("MemberName", "")


def _agent_called(m: Msg, at: float) -> ev.AgentRinging:
    chan, queue, interface, member = _agent(m)
    return _AgentRinging(at, chan, queue, interface, member, m.get("DestUniqueid", ""))


def _agent_no_answer(m: Msg, at: float) -> ev.AgentNoAnswer:
    chan, queue, interface, member = _agent(m)
    try:
        ring = int(m.get("RingTime") or 0)
    except ValueError:
        raise _not_a_number(m, "RingTime") from None
    return _AgentNoAnswer(at, chan, queue, interface, member, ring)


def _agent_connect(m: Msg, at: float) -> ev.AgentAnswered:
    chan, queue, interface, member = _agent(m)
    g = m.get
    try:
        hold, ring = int(g("HoldTime") or 0), int(g("RingTime") or 0)
    except ValueError:
        raise _not_a_number(m, "HoldTime", "RingTime") from None
    return _AgentAnswered(at, chan, queue, interface, member, hold, ring,
                          g("DestChannel", ""))  # fmt: skip


def _agent_complete(m: Msg, at: float) -> ev.AgentFinished:
    """AgentComplete, also without the caller's block: on a call that ends within about a
    second of AgentConnect Asterisk 22 may send only the member's `Dest*` block, or no channel
    block at all (fixture ami-agentcomplete-without-caller.txt); see `ev.AgentFinished`."""
    g = m.get
    if g("Uniqueid"):
        chan, queue, interface, member = _agent(m)
    else:
        queue, interface = _queue(m), _s(m, "Interface")
        if not interface:
            raise _missing(m, "Interface")
        chan, member = _no_caller(_s(m, "DestLinkedid")), _s(m, "MemberName")
    try:
        hold, talk = int(g("HoldTime") or 0), int(g("TalkTime") or 0)
    except ValueError:
        raise _not_a_number(m, "HoldTime", "TalkTime") from None
    return _AgentFinished(at, chan, queue, interface, member, hold, talk, g("Reason", ""),
                          g("DestUniqueid", ""))  # fmt: skip


def _no_caller(linkedid: str) -> ev.ChannelRef:
    """The caller of an event that lacks the caller's channel block: only the call's linkedid
    (from another leg's block; "" when none) is known."""
    return _ChannelRef("", linkedid, "", "", "", "", "")


def _agent_dump(m: Msg, at: float) -> ev.AgentDumped:
    return _AgentDumped(at, *_agent(m))


def _hangup(m: Msg, at: float) -> ev.ChannelHungUp:
    g = m.get
    uniqueid = g("Uniqueid")
    if not uniqueid:
        raise _missing(m, "Uniqueid")
    try:
        cause = int(g("Cause") or 0)
    except ValueError:
        raise _not_a_number(m, "Cause") from None
    return _ChannelHungUp(at, uniqueid, g("Linkedid", ""), g("Channel", ""), cause,
                          g("Cause-txt", ""))  # fmt: skip


def _member_added(m: Msg, at: float) -> ev.MemberAdded:
    return _MemberAdded(at, _member(m, at))


def _member_removed(m: Msg, at: float) -> ev.MemberRemoved:
    return _MemberRemoved(at, _member(m, at))


def _member_changed(m: Msg, at: float) -> ev.MemberChanged:
    return _MemberChanged(at, _member(m, at))


def _originate_response(m: Msg, at: float) -> ev.OriginateDone:
    g = m.get
    try:
        reason = int(g("Reason") or 0)
    except ValueError:
        raise _not_a_number(m, "Reason") from None
    return ev.OriginateDone(at, g("ActionID", ""), g("Response") == "Success", reason,
                            g("Uniqueid", ""), g("Channel", ""))  # fmt: skip


def _fully_booted(m: Msg, at: float) -> ev.PbxBooted:
    try:
        uptime, last_reload = int(m.get("Uptime") or 0), int(m.get("LastReload") or 0)
    except ValueError:
        raise _not_a_number(m, "Uptime", "LastReload") from None
    return ev.PbxBooted(at, uptime, last_reload)


def _shutdown(m: Msg, at: float) -> ev.PbxShutdown:
    return ev.PbxShutdown(at, m.get("Restart", "").lower() in ("true", "yes", "1"))


_SNAPSHOT = frozenset({
    "Event", "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum",
    "CallerIDName", "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode",
    "Context", "Exten", "Priority", "Uniqueid", "Linkedid", "UserEvent", "ActionID",
})  # fmt: skip
"""Headers of a UserEvent that are not its body (the channel snapshot, main/stasis_channels.c)."""


def _user_event(m: Msg, at: float) -> ev.UserEventRaised:
    body = tuple((str(k), _s(m, str(k))) for k in m if k not in _SNAPSHOT)
    name = m.get("UserEvent")
    if not name:
        raise _missing(m, "UserEvent")
    return ev.UserEventRaised(at, name, m.get("Uniqueid", ""), m.get("Linkedid", ""), body)


def _var_set(m: Msg, at: float) -> ev.DomainEvent | None:
    """VarSet: only MIXMONITOR_FILENAME is of use (the Filter admits no other); None else."""
    if m.get("Variable") != VAR_MIXMONITOR_FILENAME:
        return None
    value = m.get("Value", "")
    if not value:
        raise _missing(m, "Value")
    return ev.RecordingNamed(at, _chan(m), str(value))


def _mixmonitor_start(m: Msg, at: float) -> ev.RecordingStarted:
    return ev.RecordingStarted(at, _chan(m))


def _spy(m: Msg, at: float, cls: type[ev.SpyStarted] | type[ev.SpyStopped]
         ) -> ev.SpyStarted | ev.SpyStopped:  # fmt: skip
    """ChanSpyStart/ChanSpyStop: the spying channel's snapshot (`Spyer*`, always there) and
    the spied-on channel's (`Spyee*`) (fixture ami-chanspy.txt)."""
    g = m.get
    spyer = g("SpyerUniqueid")
    if not spyer:
        raise _missing(m, "SpyerUniqueid")
    return cls(at, spyer, g("SpyerChannel", ""), g("SpyeeUniqueid", ""), g("SpyeeChannel", ""),
               g("SpyeeLinkedid", ""))  # fmt: skip


def _chanspy_start(m: Msg, at: float) -> ev.SpyStarted | ev.SpyStopped:
    return _spy(m, at, ev.SpyStarted)


def _chanspy_stop(m: Msg, at: float) -> ev.SpyStarted | ev.SpyStopped:
    return _spy(m, at, ev.SpyStopped)


Translator = Callable[[Msg, float], ev.DomainEvent | None]

EVENT_TABLE: Mapping[str, Translator] = {
    "QueueCallerJoin": _caller_joined,
    "QueueCallerLeave": _caller_left,
    "QueueCallerAbandon": _caller_abandoned,
    "AgentCalled": _agent_called,
    "AgentRingNoAnswer": _agent_no_answer,
    "AgentConnect": _agent_connect,
    "AgentComplete": _agent_complete,
    "AgentDump": _agent_dump,
    "Hangup": _hangup,
    "QueueMemberAdded": _member_added,
    "QueueMemberRemoved": _member_removed,
    "QueueMemberStatus": _member_changed,
    "QueueMemberPause": _member_changed,
    "QueueMemberPenalty": _member_changed,
    "OriginateResponse": _originate_response,
    "UserEvent": _user_event,
    "VarSet": _var_set,
    "MixMonitorStart": _mixmonitor_start,
    "ChanSpyStart": _chanspy_start,
    "ChanSpyStop": _chanspy_stop,
    "FullyBooted": _fully_booted,
    "Shutdown": _shutdown,
    **TRANSFER_EVENTS,
}


def translate(msg: Msg, at: float) -> ev.DomainEvent | None:
    """The domain event for an AMI event message, or None for an event ccrouter ignores."""
    if msg.__class__ is Headers:  # the parser's common case: every value one str
        fn = EVENT_TABLE.get(msg.get("Event", ""))
        return fn(msg, at) if fn is not None else None
    fn = EVENT_TABLE.get(_s(msg, "Event"))
    return fn(_plain(msg), at) if fn is not None else None
