"""The config schema of the caller journey: `hours:`, `ivr:` and `survey:` sections.

Imported by `ccrouter.config` (the models become fields of `Settings`, `ivr_checks` runs in its
cross-field pass), so this module imports nothing of ccrouter but the pure domain.

A menu option is a mapping with exactly one action key — `menu`, `language`, `product`,
`collect` (card | account), `message`, `target`, `voicemail`, or `route`/`callback`/`repeat`/
`back`/`hangup` (true) — plus `next` (the menu after a language/product/collect; none: route
the call) and, for `collect`, `prompt`, `max_digits`, `timeout_s`, `retries`, `invalid_prompt`,
`on_fail`. A bare word (`repeat`) stands for `{repeat: true}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ccrouter.schedule import BadHours, Schedule, overlaps, parse_date, parse_range

KeyPath = tuple[str | int, ...]
DTMF_KEYS = "0123456789*#"
SOUND_EXTENSIONS = (
    "wav", "WAV", "gsm", "pcm", "ulaw", "ul", "mu", "ulw", "alaw", "al", "alw", "sln", "slin",
    "raw", "sln12", "sln16", "sln24", "sln32", "sln44", "sln48", "sln96", "sln192", "wav16",
    "g722", "g723", "g723sf", "g726-40", "g726-32", "g726-24", "g726-16", "g729", "g719",
    "ilbc", "siren7", "siren14", "spx", "spx16", "spx32", "ogg", "vox", "au",
)  # fmt: skip
"""The file extensions of the sound formats shipped with Asterisk (`.exts` of formats/*.c;
format wav49's files are `.WAV`, main/file.c's build_filename)."""
DEFAULT_SOUND_LANGUAGE = "en"
"""Asterisk's DEFAULT_LANGUAGE (include/asterisk.h): the last directory a prompt is looked in."""
_PROMPT = re.compile(r"^[A-Za-z0-9_./-]+$")

ACTIONS = ("menu", "language", "product", "collect", "message", "target", "voicemail",
           "route", "callback", "repeat", "back", "hangup")  # fmt: skip
FLAG_ACTIONS = ("route", "callback", "repeat", "back", "hangup")
MODIFIERS = ("next", "prompt", "max_digits", "timeout_s", "retries", "invalid_prompt", "on_fail")

Prompt = Annotated[str, Field(pattern=_PROMPT.pattern)]
"""A sound file name without extension, as Playback/STREAM FILE take it (`ccrouter/welcome`)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutOfHoursSettings(_Model):
    prompt: Prompt | None = None
    then: Literal["hangup", "voicemail", "callback"] = "hangup"
    """After the prompt: hang up, leave a voicemail, or request a callback (falls back to
    voicemail, then hang-up, when the callback feature is not installed)."""
    mailbox: str = ""
    """VoiceMail() mailbox (`100@default`) for `then: voicemail` and the callback fallback."""


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
    callback: bool = False
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

    @model_validator(mode="before")
    @classmethod
    def _bare_word(cls, value: Any) -> Any:
        if isinstance(value, str) and value in FLAG_ACTIONS:
            return {value: True}
        return value

    def action(self) -> str:
        """The one action key set (the checker makes sure there is exactly one)."""
        for name in ACTIONS:
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


# --- cross-field checks on the raw YAML values ---------------------------------------------


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _names(kind: str, value: str, names: Any) -> str:
    return f"unknown {kind} {value!r}; declared: {', '.join(map(str, names)) or '(none)'}"


def ivr_checks(data: Mapping[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """Errors of the hours/ivr/survey sections as (key path, message)."""
    languages = [x for x in _l(data.get("languages")) if isinstance(x, str)]
    products = list(_d(data.get("products")))
    targets = [t.get("name") for t in _l(data.get("targets")) if isinstance(t, dict)]
    yield from _hours_checks(_d(data.get("hours")), products)
    ivr = _d(data.get("ivr"))
    menus = _d(ivr.get("menus"))
    prompts: list[tuple[KeyPath, str]] = []
    for i, p in enumerate(_l(ivr.get("greeting"))):
        prompts.append((("ivr", "greeting", i), p))
    ctx = _Ctx(languages, products, targets, list(menus))
    for name, menu in menus.items():
        yield from _menu_checks(ctx, ("ivr", "menus", name), _d(menu), prompts)
    if menus:
        start = ivr.get("start")
        if start is None:
            yield ("ivr", "start"), "required when menus are configured (the first menu)"
        elif isinstance(start, str) and start not in menus:
            yield ("ivr", "start"), _names("menu", start, menus)
        yield from _graph_checks(ivr, menus)
    lang_menu = ivr.get("language_menu")
    if isinstance(lang_menu, str) and lang_menu not in menus:
        yield ("ivr", "language_menu"), _names("menu", lang_menu, menus)
    general = ivr.get("general_target")
    if isinstance(general, str) and general not in targets:
        yield ("ivr", "general_target"), _names("target", general, targets)
    ooh_all: list[tuple[KeyPath, dict[str, Any]]] = [
        (("ivr", "out_of_hours"), _d(ivr.get("out_of_hours")))]
    ooh_all += [(("hours", line, "out_of_hours"), _d(_d(spec).get("out_of_hours")))
                for line, spec in _d(data.get("hours")).items()]  # fmt: skip
    for at, ooh in ooh_all:
        if ooh.get("then") == "voicemail" and not ooh.get("mailbox"):
            yield (*at, "mailbox"), "required when then: voicemail"
        if isinstance(ooh.get("prompt"), str):
            prompts.append(((*at, "prompt"), ooh["prompt"]))
    for prefix, product in _d(ivr.get("accounts")).items():
        at = ("ivr", "accounts", prefix)
        if not (prefix.isascii() and prefix.isdigit()):
            yield at, "an account prefix is digits only"
        if isinstance(product, str) and products and product not in products:
            yield at, _names("product", product, products)
    survey = _d(data.get("survey"))
    for key in ("prompt", "thanks_prompt", "invalid_prompt"):
        if isinstance(survey.get(key), str):
            prompts.append((("survey", key), survey[key]))
    sounds = ivr.get("sounds_dir")
    if isinstance(sounds, str):
        yield from _sound_checks(Path(sounds), prompts, languages)


def _hours_checks(hours: dict[str, Any], products: list[str]) -> Iterator[tuple[KeyPath, str]]:
    for line, spec in hours.items():
        at: KeyPath = ("hours", line)
        if products and line not in products:
            yield at, _names("product", line, products)
        spec = _d(spec)
        tz = spec.get("timezone", "UTC")
        if isinstance(tz, str):
            try:
                Schedule.build(tz, {})
            except BadHours as exc:
                yield (*at, "timezone"), str(exc)
        for day, ranges in _d(spec.get("weekly")).items():
            parsed = []
            for i, text in enumerate(_l(ranges)):
                if not isinstance(text, str):
                    continue
                try:
                    parsed.append(parse_range(text))
                except BadHours as exc:
                    yield (*at, "weekly", day, i), str(exc)
            if day not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
                yield (*at, "weekly", day), "unknown weekday (mon, tue, wed, thu, fri, sat, sun)"
            clash = overlaps(parsed)
            if clash is not None:
                a, b = (f"{r[0] // 60:02d}:{r[0] % 60:02d}-{r[1] // 60:02d}:{r[1] % 60:02d}"
                        for r in clash)  # fmt: skip
                yield (*at, "weekly", day), f"{a} overlaps {b}"
        for i, text in enumerate(_l(spec.get("holidays"))):
            try:
                parse_date(str(text))
            except BadHours as exc:
                yield (*at, "holidays", i), str(exc)


class _Ctx:
    def __init__(self, languages: list[str], products: list[str], targets: list[Any],
                 menus: list[str]) -> None:  # fmt: skip
        self.names = {"language": languages, "product": products, "target": targets,
                      "menu": menus, "next": menus, "on_fail": targets}  # fmt: skip


def _menu_checks(
    ctx: _Ctx, at: KeyPath, menu: dict[str, Any], prompts: list[tuple[KeyPath, str]]
) -> Iterator[tuple[KeyPath, str]]:
    for i, p in enumerate(_l(menu.get("prompts"))):
        prompts.append(((*at, "prompts", i), p))
    for key in ("invalid_prompt", "timeout_prompt"):
        if isinstance(menu.get(key), str):
            prompts.append(((*at, key), menu[key]))
    options: list[tuple[KeyPath, str | None, Any]] = [
        ((*at, "options", k), k, v) for k, v in _d(menu.get("options")).items()
    ]
    if "default" in menu:
        options.append(((*at, "default"), None, menu["default"]))
    for where, digit, option in options:
        if digit is not None and (len(digit) != 1 or digit not in DTMF_KEYS):
            yield where, f"{digit!r} is not one DTMF key (0-9, *, #)"
        if isinstance(option, str):
            if option not in FLAG_ACTIONS:
                yield where, f"unknown action {option!r}; one of: {', '.join(ACTIONS)}"
            continue
        if not isinstance(option, dict):
            continue
        actions = [a for a in ACTIONS if a in option and option[a] not in (None, False)]
        if len(actions) != 1:
            found = ", ".join(actions) or "none"
            yield where, f"an option needs exactly one action ({', '.join(ACTIONS)}); got {found}"
        for ref in ("menu", "language", "product", "target", "next", "on_fail"):
            value = option.get(ref)
            names = ctx.names[ref]
            if isinstance(value, str) and names and value not in names:
                yield (*where, ref), _names("menu" if ref == "next" else ref, value, names)
        if "next" in option and actions and actions[0] not in ("language", "product", "collect"):
            yield (*where, "next"), "`next` only follows language, product or collect"
        if option.get("collect") is not None and not option.get("prompt"):
            yield (*where, "prompt"), "collect needs the prompt that asks for the digits"
        for key in ("message", "prompt", "invalid_prompt"):
            if isinstance(option.get(key), str):
                prompts.append(((*where, key), option[key]))


def _edges(option: Any) -> tuple[list[str], bool]:
    """Menus an option leads to, and whether it can end the IVR."""
    if isinstance(option, str):
        return [], option in ("route", "callback", "hangup")
    option = _d(option)
    if isinstance(option.get("menu"), str):
        return [option["menu"]], False
    if any(option.get(k) not in (None, False) for k in ("language", "product", "collect")):
        nxt = option.get("next")
        return ([nxt], False) if isinstance(nxt, str) else ([], True)
    return [], any(option.get(a) not in (None, False) for a in ACTIONS if a not in
                   ("repeat", "back"))  # fmt: skip


def _graph_checks(ivr: dict[str, Any], menus: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    graph: dict[str, list[str]] = {}
    exits: set[str] = set()
    for name, menu in menus.items():
        menu = _d(menu)
        options = list(_d(menu.get("options")).values())
        options.append(menu.get("default", "route"))
        graph[name] = []
        for option in options:
            to, ends = _edges(option)
            graph[name] += [m for m in to if m in menus]
            if ends:
                exits.add(name)
    roots = [r for r in (ivr.get("start"), ivr.get("language_menu")) if isinstance(r, str)]
    seen: set[str] = set()
    todo = [r for r in roots if r in menus]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph[m]
    for name in menus:
        if roots and name not in seen:
            yield ("ivr", "menus", name), "unreachable: no menu or start leads here"
    can_exit = set(exits)
    changed = True
    while changed:
        changed = False
        for name, to in graph.items():
            if name not in can_exit and any(t in can_exit for t in to):
                can_exit.add(name)
                changed = True
    for name in menus:
        if name not in can_exit and name in seen | set(roots):
            loop = " -> ".join([name, *graph[name][:3]])
            yield ("ivr", "menus", name), f"a loop with no exit ({loop} ...): no option routes, " \
                "hangs up or leaves a message"


def sound_stems(root: Path, prompt: str, language: str) -> list[Path]:
    """Where Asterisk looks for `prompt` on a channel of `language`, in order, without the
    format's extension: main/file.c's fileexists_core with asterisk.conf's default
    `languageprefix = yes`. The language, then the language cut at each last `_` (`pt_BR` ->
    `pt`), then no language, then the default language `en` unless already tried. A relative
    prompt is under `root` (`<root>/<lang>/<prompt>`); an absolute one keeps its path and gets
    the language before its file name (`/a/<lang>/b`)."""
    langs: list[str | None] = []
    lang = language
    while lang:
        langs.append(lang)
        lang = lang.rpartition("_")[0]
    langs.append(None)
    if DEFAULT_SOUND_LANGUAGE not in langs:
        langs.append(DEFAULT_SOUND_LANGUAGE)
    if prompt.startswith("/"):
        path = Path(prompt)
        return [path if x is None else path.parent / x / path.name for x in langs]
    return [root / prompt if x is None else root / x / prompt for x in langs]


def sound_file(stems: list[Path]) -> Path | None:
    """The first stem that exists in one of Asterisk's formats, as that file; None if none."""
    for stem in stems:
        for ext in SOUND_EXTENSIONS:
            path = stem.with_name(f"{stem.name}.{ext}")
            if path.is_file():
                return path
    return None


def _sound_checks(
    root: Path, prompts: list[tuple[KeyPath, Any]], languages: list[str]
) -> Iterator[tuple[KeyPath, str]]:
    """A prompt no configured language can play is an error naming the paths tried; one
    missing in a language's own directory but found in the fallbacks is played, so fine."""
    if not root.is_dir():
        yield ("ivr", "sounds_dir"), f"{root} is not a directory"
        return
    for at, prompt in prompts:
        if not isinstance(prompt, str):
            continue
        missing = [lang for lang in languages
                   if sound_file(sound_stems(root, prompt, lang)) is None]  # fmt: skip
        if missing:
            tried = dict.fromkeys(s for lang in missing for s in sound_stems(root, prompt, lang))
            yield at, (f"prompt {prompt!r} not found for: {', '.join(missing)} (tried "
                       f"{', '.join(f'{s}.*' for s in tried)})")  # fmt: skip
