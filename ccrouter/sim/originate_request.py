"""An AMI Originate as the simulated PBX received it (manager.c action_originate's fields)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    channel: str
    context: str
    exten: str
    app: str
    data: str
    cid_num: str
    cid_name: str
    timeout_s: float
    asynchronous: bool
    action_id: str
    variables: tuple[tuple[str, str], ...]
    channel_id: str = ""
    """Originate `ChannelId`: the Uniqueid the new channel gets (manager.c)."""
