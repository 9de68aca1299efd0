"""Typed, immutable domain events made from AMI messages by `ccrouter.pbx.ami.translate`.

Field names follow Asterisk's (apps/app_queue.c, main/manager_channels.c) in snake case.
`at` is the receive time in seconds since the epoch (AMI events carry no timestamp unless
`timestampevents` is on); wait and talk times come from Asterisk's own HoldTime/TalkTime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, make_dataclass
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """The caller channel an event is about. Correlate calls on `linkedid`."""

    uniqueid: str
    linkedid: str
    channel: str
    caller_num: str
    caller_name: str
    exten: str
    context: str
    card: str = ""
    """The channel's CCROUTER_CARD as Asterisk reports it (`ChanVariable:` headers, present when
    manager.conf has `channelvars = CCROUTER_CARD`); "" when unset or not reported."""


@dataclass(frozen=True, slots=True)
class CallerJoined:  # QueueCallerJoin
    at: float
    chan: ChannelRef
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class CallerLeft:  # QueueCallerLeave
    at: float
    chan: ChannelRef
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class CallerAbandoned:  # QueueCallerAbandon
    at: float
    chan: ChannelRef
    queue: str
    position: int
    original_position: int
    hold_time: int


@dataclass(frozen=True, slots=True)
class AgentRinging:  # AgentCalled
    at: float
    chan: ChannelRef
    queue: str
    interface: str
    member_name: str
    dest_uniqueid: str


@dataclass(frozen=True, slots=True)
class AgentNoAnswer:  # AgentRingNoAnswer
    at: float
    chan: ChannelRef
    queue: str
    interface: str
    member_name: str
    ring_time: int


@dataclass(frozen=True, slots=True)
class AgentAnswered:  # AgentConnect
    at: float
    chan: ChannelRef
    queue: str
    interface: str
    member_name: str
    hold_time: int
    ring_time: int
    dest_channel: str = ""
    """The member's channel bridged with the caller (`DestChannel`, e.g. `PJSIP/1001-0000000a`
    or `Local/op1@agents-00000001;1`): the channel ChanSpy listens to."""


@dataclass(frozen=True, slots=True)
class AgentFinished:  # AgentComplete
    """`chan` is the caller's channel when Asterisk sent its block. On a call that ends within
    about a second of AgentConnect it may not: then `chan.uniqueid` is "" and `chan.linkedid`
    is the member channel's `DestLinkedid` (every leg shares the caller's linkedid), or "" when
    the event has no channel block at all; `queue` and `interface` are always there."""

    at: float
    chan: ChannelRef
    queue: str
    interface: str
    member_name: str
    hold_time: int
    talk_time: int
    reason: str  # "agent" | "caller" | "transfer"
    dest_uniqueid: str = ""
    """The member channel's `DestUniqueid` ("" when its block is absent)."""


@dataclass(frozen=True, slots=True)
class AgentDumped:  # AgentDump: the member hung up before the caller was bridged
    at: float
    chan: ChannelRef
    queue: str
    interface: str
    member_name: str


@dataclass(frozen=True, slots=True)
class ChannelHungUp:  # Hangup (any channel; the tracker keeps the ones it knows)
    at: float
    uniqueid: str
    linkedid: str
    channel: str
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class MemberState:
    """QueueMemberStatus/Added/Removed/Pause/Penalty events and QueueStatus QueueMember items.

    `status` is Asterisk's device state number (1 = not in use, 2 = in use, 3 = busy,
    5 = unavailable, 6 = ringing, ...).
    """

    at: float
    queue: str
    interface: str
    member_name: str
    state_interface: str
    penalty: int
    paused: bool
    paused_reason: str
    status: int
    in_call: bool
    calls_taken: int
    membership: str  # "static" | "dynamic" | "realtime"


@dataclass(frozen=True, slots=True)
class MemberAdded:  # QueueMemberAdded
    at: float
    member: MemberState


@dataclass(frozen=True, slots=True)
class MemberRemoved:  # QueueMemberRemoved
    at: float
    member: MemberState


@dataclass(frozen=True, slots=True)
class MemberChanged:  # QueueMemberStatus / QueueMemberPause / QueueMemberPenalty
    at: float
    member: MemberState


@dataclass(frozen=True, slots=True)
class OriginateDone:  # OriginateResponse
    at: float
    action_id: str
    success: bool
    reason: int
    uniqueid: str
    channel: str


@dataclass(frozen=True, slots=True)
class PbxBooted:  # FullyBooted
    at: float
    uptime: int
    last_reload: int


@dataclass(frozen=True, slots=True)
class PbxShutdown:  # Shutdown
    at: float
    restart: bool


@dataclass(frozen=True, slots=True)
class UserEventRaised:  # UserEvent (the dialplan's UserEvent() application)
    at: float
    name: str
    """The `UserEvent` header: the event name given in the dialplan."""
    uniqueid: str
    linkedid: str
    body: tuple[tuple[str, str], ...] = ()
    """The body's `Key: Value` headers, in order."""

    def get(self, key: str, default: str = "") -> str:
        for k, v in self.body:
            if k == key:
                return v
        return default


@dataclass(frozen=True, slots=True)
class RecordingNamed:  # VarSet of MIXMONITOR_FILENAME (app_mixmonitor sets it at start)
    at: float
    chan: ChannelRef
    filename: str
    """The full path as Asterisk writes it (MixMonitorStart carries no file name)."""


@dataclass(frozen=True, slots=True)
class RecordingStarted:  # MixMonitorStart: only a snapshot of the recorded channel
    at: float
    chan: ChannelRef


@dataclass(frozen=True, slots=True)
class RecordingStopped:  # MixMonitorStop (StopMixMonitor): only a snapshot of the channel
    at: float
    chan: ChannelRef


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """BlindTransfer or AttendedTransfer (main/stasis_bridges.c; the headers read are listed in
    `ccrouter.pbx.ami.transfers`). `transferee` is the party moved, in a queue call the caller
    (None when Asterisk sent no Transferee block)."""

    at: float
    kind: str  # "blind" | "attended"
    result: str  # "Success" | "Fail" | "Invalid" | "Not Permitted"
    transferee: ChannelRef | None
    transferer_channel: str
    """The operator's channel that transferred (Transferer / OrigTransferer)."""
    bridge: str
    """The bridge the transferee was in (BridgeUniqueid / OrigBridgeUniqueid)."""
    is_external: bool
    """Done by the phone (SIP REFER), not by a DTMF feature of Asterisk."""
    context: str = ""
    extension: str = ""
    """Blind: where the transferee was sent in the dialplan."""
    dest_type: str = ""
    """Attended: Bridge | App | Link | Threeway | Fail."""
    target_uniqueid: str = ""
    target_channel: str = ""
    target_interface: str = ""
    """Attended: the party the transferee is now bridged with (TransferTarget*), its device."""


@dataclass(frozen=True, slots=True)
class SpyStarted:  # ChanSpyStart (apps/app_chanspy.c): Spyer* and Spyee* snapshots
    at: float
    spyer_uniqueid: str
    spyer_channel: str
    spyee_uniqueid: str
    spyee_channel: str
    spyee_linkedid: str


@dataclass(frozen=True, slots=True)
class SpyStopped:  # ChanSpyStop: the same two snapshots (the spyee's may be absent)
    at: float
    spyer_uniqueid: str
    spyer_channel: str
    spyee_uniqueid: str
    spyee_channel: str
    spyee_linkedid: str


DomainEvent = (
    CallerJoined
    | CallerLeft
    | CallerAbandoned
    | AgentRinging
    | AgentNoAnswer
    | AgentAnswered
    | AgentFinished
    | AgentDumped
    | ChannelHungUp
    | MemberAdded
    | MemberRemoved
    | MemberChanged
    | OriginateDone
    | PbxBooted
    | PbxShutdown
    | UserEventRaised
    | RecordingNamed
    | RecordingStarted
    | RecordingStopped
    | CallTransferred
    | SpyStarted
    | SpyStopped
)


def builder(cls: Callable[P, T]) -> Callable[P, T]:
    """A faster constructor with the same signature for a frozen slotted dataclass (the AMI hot
    path builds one or two events per message).

    A frozen dataclass's `__init__` stores each field through `object.__setattr__`, several
    times slower than a plain attribute store. The constructor returned here is a private
    mutable twin with the same slots whose generated `__init__` stores the fields plainly; its
    `__post_init__` then makes the object a `cls` (CPython allows `__class__` assignment between
    classes of the same slot layout) and runs `cls.__post_init__` if it has one. What comes
    out is a genuine, frozen `cls`: equal to, hashed and `replace()`d like one built by
    `cls(...)`.
    """
    frozen = getattr(getattr(cls, "__dataclass_params__", None), "frozen", False)
    if not (isinstance(cls, type) and is_dataclass(cls) and frozen and "__slots__" in vars(cls)):
        raise TypeError(f"builder() needs a frozen slotted dataclass, not {cls!r}")
    if len(fields(cls)) != len(vars(cls)["__dataclass_fields__"]):
        raise TypeError(f"builder(): {cls.__name__} has InitVar or ClassVar fields")
    if vars(cls)["__slots__"] != tuple(f.name for f in fields(cls)):  # e.g. weakref_slot=True:
        raise TypeError(f"builder(): {cls.__name__} has slots beyond its fields")  # no __class__
    specs: list[Any] = []
    for f in fields(cls):
        if f.default_factory is not MISSING:
            specs.append((f.name, f.type, field(default_factory=f.default_factory)))
        elif f.default is not MISSING:
            specs.append((f.name, f.type, field(default=f.default)))
        else:
            specs.append((f.name, f.type))

    post_init: Callable[[Any], None] | None = getattr(cls, "__post_init__", None)

    def __post_init__(self: Any) -> None:
        self.__class__ = cls
        if post_init is not None:
            post_init(self)

    twin = make_dataclass(f"_{cls.__name__}Builder", specs, slots=True, eq=False, repr=False,
                          match_args=False, namespace={"__post_init__": __post_init__})  # fmt: skip
    return cast(Callable[P, T], twin)
