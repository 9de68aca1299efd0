"""The `survey` AGI script: the caller rates the call 1-5 after the operator hung up.

The dialplan runs `AGI(agi://127.0.0.1:4573/survey)` after `Queue(...,c,...)` returns. Queue()
only returns (rather than hanging up) when the operator ended the call, and only an answered
call has an operator, so: a call the tracker has not seen answered is left alone (no command is
sent, the dialplan goes on to its overflow steps); an answered one hears the prompt, presses
1-5 (re-asked `retries` times on another key or silence), the rating is written to the card
(`csat`, next to the operator), a thank-you plays and the script hangs the channel up. No key or
a hang-up leaves the rating empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from ccrouter.config.ivr import SurveySettings
from ccrouter.pbx.agi.session import AgiCommandError, AgiSession

log = structlog.get_logger(__name__)

RATINGS = "12345"


class SurveyCalls(Protocol):
    """What the survey needs from the call tracker."""

    def answered(self, uniqueid: str) -> bool: ...
    def note(self, uniqueid: str, fields: Mapping[str, Any], outcome: str = "") -> None: ...


async def _stream(session: AgiSession, prompt: str | None, keys: str = "") -> str | None:
    if not prompt:
        return None
    try:
        return await session.stream_file(prompt, keys)
    except AgiCommandError as exc:
        log.warning("survey_prompt_missing", prompt=prompt, reply=exc.reply.text)
        return None


async def survey(session: AgiSession, settings: SurveySettings, calls: SurveyCalls) -> None:
    uniqueid = session.request.uniqueid
    if not calls.answered(uniqueid):
        log.debug("survey_skipped", reason="call not answered")
        return
    rating: int | None = None
    for attempt in range(settings.retries + 1):
        if attempt:
            await _stream(session, settings.invalid_prompt)
        key = await _stream(session, settings.prompt, "0123456789*#")
        if key is None:
            key = await session.wait_for_digit(int(settings.timeout_s * 1000))
        if key is not None and key in RATINGS:
            rating = int(key)
            break
        log.info("survey_no_rating", key=key, attempt=attempt + 1)
    if rating is not None:
        calls.note(uniqueid, {"csat": rating})
        log.info("survey_rated", csat=rating)
        await _stream(session, settings.thanks_prompt)
    await session.hangup()
