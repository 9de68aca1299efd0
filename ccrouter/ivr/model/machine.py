"""The IVR as a pure state machine: (spec, state, input) -> (state, next step).

`start(spec, call)` gives the first step; the AGI script performs it and feeds the result back
with `advance(spec, state, event)` until the step is a `Finish`. Steps and the events that
answer them:

    Play(prompts)           -> Done            (greeting, incident, invalid/timeout, message)
    SetLanguage(language)   -> Done            (CHANNEL(language))
    Ask(menu, prompts, ...) -> Pressed(d) | NoInput
    Read(kind, prompt, ...) -> Entered(digits) | NoInput
    Check(kind, digits)     -> Checked(value | None)   (card exists? account -> product?)
    Finish(end, ...)        (route / hang up / voicemail / a feature's; out_of_hours flag)

Every step and input is appended to `state.path` (the card's `ivr_path`). The machine knows the
clock (`CallStart.now`), the line schedules and the active incidents, so business hours and
announcements are decided here too: when the product becomes known (from the dialled number, a
menu or an account number) its incidents play once and, out of hours, the caller hears the
out-of-hours prompt and the call ends as configured.
"""

from __future__ import annotations

from dataclasses import replace

from ccrouter.ivr.model.menus import (
    ALL_KEYS,
    MAX_INPUTS,
    TERMINAL,
    Announcement,
    CallStart,
    Choice,
    Collect,
    CollectKind,
    End,
    IvrSpec,
    Kind,
    Menu,
    OutOfHours,
)
from ccrouter.ivr.model.steps import (
    Ask,
    Check,
    Checked,
    Done,
    Entered,
    Event,
    Finish,
    IvrError,
    IvrState,
    NoInput,
    Play,
    Pressed,
    Read,
    SetLanguage,
    Step,
)

__all__ = [
    "ALL_KEYS",
    "MAX_INPUTS",
    "TERMINAL",
    "Announcement",
    "Ask",
    "CallStart",
    "Check",
    "Checked",
    "Choice",
    "Collect",
    "CollectKind",
    "Done",
    "End",
    "Entered",
    "Event",
    "Finish",
    "IvrError",
    "IvrSpec",
    "IvrState",
    "Kind",
    "Menu",
    "NoInput",
    "OutOfHours",
    "Play",
    "Pressed",
    "Read",
    "SetLanguage",
    "Step",
]

# --- the machine ---------------------------------------------------------------------------


def start(spec: IvrSpec, call: CallStart) -> tuple[IvrState, Step]:
    state = IvrState(
        now=call.now,
        language=call.language,
        remembered_language=None if call.language else call.remembered_language,
        incidents=call.incidents,
        path=("start",),
    )
    steps: list[Step] = []
    if spec.greeting:
        steps.append(Play(spec.greeting))
    if call.language:
        steps.append(SetLanguage(call.language))
        state = _note(state, f"language:{call.language}")
    state, more = _incidents(state, None)
    steps += more
    if call.product:
        state = replace(state, product=call.product)
        state = _note(state, f"product:{call.product}")
        state, more = _incidents(state, call.product)
        steps += more
        if _closed(spec, state, call.product):
            if not state.language and state.remembered_language:
                # Known from the caller's history: the closed message in their language.
                language = state.remembered_language
                state = _note(replace(state, language=language), f"language:{language}")
                steps.append(SetLanguage(language))
            elif not state.language and spec.language_menu:
                state = replace(state, closed_after_language=True)
                state, more = _enter(spec, state, spec.language_menu)
                return _emit(state, steps + more, spec)
            return _emit(state, [*steps, *_out_of_hours(spec, call.product)], spec)
    state, more = _enter(spec, state, spec.start)
    return _emit(state, steps + more, spec)


def advance(spec: IvrSpec, state: IvrState, event: Event) -> tuple[IvrState, Step]:
    step = state.current
    if isinstance(step, Play | SetLanguage):
        if not isinstance(event, Done):
            raise IvrError(f"{type(step).__name__} is answered by Done, not {event!r}")
        return _next_queued(spec, state)
    if isinstance(step, Ask):
        if isinstance(event, Pressed):
            return _pressed(spec, state, event.key)
        if isinstance(event, NoInput):
            return _failed(spec, _note(state, "timeout"), timeout=True)
        raise IvrError(f"Ask is answered by Pressed or NoInput, not {event!r}")
    if isinstance(step, Read):
        if isinstance(event, Entered) and event.digits:
            state = _note(state, f"entered:{event.digits}")
            return _emit(state, [Check(step.kind, event.digits)], spec)
        if isinstance(event, Entered | NoInput):
            return _collect_failed(spec, _note(state, "timeout"))
        raise IvrError(f"Read is answered by Entered or NoInput, not {event!r}")
    if isinstance(step, Check):
        if isinstance(event, Checked):
            return _checked(spec, state, step, event.value, event.target)
        raise IvrError(f"Check is answered by Checked, not {event!r}")
    raise IvrError(f"no step in progress for {event!r}")


def _note(state: IvrState, entry: str) -> IvrState:
    return replace(state, path=(*state.path, entry))


def _emit(state: IvrState, steps: list[Step], spec: IvrSpec) -> tuple[IvrState, Step]:
    if not steps:
        return _finish_route(spec, state, None)
    first, rest = steps[0], tuple(steps[1:])
    if isinstance(first, Ask | Read):
        inputs = state.inputs + 1
        if inputs > MAX_INPUTS:
            return _finish_route(spec, _note(state, "too_many_inputs"), None)
        state = replace(state, inputs=inputs)
    if isinstance(first, Finish):
        state = _note(state, _finish_note(first))
    return replace(state, current=first, queue=rest), first


def _next_queued(spec: IvrSpec, state: IvrState) -> tuple[IvrState, Step]:
    return _emit(replace(state, current=None), list(state.queue), spec)


def _finish_note(f: Finish) -> str:
    what = f.feature or f.end.value
    if f.target:
        what += f":{f.target}"
    if f.mailbox:
        what += f":{f.mailbox}"
    return ("out_of_hours:" if f.out_of_hours else "") + what


def _incidents(state: IvrState, product: str | None) -> tuple[IvrState, list[Step]]:
    prompts: list[str] = []
    played = set(state.played)
    for inc in state.incidents:
        relevant = not inc.products if product is None else product in inc.products
        if relevant and inc.id not in played:
            played.add(inc.id)
            state = _note(state, f"incident:{inc.id}")
            if inc.prompt:
                prompts.append(inc.prompt)
    state = replace(state, played=frozenset(played))
    return state, ([Play(tuple(prompts))] if prompts else [])


def _closed(spec: IvrSpec, state: IvrState, product: str) -> bool:
    schedule = spec.hours.get(product)
    return schedule is not None and not schedule.is_open(state.now)


def _out_of_hours(spec: IvrSpec, product: str) -> list[Step]:
    ooh = spec.out_of_hours_for(product)
    steps: list[Step] = [Play((ooh.prompt,))] if ooh.prompt else []
    return [*steps, Finish(ooh.then, mailbox=ooh.mailbox, out_of_hours=True,
                           feature=ooh.feature)]  # fmt: skip


def _enter(
    spec: IvrSpec, state: IvrState, name: str | None, *, push: bool = True
) -> tuple[IvrState, list[Step]]:
    """Go to menu `name` (None: route now) and ask it, or skip a remembered language menu.
    The menu left behind is pushed for `back` (not when going back)."""
    if name is None or (state.closed_after_language and name != spec.language_menu):
        # Past the language question of a closed line: its out-of-hours action.
        return _route_steps(spec, state, None)
    menu = spec.menus[name]
    stack = (*state.stack, state.menu) if push and state.menu else state.stack
    state = replace(state, menu=name, tries=0, stack=stack)
    skipped = f"menu:{name}:skipped"
    known = state.language or state.remembered_language
    if name == spec.language_menu and known and skipped not in state.path:
        # Once only: a caller who goes back to the language menu is asked.
        for choice in menu.choices.values():
            if choice.kind is Kind.LANGUAGE and choice.value == known:
                state = _note(state, skipped)
                if state.language:  # already set by the dialplan
                    return _enter(spec, state, choice.next)
                return _apply(spec, state, choice)
    state = _note(state, f"menu:{name}")
    return state, [Ask(name, menu.prompts, menu.timeout_ms)]


def _route_steps(
    spec: IvrSpec, state: IvrState, target: str | None
) -> tuple[IvrState, list[Step]]:
    product = spec.target_products.get(target or "") or state.product or spec.default_product
    if _closed(spec, state, product):
        return state, _out_of_hours(spec, product)
    return state, [Finish(End.ROUTE, target=target)]


def _finish_route(spec: IvrSpec, state: IvrState, target: str | None) -> tuple[IvrState, Step]:
    state, steps = _route_steps(spec, state, target)
    first, rest = steps[0], tuple(steps[1:])
    if isinstance(first, Finish):
        state = _note(state, _finish_note(first))
    return replace(state, current=first, queue=rest), first


def _apply(spec: IvrSpec, state: IvrState, choice: Choice) -> tuple[IvrState, list[Step]]:
    kind = choice.kind
    if kind is Kind.MENU:
        return _enter(spec, state, choice.value)
    if kind is Kind.LANGUAGE:
        state = _note(replace(state, language=choice.value), f"language:{choice.value}")
        state, steps = _enter(spec, state, choice.next)
        return state, [SetLanguage(choice.value), *steps]
    if kind is Kind.PRODUCT:
        return _set_product(spec, state, choice.value, choice.next)
    if kind is Kind.COLLECT:
        assert choice.collect is not None
        c = choice.collect
        state = replace(state, collect=c, collect_next=choice.next, tries=0)
        state = _note(state, f"collect:{c.kind.value}")
        return state, [Read(c.kind, c.prompt, c.max_digits, c.timeout_ms)]
    if kind is Kind.MESSAGE:
        return state, [Play((choice.value,)), Finish(End.HANGUP)]
    if kind is Kind.TARGET:
        return _route_steps(spec, state, choice.value)
    if kind is Kind.ROUTE:
        return _route_steps(spec, state, None)
    if kind is Kind.VOICEMAIL:
        return state, [Finish(End.VOICEMAIL, mailbox=choice.value)]
    if kind is Kind.FEATURE:
        return state, [Finish(End.FEATURE, feature=choice.value)]
    if kind is Kind.HANGUP:
        return state, [Finish(End.HANGUP)]
    if kind is Kind.REPEAT:
        menu = spec.menus[state.menu]
        return state, [Ask(state.menu, menu.prompts, menu.timeout_ms)]
    # BACK
    if not state.stack:
        menu = spec.menus[state.menu]
        return state, [Ask(state.menu, menu.prompts, menu.timeout_ms)]
    back, stack = state.stack[-1], state.stack[:-1]
    return _enter(spec, replace(state, stack=stack), back, push=False)


def _set_product(
    spec: IvrSpec, state: IvrState, product: str, next_menu: str | None
) -> tuple[IvrState, list[Step]]:
    state = _note(replace(state, product=product), f"product:{product}")
    state, steps = _incidents(state, product)
    if _closed(spec, state, product):
        return state, steps + _out_of_hours(spec, product)
    state, more = _enter(spec, state, next_menu)
    return state, steps + more


def _pressed(spec: IvrSpec, state: IvrState, key: str) -> tuple[IvrState, Step]:
    menu = spec.menus[state.menu]
    choice = menu.choices.get(key)
    if choice is None:
        return _failed(spec, _note(state, f"invalid:{key}"), timeout=False)
    state, steps = _apply(spec, _note(state, f"key:{key}"), choice)
    return _emit(state, steps, spec)


def _failed(spec: IvrSpec, state: IvrState, *, timeout: bool) -> tuple[IvrState, Step]:
    menu = spec.menus[state.menu]
    tries = state.tries + 1
    if tries > menu.retries:
        state, steps = _apply(spec, _note(replace(state, tries=0), "default"), menu.default)
        return _emit(state, steps, spec)
    state = replace(state, tries=tries)
    prompt = menu.timeout_prompt if timeout else menu.invalid_prompt
    again: list[Step] = [Play((prompt,))] if prompt else []
    return _emit(state, [*again, Ask(menu.name, menu.prompts, menu.timeout_ms)], spec)


def _collect_failed(spec: IvrSpec, state: IvrState) -> tuple[IvrState, Step]:
    c = state.collect
    assert c is not None
    tries = state.tries + 1
    if tries > c.retries:
        state = _note(replace(state, tries=0, collect=None), "collect_failed")
        if c.on_fail is not None or c.kind is CollectKind.ACCOUNT:
            return _finish_route(spec, state, c.on_fail or spec.general_target)
        state, steps = _enter(spec, state, state.collect_next)
        return _emit(state, steps, spec)
    state = replace(state, tries=tries)
    again: list[Step] = [Play((c.invalid_prompt,))] if c.invalid_prompt else []
    return _emit(state, [*again, Read(c.kind, c.prompt, c.max_digits, c.timeout_ms)], spec)


def _checked(
    spec: IvrSpec, state: IvrState, step: Check, value: str | None, target: str | None
) -> tuple[IvrState, Step]:
    if value is None:
        return _collect_failed(spec, _note(state, f"invalid_{step.kind.value}"))
    next_menu = state.collect_next
    state = replace(state, collect=None, tries=0)
    if step.kind is CollectKind.CARD:
        state = _note(replace(state, card=value), f"card:{value}")
        state, steps = _enter(spec, state, next_menu)
        return _emit(state, steps, spec)
    state = replace(state, account=step.digits)
    if target is not None:
        # The lookup hook named a target: its product's incidents, then straight there.
        state = _note(replace(state, product=value), f"account_target:{target}")
        state, steps = _incidents(state, value)
        state, more = _route_steps(spec, state, target)
        return _emit(state, steps + more, spec)
    state, steps = _set_product(spec, state, value, next_menu)
    return _emit(state, steps, spec)
