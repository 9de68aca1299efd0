"""Cross-field checks of the `hours:`, `ivr:` and `survey:` sections on the raw YAML values.

`ivr_checks` (run in `ccrouter.config.checks`' cross-field pass) yields (key path, message)
for names that must be declared (menus, languages, products, targets), opening hours that do
not parse or overlap, menu options with not exactly one action, menus no start reaches or that
loop with no exit, and (with `ivr.sounds_dir`) prompts that cannot be played.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ccrouter.config.ivr import DTMF_KEYS, KeyPath, actions, flag_actions
from ccrouter.config.sections import ivr_ends
from ccrouter.config.sounds import sound_checks
from ccrouter.schedule import BadHours, Schedule, overlaps, parse_date, parse_range


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
        yield from sound_checks(Path(sounds), prompts, languages)


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
    known = actions(ivr_ends())
    for where, digit, option in options:
        if digit is not None and (len(digit) != 1 or digit not in DTMF_KEYS):
            yield where, f"{digit!r} is not one DTMF key (0-9, *, #)"
        if isinstance(option, str):
            if option not in flag_actions(ivr_ends()):
                yield where, f"unknown action {option!r}; one of: {', '.join(known)}"
            continue
        if not isinstance(option, dict):
            continue
        found_actions = [a for a in known if a in option and option[a] not in (None, False)]
        if len(found_actions) != 1:
            found = ", ".join(found_actions) or "none"
            yield where, f"an option needs exactly one action ({', '.join(known)}); got {found}"
        for ref in ("menu", "language", "product", "target", "next", "on_fail"):
            value = option.get(ref)
            names = ctx.names[ref]
            if isinstance(value, str) and names and value not in names:
                yield (*where, ref), _names("menu" if ref == "next" else ref, value, names)
        first = found_actions[0] if found_actions else None
        if "next" in option and first and first not in ("language", "product", "collect"):
            yield (*where, "next"), "`next` only follows language, product or collect"
        if option.get("collect") is not None and not option.get("prompt"):
            yield (*where, "prompt"), "collect needs the prompt that asks for the digits"
        for key in ("message", "prompt", "invalid_prompt"):
            if isinstance(option.get(key), str):
                prompts.append(((*where, key), option[key]))


def _edges(option: Any) -> tuple[list[str], bool]:
    """Menus an option leads to, and whether it can end the IVR."""
    if isinstance(option, str):
        return [], option in ("route", *ivr_ends(), "hangup")
    option = _d(option)
    if isinstance(option.get("menu"), str):
        return [option["menu"]], False
    if any(option.get(k) not in (None, False) for k in ("language", "product", "collect")):
        nxt = option.get("next")
        return ([nxt], False) if isinstance(nxt, str) else ([], True)
    return [], any(option.get(a) not in (None, False) for a in actions(ivr_ends()) if a not in
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

