"""Transfers on AMI: `BlindTransfer`, `AttendedTransfer` and the `MixMonitorStop` a transferred
caller's new recording causes, as Asterisk 22's source prints them.

No recorded transcript has a transfer: these shapes are read from the source (asterisk/asterisk,
main/stasis_bridges.c `blind_transfer_to_ami` / `attended_transfer_to_ami`, documented in that
file's DOCUMENTATION block; snapshots from main/manager_channels.c
`ast_manager_build_channel_state_string_prefix` and main/manager_bridges.c
`ast_manager_build_bridge_state_string_prefix`):

    BlindTransfer:     Result, Transferer<snapshot>, [Transferee<snapshot>], [<bridge>],
                       IsExternal, Context, Extension
    AttendedTransfer:  Result, OrigTransferer<snapshot>, [Orig<bridge>], SecondTransferer<snapshot>,
                       [Second<bridge>], [Transferee<snapshot>], [TransferTarget<snapshot>],
                       IsExternal, DestType, then by DestType: Bridge -> DestBridgeUniqueid;
                       App -> DestApp; Link -> LocalOne<snapshot>, LocalTwo<snapshot>;
                       Threeway -> DestBridgeUniqueid, DestTransfererChannel; Fail -> nothing
    MixMonitorStop:    <snapshot> only (main/manager_channels.c, published by StopMixMonitor in
                       apps/app_mixmonitor.c `stop_mixmonitor_full`)

    <snapshot> = Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName
                 ConnectedLineNum ConnectedLineName Language AccountCode Context Exten Priority
                 Uniqueid Linkedid [Tenantid] ChanVariable..., each behind the prefix
    <bridge>   = BridgeUniqueid BridgeType BridgeTechnology BridgeCreator BridgeName
                 BridgeNumChannels BridgeVideoSourceMode [BridgeVideoSource], behind the prefix

Result is one of `Fail`, `Invalid`, `Not Permitted`, `Success`. app_queue (apps/app_queue.c
`handle_blind_transfer`, `handle_attended_transfer`) answers a successful transfer out of its
bridge with `AgentComplete` `Reason: transfer` (none for an attended transfer that ends as a
three-way call); the caller's own hang-up is not reported as `caller` then. The simulator
emits these exact header sets (`ccrouter.sim.transfer`); tests/test_transfers.py holds it
to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.names import NO_CALLER_ID, BadEvent, chan_card, interface_of

Msg = Mapping[str, Any]

SNAPSHOT: Final = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                   "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode",
                   "Context", "Exten", "Priority", "Uniqueid", "Linkedid")  # fmt: skip
"""A channel snapshot's headers (without the optional Tenantid and the ChanVariable lines)."""
BRIDGE: Final = ("BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator",
                 "BridgeName", "BridgeNumChannels", "BridgeVideoSourceMode")  # fmt: skip


def _with(prefix: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(prefix + n for n in names)


BLIND_TRANSFER: Final = ("Result", *_with("Transferer", SNAPSHOT), *_with("Transferee", SNAPSHOT),
                         *BRIDGE, "IsExternal", "Context", "Extension")  # fmt: skip
"""The headers of a BlindTransfer out of a two-party bridge (Transferee and the bridge present)."""
ATTENDED_TRANSFER_BRIDGE: Final = (
    "Result", *_with("OrigTransferer", SNAPSHOT), *_with("Orig", BRIDGE),
    *_with("SecondTransferer", SNAPSHOT), *_with("Second", BRIDGE),
    *_with("Transferee", SNAPSHOT), *_with("TransferTarget", SNAPSHOT),
    "IsExternal", "DestType", "DestBridgeUniqueid",
)  # fmt: skip
"""The headers of an AttendedTransfer completed by merging the two bridges (DestType Bridge)."""


def _snapshot(m: Msg, prefix: str) -> ev.ChannelRef | None:
    """The `prefix`ed channel snapshot, None when the event has none (no `<prefix>Uniqueid`)."""
    g = m.get
    uniqueid = g(prefix + "Uniqueid")
    if not uniqueid:
        return None
    num, name = g(prefix + "CallerIDNum", ""), g(prefix + "CallerIDName", "")
    cv = g(prefix + "ChanVariable")
    return ev.ChannelRef(
        uniqueid, g(prefix + "Linkedid", ""), g(prefix + "Channel", ""),
        "" if num in NO_CALLER_ID else num, "" if name in NO_CALLER_ID else name,
        g(prefix + "Exten", ""), g(prefix + "Context", ""), chan_card(cv) if cv else "",
    )  # fmt: skip


def _required(m: Msg, key: str) -> str:
    value: str = m.get(key, "")
    if not value:
        raise BadEvent(str(m.get("Event", "")), key, "is missing")
    return value


def blind_transfer(m: Msg, at: float) -> ev.CallTransferred:
    g = m.get
    return ev.CallTransferred(
        at, "blind", _required(m, "Result"), _snapshot(m, "Transferee"),
        _required(m, "TransfererChannel"), g("BridgeUniqueid", ""), g("IsExternal") == "Yes",
        context=g("Context", ""), extension=g("Extension", ""),
    )  # fmt: skip


def attended_transfer(m: Msg, at: float) -> ev.CallTransferred:
    g = m.get
    target = g("TransferTargetChannel", "")
    return ev.CallTransferred(
        at, "attended", _required(m, "Result"), _snapshot(m, "Transferee"),
        _required(m, "OrigTransfererChannel"), g("OrigBridgeUniqueid", ""),
        g("IsExternal") == "Yes", dest_type=g("DestType", ""),
        target_uniqueid=g("TransferTargetUniqueid", ""), target_channel=target,
        target_interface=interface_of(target) if target else "",
    )  # fmt: skip


def mixmonitor_stop(m: Msg, at: float) -> ev.RecordingStopped:
    chan = _snapshot(m, "")
    if chan is None:
        raise BadEvent("MixMonitorStop", "Uniqueid", "is missing")
    return ev.RecordingStopped(at, chan)


Translator = Callable[[Msg, float], ev.DomainEvent | None]

EVENTS: Final[Mapping[str, Translator]] = {
    "BlindTransfer": blind_transfer,
    "AttendedTransfer": attended_transfer,
    "MixMonitorStop": mixmonitor_stop,
}
