"""AMI event bodies, header for header as Asterisk 22 prints them (transcripts, app_queue.c).

Each function returns the body after `Event:`/`Privilege:` (the server adds those two lines and
the closing blank line). Channel snapshots come pre-formatted from `Channel`.
"""

from __future__ import annotations

from .channel import Channel
from .model import Member

CALL = "call,all"
DIALPLAN = "dialplan,all"
AGENT = "agent,all"
AGI = "agi,all"
CDR = "cdr,all"
SYSTEM = "system,all"
SECURITY = "security,all"
USER = "user,all"

CAUSE_TXT = {16: "Normal Clearing", 17: "User busy", 19: "No user responding", 0: "Unknown"}


def newexten(ch: Channel) -> str:
    return f"{ch.snap()}Extension: {ch.exten}\r\nApplication: {ch.app}\r\nAppData: {ch.appdata}\r\n"


def varset(ch: Channel, name: str, value: str) -> str:
    return f"{ch.snap()}Variable: {name}\r\nValue: {value}\r\n"


def newcallerid(ch: Channel) -> str:
    return f"{ch.snap()}CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n"


def local_bridge(one: Channel, two: Channel) -> str:
    return (
        f"{one.prefixed('LocalOne')}{two.prefixed('LocalTwo')}"
        f"Context: {two.context}\r\nExten: {two.exten}\r\nLocalOptimization: Yes\r\n"
    )


def dial_begin(caller: Channel | None, dest: Channel, dialstring: str) -> str:
    head = caller.snap() if caller is not None else ""
    return f"{head}{dest.dest()}DialString: {dialstring}\r\n"


def dial_end(caller: Channel | None, dest: Channel, status: str) -> str:
    head = caller.snap() if caller is not None else ""
    return f"{head}{dest.dest()}DialStatus: {status}\r\n"


def agi_exec_start(ch: Channel, command_id: int, command: str) -> str:
    return f"{ch.snap()}CommandId: {command_id}\r\nCommand: {command}\r\n"


def agi_exec_end(ch: Channel, command_id: int, command: str, code: int, result: str) -> str:
    return (
        f"{ch.snap()}CommandId: {command_id}\r\nCommand: {command}\r\n"
        f"ResultCode: {code}\r\nResult: {result}\r\n"
    )


def caller_join_leave(ch: Channel, queue: str, position: int, count: int) -> str:
    return f"{ch.snap()}Queue: {queue}\r\nPosition: {position}\r\nCount: {count}\r\n"


def caller_abandon(ch: Channel, queue: str, position: int, original: int, hold: int) -> str:
    return (
        f"{ch.snap()}Queue: {queue}\r\nPosition: {position}\r\n"
        f"OriginalPosition: {original}\r\nHoldTime: {hold}\r\n"
    )


def moh(ch: Channel, with_class: bool) -> str:
    return f"{ch.snap()}Class: default\r\n" if with_class else ch.snap()


def agent(caller: Channel | None, dest: Channel | None, queue: str, member: Member,
          tail: str = "") -> str:
    """AgentCalled / AgentConnect / AgentComplete / AgentRingNoAnswer / AgentDump (an
    AgentComplete may lack the caller's block, or both blocks: see `LostCallerBlock`)."""
    return (
        f"{caller.snap() if caller is not None else ''}"
        f"{dest.dest() if dest is not None else ''}Queue: {queue}\r\n"
        f"Interface: {member.interface}\r\nMemberName: {member.name}\r\n{tail}"
    )


def member_blob(queue: str, m: Member, status: int) -> str:
    """QueueMemberStatus/Pause/Added/Removed/Penalty (app_queue `queue_member_blob_create`)."""
    return (
        f"Queue: {queue}\r\nMemberName: {m.name}\r\nInterface: {m.interface}\r\n"
        f"StateInterface: {m.state_interface}\r\nMembership: {m.membership}\r\n"
        f"Penalty: {m.penalty}\r\nCallsTaken: {m.calls_taken}\r\nLastCall: {m.last_call}\r\n"
        f"LastPause: {m.last_pause}\r\nLoginTime: {m.login_time}\r\n"
        f"InCall: {int(m.in_call)}\r\nStatus: {status}\r\nPaused: {int(m.paused)}\r\n"
        f"PausedReason: {m.paused_reason}\r\nRinginuse: 0\r\nWrapuptime: {m.wrapuptime}\r\n"
    )


def bridge_state(bridge_id: str, count: int, p: str = "") -> str:
    """main/manager_bridges.c ast_manager_build_bridge_state_string_prefix (no video source)."""
    return (
        f"{p}BridgeUniqueid: {bridge_id}\r\n{p}BridgeType: basic\r\n"
        f"{p}BridgeTechnology: simple_bridge\r\n{p}BridgeCreator: <unknown>\r\n"
        f"{p}BridgeName: <unknown>\r\n{p}BridgeNumChannels: {count}\r\n"
        f"{p}BridgeVideoSourceMode: none\r\n"
    )


def bridge(bridge_id: str, count: int, ch: Channel | None = None) -> str:
    head = bridge_state(bridge_id, count)
    return head + ch.snap() if ch is not None else head


def blind_transfer(transferer: Channel, transferee: Channel, bridge_id: str, count: int,
                   context: str, exten: str) -> str:  # fmt: skip
    """BlindTransfer (main/stasis_bridges.c blind_transfer_to_ami), from a phone (REFER)."""
    return (
        f"Result: Success\r\n{transferer.prefixed('Transferer')}"
        f"{transferee.prefixed('Transferee')}{bridge_state(bridge_id, count)}"
        f"IsExternal: Yes\r\nContext: {context}\r\nExtension: {exten}\r\n"
    )


def attended_transfer(first: Channel, first_bridge: str, second: Channel, second_bridge: str,
                      transferee: Channel, target: Channel) -> str:  # fmt: skip
    """AttendedTransfer (main/stasis_bridges.c attended_transfer_to_ami) completed by merging
    the consultation bridge into the caller's (DestType Bridge), from a phone (REFER)."""
    return (
        f"Result: Success\r\n{first.prefixed('OrigTransferer')}"
        f"{bridge_state(first_bridge, 2, 'Orig')}{second.prefixed('SecondTransferer')}"
        f"{bridge_state(second_bridge, 2, 'Second')}{transferee.prefixed('Transferee')}"
        f"{target.prefixed('TransferTarget')}IsExternal: Yes\r\nDestType: Bridge\r\n"
        f"DestBridgeUniqueid: {first_bridge}\r\n"
    )


def hangup_request(ch: Channel, cause: int = 16) -> str:
    return f"{ch.snap()}Cause: {cause}\r\n"


def hangup(ch: Channel, cause: int = 16) -> str:
    return f"{ch.snap()}Cause: {cause}\r\nCause-txt: {CAUSE_TXT.get(cause, 'Unknown')}\r\n"


def user_event(ch: Channel, name: str, body: tuple[tuple[str, str], ...]) -> str:
    """UserEvent(name,Key: Value,...): the channel snapshot, `UserEvent`, then the body."""
    return f"{ch.snap()}UserEvent: {name}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in body)


def device_state(device: str, state: str) -> str:
    return f"Device: {device}\r\nState: {state}\r\n"


def cdr(
    ch: Channel, source: str, caller_id: str, dest_channel: str, start: str, answer: str,
    end: str, duration: int, billable: int,
) -> str:
    return (
        f"AccountCode: \r\nSource: {source}\r\nDestination: {ch.exten}\r\n"
        f"DestinationContext: {ch.context}\r\nCallerID: {caller_id}\r\nChannel: {ch.name}\r\n"
        f"DestinationChannel: {dest_channel}\r\nLastApplication: {ch.app}\r\n"
        f"LastData: {ch.appdata}\r\nStartTime: {start}\r\nAnswerTime: {answer}\r\n"
        f"EndTime: {end}\r\nDuration: {duration}\r\nBillableSeconds: {billable}\r\n"
        f"Disposition: ANSWERED\r\nAMAFlags: DOCUMENTATION\r\nUniqueID: {ch.uniqueid}\r\n"
        f"UserField: \r\n"
    )


def originate_response(
    action_id: str, ok: bool, channel: str, context: str, exten: str, app: str, data: str,
    reason: int, uniqueid: str, cid_num: str, cid_name: str,
) -> str:
    aid = f"ActionID: {action_id}\r\n" if action_id else ""
    target = (
        f"Application: {app}\r\nData: {data}\r\n" if app else
        f"Context: {context}\r\nExten: {exten}\r\n"
    )
    return (
        f"{aid}Response: {'Success' if ok else 'Failure'}\r\nChannel: {channel}\r\n{target}"
        f"Reason: {reason}\r\nUniqueid: {uniqueid}\r\nCallerIDNum: {cid_num or '<unknown>'}\r\n"
        f"CallerIDName: {cid_name or '<unknown>'}\r\n"
    )


def fully_booted(uptime: int) -> str:
    return f"Uptime: {uptime}\r\nLastReload: {uptime}\r\nStatus: Fully Booted\r\n"


def successful_auth(user: str, session_id: str, local: str, remote: str, tv: str) -> str:
    return (
        f"EventTV: {tv}\r\nSeverity: Informational\r\nService: AMI\r\nEventVersion: 1\r\n"
        f"AccountID: {user}\r\nSessionID: {session_id}\r\nLocalAddress: {local}\r\n"
        f"RemoteAddress: {remote}\r\nUsingPassword: 0\r\nSessionTV: {tv}\r\n"
    )


def shutdown(restart: bool) -> str:
    return f"Shutdown: Uncleanly\r\nRestart: {'True' if restart else 'False'}\r\n"


def chanspy(spyer: Channel, spyee: Channel | None) -> str:
    """ChanSpyStart / ChanSpyStop (app_chanspy.c `publish_chanspy_message`): the spying
    channel's snapshot prefixed `Spyer`, the spied-on one's prefixed `Spyee`."""
    return spyer.prefixed("Spyer") + (spyee.prefixed("Spyee") if spyee is not None else "")
