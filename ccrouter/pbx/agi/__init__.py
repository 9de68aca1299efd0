"""FastAGI: the server Asterisk connects to, the session scripts talk through, and the scripts."""

from ccrouter.pbx.agi.server import AgiServer, AgiStats, Script
from ccrouter.pbx.agi.session import (
    AgiArgumentError,
    AgiCommandError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    AgiSession,
    AgiTimeoutError,
)

__all__ = [
    "AgiArgumentError",
    "AgiCommandError",
    "AgiError",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiRequest",
    "AgiServer",
    "AgiSession",
    "AgiStats",
    "AgiTimeoutError",
    "Script",
]
