"""The `ping` script: sets CCROUTER_PING=pong. `ccrouter doctor`'s test call runs it through the
generated `ccrouter-doctor` context to see that Asterisk reaches ccrouter's FastAGI port."""

from __future__ import annotations

from ccrouter import dialplan as dp
from ccrouter.pbx.agi.session import AgiSession


async def ping(session: AgiSession) -> None:
    await session.set_variable(dp.VAR_PING, dp.PING_ANSWER)
