"""Settings -> the pure IVR spec, the line schedules and the account table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ccrouter.config import Settings
from ccrouter.config.ivr import MenuOption
from ccrouter.ivr.model.menus import (
    Choice,
    Collect,
    CollectKind,
    End,
    IvrSpec,
    Kind,
    Menu,
    OutOfHours,
)
from ccrouter.schedule import Schedule


def schedules(settings: Settings) -> dict[str, Schedule]:
    """Product line -> business hours (lines not configured are absent: open 24/7)."""
    return {line: hours.schedule() for line, hours in settings.hours.items()}


def _choice(option: MenuOption) -> Choice:
    action = option.action()
    if action == "collect":
        collect = Collect(
            kind=CollectKind(option.collect or "card"),
            prompt=option.prompt or "",
            max_digits=option.max_digits,
            timeout_ms=int(option.timeout_s * 1000),
            retries=option.retries,
            invalid_prompt=option.invalid_prompt,
            on_fail=option.on_fail,
        )
        return Choice(Kind.COLLECT, next=option.next, collect=collect)
    if action in option.feature_ends:  # an end another feature provides
        return Choice(Kind.FEATURE, action)
    value = getattr(option, action)
    return Choice(Kind(action), "" if isinstance(value, bool) else str(value), next=option.next)


def _out_of_hours(prompt: str | None, then: str, mailbox: str) -> OutOfHours:
    if then in (End.HANGUP, End.VOICEMAIL):
        return OutOfHours(prompt, End(then), mailbox)
    return OutOfHours(prompt, End.FEATURE, mailbox, feature=then)  # a feature's end


def ivr_spec(settings: Settings) -> IvrSpec:
    ivr = settings.ivr
    if not ivr.enabled or ivr.start is None:
        raise ValueError("the IVR has no menus")
    menus = {
        name: Menu(
            name=name,
            prompts=tuple(m.prompts),
            choices={key: _choice(o) for key, o in m.options.items()},
            default=_choice(m.default),
            timeout_ms=int(m.timeout_s * 1000),
            retries=m.retries,
            invalid_prompt=m.invalid_prompt,
            timeout_prompt=m.timeout_prompt,
        )
        for name, m in ivr.menus.items()
    }
    ooh = ivr.out_of_hours
    per_line = {line: _out_of_hours(h.out_of_hours.prompt, h.out_of_hours.then,
                                    h.out_of_hours.mailbox)
                for line, h in settings.hours.items() if h.out_of_hours is not None}  # fmt: skip
    return IvrSpec(
        menus=menus,
        start=ivr.start,
        general_target=ivr.general_target or settings.routing.default_target,
        default_product=settings.routing.default_product,
        greeting=tuple(ivr.greeting),
        language_menu=ivr.language_menu,
        hours=schedules(settings),
        target_products={t.name: t.product for t in settings.targets},
        out_of_hours=_out_of_hours(ooh.prompt, ooh.then, ooh.mailbox),
        line_out_of_hours=per_line,
    )


@dataclass(frozen=True, slots=True)
class AccountTable:
    """Account / licence number prefix -> product; the longest matching prefix wins."""

    prefixes: Mapping[str, str]

    def product(self, digits: str) -> str | None:
        for n in range(len(digits), 0, -1):
            product = self.prefixes.get(digits[:n])
            if product is not None:
                return product
        return None
