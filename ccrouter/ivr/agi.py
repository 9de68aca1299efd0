"""The `ivr` AGI script: drives the pure IVR machine over the channel.

`AGI(agi://127.0.0.1:4573/ivr,did=${EXTEN})` (optionally `product=`, `lang=`). Prompts that
listen are played with STREAM FILE and all keys as escape digits, then WAIT FOR DIGIT (digits
pressed while nothing listens are lost); digit entry is GET DATA; the language is set with
SET VARIABLE CHANNEL(language). Every step lands in the card's `ivr_path` as it happens. At the
end the caller is routed exactly like the `route` script does (the same channel variables, in
one `EXEC MSet` round trip when the values allow), or CCROUTER_STATUS says `hangup` /
`voicemail`. A hang-up at any step ends the script (the card
keeps the path so far and closes as ivr_only).
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from ccrouter.dialplan import (
    STATUS_HANGUP,
    STATUS_VOICEMAIL,
    VAR_CARD,
    VAR_CHANNEL_LANGUAGE,
    VAR_LANGUAGE,
    VAR_STATUS,
    VAR_VOICEMAIL,
)
from ccrouter.ivr.model import machine as machine
from ccrouter.ivr.model.machine import End, Finish, IvrState
from ccrouter.ivr.service import IvrService
from ccrouter.pbx.agi.session import AgiCommandError, AgiHangup, AgiSession
from ccrouter.routing.agi import requirements_from_args, set_route_variables

log = structlog.get_logger(__name__)


async def _play(session: AgiSession, prompts: tuple[str, ...], keys: str = "") -> str | None:
    """Play prompts in turn; the key that interrupted one (only with `keys`), else None."""
    for prompt in prompts:
        try:
            key = await session.stream_file(prompt, keys)
        except AgiCommandError as exc:  # a missing sound: say so, go on with the next
            log.warning("ivr_prompt_missing", prompt=prompt, reply=exc.reply.text)
            continue
        if key is not None:
            return key
    return None


async def _perform(session: AgiSession, service: IvrService, step: machine.Step, card: str,
                   state: IvrState, dialled: str) -> machine.Event:  # fmt: skip
    if isinstance(step, machine.Play):
        await _play(session, step.prompts)
        return machine.Done()
    if isinstance(step, machine.SetLanguage):
        await session.set_variable(VAR_CHANNEL_LANGUAGE, step.language)
        await session.set_variable(VAR_LANGUAGE, step.language)
        return machine.Done()
    if isinstance(step, machine.Ask):
        key = await _play(session, step.prompts, step.keys)
        if key is None:
            key = await session.wait_for_digit(step.timeout_ms)
        return machine.NoInput() if key is None else machine.Pressed(key)
    if isinstance(step, machine.Read):
        digits = await session.get_data(step.prompt, step.timeout_ms, step.max_digits)
        return machine.Entered(digits) if digits else machine.NoInput()
    if isinstance(step, machine.Check) and step.kind is machine.CollectKind.ACCOUNT:
        match = await service.find_account(step.digits, session.request, state, dialled)
        return machine.Checked(None) if match is None else machine.Checked(match.product,
                                                                           match.target)
    if isinstance(step, machine.Check):
        return machine.Checked(await service.check(step.kind, step.digits, card))
    raise TypeError(f"not a step to perform: {step!r}")


async def ivr(session: AgiSession, service: IvrService) -> None:
    request = session.request
    requirements, problems = requirements_from_args(request.args)
    if problems:
        log.warning("ivr_arguments_ignored", problems=problems)
    dialled = requirements.dialled or request.dnid or request.extension
    card, call = await service.begin(request, dialled, requirements.product,
                                     requirements.language)  # fmt: skip
    structlog.contextvars.bind_contextvars(card=card)
    spec = service.spec
    state, step = machine.start(spec, call)
    service.record(request.uniqueid, state)
    try:
        await session.set_variable(VAR_CARD, card)
        while not isinstance(step, Finish):
            event = await _perform(session, service, step, card, state, dialled)
            state, step = machine.advance(spec, state, event)
            service.record(request.uniqueid, state)
    except AgiHangup:
        service.record(request.uniqueid, _hung_up(state))
        log.info("ivr_caller_hung_up", path=list(state.path[-3:]))
        raise
    log.info("ivr_finished", end=step.feature or step.end.value, out_of_hours=step.out_of_hours,
             language=state.language, product=state.product)  # fmt: skip
    await _finish(session, service, state, step, card, dialled)


def _hung_up(state: IvrState) -> IvrState:
    return replace(state, path=(*state.path, "hangup"))


async def _finish(session: AgiSession, service: IvrService, state: IvrState, step: Finish,
                  card: str, dialled: str) -> None:  # fmt: skip
    request = session.request
    if step.out_of_hours:
        service.out_of_hours(request.uniqueid)
    if step.end is End.ROUTE:
        result = await service.route(request, state, dialled, step.target)
        await set_route_variables(session, result)
        return
    end = step.end
    if end is End.FEATURE:  # an end another feature provides
        if await service.end_by(step.feature, session, state, card):
            await session.set_variable(VAR_STATUS, STATUS_HANGUP)
            return
        mailbox = step.mailbox or service.settings.ivr.out_of_hours.mailbox
        log.warning("ivr_end_fallback", end=step.feature, to="voicemail" if mailbox else "hangup")
        end = End.VOICEMAIL if mailbox else End.HANGUP
    if end is End.VOICEMAIL:
        mailbox = step.mailbox or service.settings.ivr.out_of_hours.mailbox
        await session.set_variables([(VAR_VOICEMAIL, mailbox), (VAR_STATUS, STATUS_VOICEMAIL)])
        return
    await session.set_variable(VAR_STATUS, STATUS_HANGUP)
