"""What every AMI translator shares: the error for a bad event, the channel's CCROUTER_CARD
from its `ChanVariable` header(s), and the device interface of a channel name."""

from __future__ import annotations

from typing import Any

from ccrouter.dialplan import VAR_CARD

NO_CALLER_ID = ("<unknown>", "unknown")
"""What main/manager_channels.c prints for an empty caller id number or name."""
_CARD_PREFIX = VAR_CARD + "="


class BadEvent(ValueError):
    def __init__(self, event: str, header: str, problem: str) -> None:
        super().__init__(f"AMI event {event}: header {header!r} {problem}")
        self.event, self.header = event, header


def chan_card(value: Any) -> str:
    """CCROUTER_CARD from a `ChanVariable` header value (`NAME=value`, one string or, with
    several channelvars, a list; main/manager_channels.c prints one header per variable)."""
    for item in value if isinstance(value, list) else (value,):
        if isinstance(item, str) and item.startswith(_CARD_PREFIX):
            return item[len(_CARD_PREFIX) :].strip()
    return ""


def interface_of(channel: str) -> str:
    """The device interface of a channel name: `PJSIP/1001-0000000a` -> `PJSIP/1001`,
    `Local/agent7@ctx-00000003;1` -> `Local/agent7@ctx`."""
    name = channel.rsplit(";", 1)[0] if channel.startswith("Local/") else channel
    base, sep, _ = name.rpartition("-")
    return base if sep and "/" in base else name
