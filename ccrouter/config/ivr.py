"""The config schema of the caller journey: `hours:`, `ivr:` and `survey:` sections.

Imported by `ccrouter.config` (the models become fields of `Settings`; their cross-field
checks, `ccrouter.config.ivr_checks`, run in its cross-field pass), so this module imports
nothing of ccrouter but the pure domain.

A menu option is a mapping with exactly one action key — `menu`, `language`, `product`,
`collect` (card | account), `message`, `target`, `voicemail`, or `route`/`repeat`/`back`/
`hangup` or an end a feature provides (true; `with_ends` adds those) — plus `next` (the menu
after a language/product/collect; none: route the call) and, for `collect`, `prompt`,
`max_digits`, `timeout_s`, `retries`, `invalid_prompt`, `on_fail`. A bare word (`repeat`)
stands for `{repeat: true}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ccrouter.schedule import Schedule

KeyPath = tuple[str | int, ...]
DTMF_KEYS = "0123456789*#"
_PROMPT = re.compile(r"^[A-Za-z0-9_./-]+$")



def flag_actions(ends: Sequence[str] = ()) -> tuple[str, ...]:
    """The actions that are a flag (`route: true`, or the bare word), with the ends features
    provide (`ends`) after `route`."""
    return ("route", *ends, "repeat", "back", "hangup")


def actions(ends: Sequence[str] = ()) -> tuple[str, ...]:
    return ("menu", "language", "product", "collect", "message", "target", "voicemail",
            *flag_actions(ends))  # fmt: skip


ACTIONS = actions()
FLAG_ACTIONS = flag_actions()
MODIFIERS = ("next", "prompt", "max_digits", "timeout_s", "retries", "invalid_prompt", "on_fail")

Prompt = Annotated[str, Field(pattern=_PROMPT.pattern)]
"""A sound file name without extension, as Playback/STREAM FILE take it (`ccrouter/welcome`)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutOfHoursSettings(_Model):
    prompt: Prompt | None = None
    then: str = "hangup"
    """After the prompt: hang up, leave a voicemail, or an end a feature provides (falls back
    to voicemail, then hang-up, when that feature is not installed)."""
    mailbox: str = ""
    """VoiceMail() mailbox (`100@default`) for `then: voicemail` and a feature end's fallback."""
    feature_ends: ClassVar[tuple[str, ...]] = ()

    @field_validator("then", mode="before")
    @classmethod
    def _known_end(cls, value: Any) -> Any:
        ends = ("hangup", "voicemail", *cls.feature_ends)
        if value not in ends:  # the error a Literal would give
            shown = [repr(e) for e in ends]
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": f"{', '.join(shown[:-1])} or {shown[-1]}"})
        return value


class HoursSettings(_Model):
    """Opening hours of one product line. A line without an entry is open 24/7."""

    timezone: str = "UTC"
    weekly: dict[str, list[str]] = Field(default_factory=dict)
    """mon..sun -> ["09:00-13:00", "14:00-18:00"]; a day not listed is closed."""
    holidays: list[str] = Field(default_factory=list)
    """YYYY-MM-DD dates closed all day."""
    always_open: bool = False
    out_of_hours: OutOfHoursSettings | None = None
    """This line's own out-of-hours action (prompt/then/mailbox); none: `ivr.out_of_hours`."""

    def schedule(self) -> Schedule:
        if self.always_open:
            return Schedule.always()
        return Schedule.build(self.timezone, self.weekly, self.holidays)


class MenuOption(_Model):
    menu: str | None = None
    language: str | None = None
    product: str | None = None
    collect: Literal["card", "account"] | None = None
    message: Prompt | None = None
    target: str | None = None
    voicemail: str | None = None
    route: bool = False
    repeat: bool = False
    back: bool = False
    hangup: bool = False
    next: str | None = None
    prompt: Prompt | None = None
    max_digits: int = Field(default=12, ge=1, le=32)
    timeout_s: float = Field(default=7.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=10)
    invalid_prompt: Prompt | None = None
    on_fail: str | None = None
    feature_ends: ClassVar[tuple[str, ...]] = ()
    """Ends features provide: a flag action each (`with_ends` adds the fields)."""

    @model_validator(mode="before")
    @classmethod
    def _bare_word(cls, value: Any) -> Any:
        if isinstance(value, str) and value in flag_actions(cls.feature_ends):
            return {value: True}
        return value

    def action(self) -> str:
        """The one action key set (the checker makes sure there is exactly one)."""
        for name in actions(self.feature_ends):
            if getattr(self, name) not in (None, False):
                return name
        return "route"


class MenuSettings(_Model):
    prompts: list[Prompt] = Field(min_length=1)
    options: dict[str, MenuOption] = Field(default_factory=dict)
    default: MenuOption = MenuOption(route=True)
    """What happens after `retries` failed attempts (no key, or a key not in `options`)."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=10)
    invalid_prompt: Prompt | None = None
    timeout_prompt: Prompt | None = None

    @field_validator("options", mode="before")
    @classmethod
    def _digit_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value


class IvrSettings(_Model):
    menus: dict[str, MenuSettings] = Field(default_factory=dict)
    """No menus: the IVR is off and the dialplan calls the `route` script directly."""
    start: str | None = None
    greeting: list[Prompt] = Field(default_factory=list)
    language_menu: str | None = None
    """The menu that asks the language; skipped for callers whose recent cards show one."""
    remember_language_days: int = Field(default=90, ge=0)
    """How far back the caller's cards are read for a language; 0: always ask."""
    general_target: str | None = None
    """Where callers go when an account number is not recognised (default: routing's)."""
    sounds_dir: str | None = None
    """Asterisk's sounds directory (absolute): when set, `ccrouter check` verifies that every
    prompt can be played in every language, looked up as Asterisk does (`sound_stems`):
    `<dir>/<lang>/<prompt>.*`, then `<dir>/<prompt>.*`, then `<dir>/en/<prompt>.*`."""
    out_of_hours: OutOfHoursSettings = OutOfHoursSettings()
    accounts: dict[str, str] = Field(default_factory=dict)
    """Account / licence number prefix -> product (the longest matching prefix wins)."""
    account_hook: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """An engineer's account lookup, `package.module:function` (see ccrouter/ivr/accounts.py);
    the `accounts` table is used when it fails or times out."""
    account_hook_timeout_ms: int = Field(default=500, ge=1, le=10_000)

    @property
    def enabled(self) -> bool:
        return bool(self.menus)


class SurveySettings(_Model):
    enabled: bool = False
    prompt: Prompt = "ccrouter/survey"
    """"Please rate the call from 1 to 5"."""
    thanks_prompt: Prompt | None = None
    invalid_prompt: Prompt | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=5)



def with_ends(ends: Sequence[str]) -> tuple[type[IvrSettings], type[HoursSettings]]:
    """`IvrSettings` and `HoursSettings` whose menus and out-of-hours also take the ends
    features provide (`ends`: a flag action each, and a `then:` value)."""
    ends = tuple(ends)
    kw: dict[str, Any] = {"__module__": __name__}
    ooh_base = type("OutOfHoursSettings", (OutOfHoursSettings,),
                    {"feature_ends": ends, "__module__": __name__})  # fmt: skip
    ooh: Any = create_model("OutOfHoursSettings", __base__=ooh_base, **kw)
    option_base = type("MenuOption", (MenuOption,), {"feature_ends": ends, "__module__": __name__})
    flags: dict[str, Any] = {e: (bool, False) for e in ends}
    option: Any = create_model("MenuOption", __base__=option_base, **kw, **flags)
    menu: Any = create_model("MenuSettings", __base__=MenuSettings, **kw,
                             options=(dict[str, option], Field(default_factory=dict)),
                             default=(option, option(route=True)))  # fmt: skip
    ivr = create_model("IvrSettings", __base__=IvrSettings, **kw,
                       menus=(dict[str, menu], Field(default_factory=dict)),
                       out_of_hours=(ooh, ooh()))  # fmt: skip
    optional: Any = ooh | None
    hours = create_model("HoursSettings", __base__=HoursSettings, **kw,
                         out_of_hours=(optional, None))  # fmt: skip
    return ivr, hours
