"""AMI messages -> typed domain events, through one explicit name -> function table.

Header names are Asterisk 22's, checked against the recorded transcripts in
shared/fixtures/asterisk and apps/app_queue.c. Unknown events are skipped (the caller logs them
at debug level); a known event with a missing or malformed header raises `BadEvent`, which
names the event and the header.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ccrouter.dialplan import VAR_CARD
from ccrouter.domain import events as ev

Msg = Mapping[str, Any]


class BadEvent(ValueError):
    def __init__(self, event: str, header: str, problem: str) -> None:
        super().__init__(f"AMI event {event}: header {header!r} {problem}")
        self.event, self.header = event, header


def _s(m: Msg, key: str) -> str:
    v = m.get(key, "")
    if isinstance(v, list):
        v = v[-1]
    return str(v)


def _req(m: Msg, key: str) -> str:
    v = m.get(key)
    if v is None or v == "":
        raise BadEvent(_s(m, "Event"), key, "is missing")
    return _s(m, key)


def _i(m: Msg, key: str, default: int = 0) -> int:
    v = _s(m, key)
    if v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise BadEvent(_s(m, "Event"), key, f"is not a number: {v[:40]!r}") from None


def _caller_id(value: str) -> str:
    return "" if value in ("<unknown>", "unknown") else value


_CARD_PREFIX = VAR_CARD + "="


def chan_card(value: Any) -> str:
    """CCROUTER_CARD from a `ChanVariable` header value (`NAME=value`, one string or, with
    several channelvars, a list; main/manager_channels.c prints one header per variable)."""
    for item in value if isinstance(value, list) else (value,):
        if isinstance(item, str) and item.startswith(_CARD_PREFIX):
            return item[len(_CARD_PREFIX) :].strip()
    return ""


def _chan(m: Msg) -> ev.ChannelRef:
    cv = m.get("ChanVariable")
    return ev.ChannelRef(
        uniqueid=_req(m, "Uniqueid"),
        linkedid=_s(m, "Linkedid"),
        channel=_s(m, "Channel"),
        caller_num=_caller_id(_s(m, "CallerIDNum")),
        caller_name=_caller_id(_s(m, "CallerIDName")),
        exten=_s(m, "Exten"),
        context=_s(m, "Context"),
        card=chan_card(cv) if cv else "",
    )


def header(m: Msg, key: str) -> str:
    """One header's value ("" when absent; the last one when repeated)."""
    return _s(m, key)


def channel_from_item(m: Msg) -> ev.ChannelRef:
    """A `CoreShowChannel` item of a CoreShowChannels reply (the same channel snapshot
    headers as events, ChanVariable included; main/manager.c action_coreshowchannels)."""
    return _chan(m)


def interface_of(channel: str) -> str:
    """The device interface of a channel name: `PJSIP/1001-0000000a` -> `PJSIP/1001`,
    `Local/agent7@ctx-00000003;1` -> `Local/agent7@ctx`."""
    name = channel.rsplit(";", 1)[0] if channel.startswith("Local/") else channel
    base, sep, _ = name.rpartition("-")
    return base if sep and "/" in base else name


def _member(m: Msg, at: float, *, listed: bool = False) -> ev.MemberState:
    # QueueStatus list items say Name/Location where member events say MemberName/Interface.
    name_key, iface_key = ("Name", "Location") if listed else ("MemberName", "Interface")
    return ev.MemberState(
        at=at,
        queue=_req(m, "Queue"),
        interface=_req(m, iface_key),
        member_name=_s(m, name_key),
        state_interface=_s(m, "StateInterface"),
        penalty=_i(m, "Penalty"),
        paused=_s(m, "Paused") == "1",
        paused_reason=_s(m, "PausedReason"),
        status=_i(m, "Status"),
        in_call=_s(m, "InCall") == "1",
        calls_taken=_i(m, "CallsTaken"),
        membership=_s(m, "Membership"),
    )


def member_from_status_item(m: Msg, at: float) -> ev.MemberState:
    """A `QueueMember` item of a QueueStatus reply."""
    return _member(m, at, listed=True)


def caller_from_queue_entry(m: Msg, at: float) -> ev.CallerJoined:
    """A `QueueEntry` item of a QueueStatus reply, as the join we may have missed.

    QueueEntry carries Uniqueid but no Linkedid (apps/app_queue.c manager_queues_status).
    """
    return ev.CallerJoined(at, _chan(m), _req(m, "Queue"), _i(m, "Position"), 0)


def _caller_joined(m: Msg, at: float) -> ev.CallerJoined:
    return ev.CallerJoined(at, _chan(m), _req(m, "Queue"), _i(m, "Position"), _i(m, "Count"))


def _caller_left(m: Msg, at: float) -> ev.CallerLeft:
    return ev.CallerLeft(at, _chan(m), _req(m, "Queue"), _i(m, "Position"), _i(m, "Count"))


def _caller_abandoned(m: Msg, at: float) -> ev.CallerAbandoned:
    return ev.CallerAbandoned(
        at,
        _chan(m),
        _req(m, "Queue"),
        _i(m, "Position"),
        _i(m, "OriginalPosition"),
        _i(m, "HoldTime"),
    )


def _agent_called(m: Msg, at: float) -> ev.AgentRinging:
    return ev.AgentRinging(
        at, _chan(m), _req(m, "Queue"), _req(m, "Interface"), _s(m, "MemberName"),
        _s(m, "DestUniqueid"),
    )  # fmt: skip


def _agent_no_answer(m: Msg, at: float) -> ev.AgentNoAnswer:
    return ev.AgentNoAnswer(
        at, _chan(m), _req(m, "Queue"), _req(m, "Interface"), _s(m, "MemberName"),
        _i(m, "RingTime"),
    )  # fmt: skip


def _agent_connect(m: Msg, at: float) -> ev.AgentAnswered:
    return ev.AgentAnswered(
        at, _chan(m), _req(m, "Queue"), _req(m, "Interface"), _s(m, "MemberName"),
        _i(m, "HoldTime"), _i(m, "RingTime"),
    )  # fmt: skip


def _agent_complete(m: Msg, at: float) -> ev.AgentFinished:
    return ev.AgentFinished(
        at, _chan(m), _req(m, "Queue"), _req(m, "Interface"), _s(m, "MemberName"),
        _i(m, "HoldTime"), _i(m, "TalkTime"), _s(m, "Reason"),
    )  # fmt: skip


def _agent_dump(m: Msg, at: float) -> ev.AgentDumped:
    return ev.AgentDumped(at, _chan(m), _req(m, "Queue"), _req(m, "Interface"), _s(m, "MemberName"))


def _hangup(m: Msg, at: float) -> ev.ChannelHungUp:
    return ev.ChannelHungUp(
        at, _req(m, "Uniqueid"), _s(m, "Linkedid"), _s(m, "Channel"), _i(m, "Cause"),
        _s(m, "Cause-txt"),
    )  # fmt: skip


def _member_added(m: Msg, at: float) -> ev.MemberAdded:
    return ev.MemberAdded(at, _member(m, at))


def _member_removed(m: Msg, at: float) -> ev.MemberRemoved:
    return ev.MemberRemoved(at, _member(m, at))


def _member_changed(m: Msg, at: float) -> ev.MemberChanged:
    return ev.MemberChanged(at, _member(m, at))


def _originate_response(m: Msg, at: float) -> ev.OriginateDone:
    return ev.OriginateDone(
        at, _s(m, "ActionID"), _s(m, "Response") == "Success", _i(m, "Reason"),
        _s(m, "Uniqueid"), _s(m, "Channel"),
    )  # fmt: skip


def _fully_booted(m: Msg, at: float) -> ev.PbxBooted:
    return ev.PbxBooted(at, _i(m, "Uptime"), _i(m, "LastReload"))


def _shutdown(m: Msg, at: float) -> ev.PbxShutdown:
    return ev.PbxShutdown(at, _s(m, "Restart").lower() in ("true", "yes", "1"))


_SNAPSHOT = frozenset({
    "Event", "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum",
    "CallerIDName", "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode",
    "Context", "Exten", "Priority", "Uniqueid", "Linkedid", "UserEvent", "ActionID",
})  # fmt: skip
"""Headers of a UserEvent that are not its body (the channel snapshot, main/stasis_channels.c)."""


def _user_event(m: Msg, at: float) -> ev.UserEventRaised:
    body = tuple((str(k), _s(m, str(k))) for k in m if k not in _SNAPSHOT)
    return ev.UserEventRaised(at, _req(m, "UserEvent"), _s(m, "Uniqueid"), _s(m, "Linkedid"),
                              body)  # fmt: skip


Translator = Callable[[Msg, float], ev.DomainEvent]

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
    "FullyBooted": _fully_booted,
    "Shutdown": _shutdown,
}


def translate(msg: Msg, at: float) -> ev.DomainEvent | None:
    """The domain event for an AMI event message, or None for an event ccrouter ignores."""
    fn = EVENT_TABLE.get(_s(msg, "Event"))
    return fn(msg, at) if fn is not None else None
