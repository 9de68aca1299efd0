"""Cross-field rules of the config: names that must be declared, names that must be unique,
settings that only make sense together. They read the raw YAML data (so every error keeps its
key path, and the loader its line) and yield (key path, message).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from ccrouter.config.asterisk import AmiSettings
from ccrouter.config.cluster import cluster_checks
from ccrouter.config.ivr_checks import ivr_checks
from ccrouter.config.names import KeyPath
from ccrouter.config.names import unknown as _known
from ccrouter.config.report_schedules import schedule_checks
from ccrouter.config.schema import QUEUE_STRATEGIES
from ccrouter.config.sections import feature_alert_kinds, overflow_steps
from ccrouter.config.teams import team_checks

__all__ = ["KeyPath"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}




RESERVED_QUEUE = "general"
RESERVED_QUEUE_MESSAGE = (
    "'general' cannot name a queue: [general] is app_queue's settings section in queues.conf"
    " (set `queue:` to another name, e.g. general-line)"
)


def _cross_checks(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """Rules across sections, on the raw values (type errors are pydantic's to report)."""
    # A section of the wrong type is pydantic's error; names are then not checked against it.
    lang_ok, prod_ok = (
        isinstance(data.get("languages"), list),
        isinstance(data.get("products"), dict),
    )
    languages = [x for x in _as_list(data.get("languages")) if isinstance(x, str)]
    products = list(_as_dict(data.get("products")))
    first: dict[tuple[str, str], int] = {}
    for i, lang in enumerate(_as_list(data.get("languages"))):
        if not isinstance(lang, str):  # pydantic names it; a list or map cannot be a key here
            continue
        if ("lang", lang) in first:
            yield ("languages", i), f"duplicate language {lang!r}"
        first.setdefault(("lang", lang), i)
    for i, t in enumerate(_as_list(data.get("targets"))):
        if not isinstance(t, dict):
            continue
        at = ("targets", i)
        product, language, name = t.get("product"), t.get("language"), t.get("name")
        if prod_ok and isinstance(product, str) and product not in products:
            yield (*at, "product"), _known("product", product, products)
        if lang_ok and isinstance(language, str) and language not in languages:
            yield (*at, "language"), _known("language", language, languages)
        if isinstance(product, str) and isinstance(language, str):
            j = first.setdefault(("pl", f"{product}\0{language}"), i)
            if j != i:
                yield at, f"a second target for {product} x {language} (first: targets[{j}])"
        if not isinstance(name, str):
            continue
        j = first.setdefault(("name", name), i)
        if j != i:
            yield (*at, "name"), f"duplicate target name {name!r} (first: targets[{j}])"
            continue
        queue = t.get("queue") or name
        which = "queue" if t.get("queue") else "name"
        if queue == RESERVED_QUEUE:
            yield (*at, which), RESERVED_QUEUE_MESSAGE
        overflow_queue = _as_dict(t.get("overflow")).get("queue")
        if overflow_queue == RESERVED_QUEUE:
            yield (*at, "overflow", "queue"), RESERVED_QUEUE_MESSAGE
        if isinstance(queue, str):
            j = first.setdefault(("queue", queue), i)
            if j != i:
                yield (*at, which), f"duplicate queue name {queue!r} (first: targets[{j}])"
    target_names = [k[1] for k in first if k[0] == "name"]
    routing = _as_dict(data.get("routing"))
    for key, kind, names, ok in (
        ("default_language", "language", languages, lang_ok),
        ("default_product", "product", products, prod_ok),
        ("default_target", "target", target_names, isinstance(data.get("targets"), list)),
    ):
        value = routing.get(key)
        if ok and isinstance(value, str) and value not in names:
            yield ("routing", key), _known(kind, value, names)
    if routing.get("fallback_queue") == RESERVED_QUEUE:
        yield ("routing", "fallback_queue"), RESERVED_QUEUE_MESSAGE
    for did, product in _as_dict(routing.get("did")).items():
        if prod_ok and isinstance(product, str) and product not in products:
            yield ("routing", "did", did), _known("product", product, products)
    skill_names = [*languages, *products]
    for i, op in enumerate(_as_list(data.get("operators"))):
        if not isinstance(op, dict):
            continue
        for attr in ("id", "interface"):
            value = op.get(attr)
            if isinstance(value, str):
                j = first.setdefault((attr, value), i)
                if j != i:
                    yield (
                        ("operators", i, attr),
                        (f"duplicate operator {attr} {value!r} (first: operators[{j}])"),
                    )
        for skill in _as_dict(op.get("skills")):
            if lang_ok and prod_ok and skill not in skill_names:
                yield (
                    ("operators", i, "skills", skill),
                    (f"{_known('skill', skill, skill_names)} (skills are languages or products)"),
                )
    yield from _routing_checks(data, languages if lang_ok else None, target_names)
    ami = _as_dict(data.get("ami"))
    fields = AmiSettings.model_fields
    low = ami.get("reconnect_min_s", fields["reconnect_min_s"].default)
    high = ami.get("reconnect_max_s", fields["reconnect_max_s"].default)
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        key = "reconnect_min_s" if "reconnect_min_s" in ami else "reconnect_max_s"
        yield ("ami", key), f"reconnect_min_s ({low}) must not exceed reconnect_max_s ({high})"
    yield from _static_member_checks(data)
    yield from _web_checks(data, target_names)
    yield from _recording_checks(data, target_names, products if prod_ok else [])
    yield from ivr_checks(data)
    yield from cluster_checks(data)
    yield from team_checks(data)
    yield from schedule_checks(data)
    mail = _as_dict(data.get("mail"))
    if _as_dict(data.get("helpdesk")).get("url") and mail.get("host") and not mail.get(
        "templates"
    ):
        yield ("mail", "templates"), ("the callers' ticket mails need at least one language's "
                                      "templates")  # fmt: skip


def _recording_checks(
    data: dict[str, Any], targets: Sequence[str], products: Sequence[str]
) -> Iterator[tuple[KeyPath, str]]:
    """recordings.targets / products / keep_days_by_product name declared ones."""
    rec = _as_dict(data.get("recordings"))
    for i, name in enumerate(_as_list(rec.get("targets"))):
        if targets and isinstance(name, str) and name not in targets:
            yield ("recordings", "targets", i), _known("target", name, targets)
    for i, name in enumerate(_as_list(rec.get("products"))):
        if products and isinstance(name, str) and name not in products:
            yield ("recordings", "products", i), _known("product", name, products)
    for name in _as_dict(rec.get("keep_days_by_product")):
        if products and isinstance(name, str) and name not in products:
            yield ("recordings", "keep_days_by_product", name), _known("product", name, products)


_CONF_UNSAFE = re.compile(r"[,;\\\"\n]")
"""Characters a queues.conf `member =>` field cannot hold (',' splits it, ';' starts a comment)."""


def _fallback_queue(data: dict[str, Any]) -> Any:
    """The fallback queue as Settings will have it (the default target's queue if left out)."""
    routing = _as_dict(data.get("routing"))
    if "fallback_queue" in routing:
        return routing["fallback_queue"]
    for t in _as_list(data.get("targets")):
        if isinstance(t, dict) and t.get("name") == routing.get("default_target"):
            return t.get("queue") or t.get("name")
    return None


def _static_member_checks(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """routing.fallback_static_members: operators' interfaces, once each, in a fallback queue
    that the generated queues_ccrouter.conf defines, with names a member line can hold."""
    at: KeyPath = ("routing", "fallback_static_members")
    members = _as_list(_as_dict(data.get("routing")).get("fallback_static_members"))
    if not members:
        return
    queue = _fallback_queue(data)
    queues = [t.get("queue") or t.get("name") for t in _as_list(data.get("targets"))
              if isinstance(t, dict)]  # fmt: skip
    if queue is None:
        yield at, "static members need a fallback queue (routing.fallback_queue is null)"
    elif isinstance(queue, str) and queue not in queues:
        yield at, (f"the fallback queue {queue!r} is no target's queue, so queues_ccrouter.conf"
                   " does not define it: write its `member =>` lines in your own queues.conf")
    operators = {op.get("interface"): op for op in _as_list(data.get("operators"))
                 if isinstance(op, dict)}  # fmt: skip
    seen: dict[str, int] = {}
    for i, interface in enumerate(members):
        if not isinstance(interface, str):
            continue
        j = seen.setdefault(interface, i)
        if j != i:
            yield (*at, i), f"duplicate static member {interface!r} (first: [{j}])"
        elif interface not in operators:
            known = [k for k in operators if isinstance(k, str)]
            yield (*at, i), f"{_known('operator interface', interface, known)}"
        else:
            op = operators[interface]
            for key in ("interface", "name", "state_interface"):
                value = op.get(key)
                if isinstance(value, str) and _CONF_UNSAFE.search(value):
                    yield (*at, i), (f"operator {op.get('id')!r}: its {key} {value!r} cannot go"
                                     " into a queues.conf member line (no , ; \\ \" or newline)")


def _web_checks(data: dict[str, Any], targets: Sequence[str]) -> Iterator[tuple[KeyPath, str]]:
    """Report time zone and alert rules (queue names, thresholds, hours per kind)."""
    reports = _as_dict(data.get("reports"))
    tz = reports.get("timezone")
    if isinstance(tz, str) and not _known_timezone(tz):
        yield ("reports", "timezone"), f"unknown time zone {tz!r} (an IANA name: Asia/Tashkent)"
    queues = [
        (t.get("queue") or t.get("name"))
        for t in _as_list(data.get("targets"))
        if isinstance(t, dict)
    ]
    names: dict[str, int] = {}
    feature_kinds = feature_alert_kinds()
    for i, rule in enumerate(_as_list(_as_dict(data.get("alerts")).get("rules"))):
        if not isinstance(rule, dict):
            continue
        at: KeyPath = ("alerts", "rules", i)
        name, kind, queue = rule.get("name"), rule.get("kind"), rule.get("queue")
        if isinstance(name, str):
            j = names.setdefault(name, i)
            if j != i:
                yield (*at, "name"), f"duplicate alert rule name {name!r} (first: rules[{j}])"
        if isinstance(queue, str) and targets and queue not in queues:
            yield (*at, "queue"), _known("queue", queue, [q for q in queues if q])
        system = kind == "ami_down" or kind in feature_kinds
        if queue is not None and system:
            yield (*at, "queue"), f"a {kind} rule applies to the whole system: remove queue"
        threshold = rule.get("threshold")
        if kind == "sl_below" and isinstance(threshold, int | float) and not 0 < threshold <= 1:
            yield (*at, "threshold"), f"sl_below needs a fraction in (0, 1], got {threshold}"
        if (kind == "longest_wait_above" or system) and "threshold" not in rule:
            yield at, f"a {kind} rule needs a threshold"
        if kind == "no_operator" and rule.get("hours") is None:
            yield at, "a no_operator rule needs hours (HH:MM-HH:MM, local time)"
        hours = rule.get("hours")
        if isinstance(hours, str) and re.fullmatch(r"\d{2}:\d{2}-\d{2}:\d{2}", hours):
            for part in hours.split("-"):
                hh, mm = int(part[:2]), int(part[3:])
                if hh > 24 or mm > 59 or (hh == 24 and mm):
                    yield (*at, "hours"), f"not a time of day: {part!r}"


def _known_timezone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True



def _ladder_checks(steps: Any, at: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Expansion steps start at 0 s, grow in time, and only ever widen."""
    last: tuple[int, int, int] | None = None
    for j, step in enumerate(_as_list(steps)):
        after, level, fb = (_as_dict(step).get(k) for k in ("after_s", "min_level", "fallback"))
        if not isinstance(after, int) or not isinstance(level, int | None):
            continue
        level, fb = level or 1, fb if isinstance(fb, int) else 0
        if j == 0 and after != 0:
            yield (*at, j, "after_s"), "the first expansion step must start at after_s: 0"
        if last is not None:
            if after <= last[0]:
                yield (*at, j, "after_s"), f"must be later than the step before ({last[0]} s)"
            elif fb < last[2] or (fb == last[2] and level > last[1]):
                yield (*at, j), "an expansion step must not narrow the step before it"
        last = (after, level, fb)


def _routing_checks(
    data: dict[str, Any], languages: list[str] | None, target_names: list[str]
) -> Iterator[tuple[KeyPath, str]]:
    """Skill-based routing: fallback languages, expansion ladders, overflow steps."""
    routing = _as_dict(data.get("routing"))
    yield from _ladder_checks(routing.get("expansion"), ("routing", "expansion"))
    feature_steps = list(overflow_steps())
    one_of = ["target", "queue", "voicemail", *feature_steps]
    strategy = _as_dict(routing.get("queues")).get("strategy")
    if isinstance(strategy, str) and strategy not in QUEUE_STRATEGIES:
        yield ("routing", "queues", "strategy"), _known("strategy", strategy, QUEUE_STRATEGIES)
    for i, t in enumerate(_as_list(data.get("targets"))):
        t = _as_dict(t)
        at = ("targets", i)
        seen: set[str] = set()
        for j, lang in enumerate(_as_list(t.get("fallback_languages"))):
            if not isinstance(lang, str):
                continue
            if languages is not None and lang not in languages:
                yield (*at, "fallback_languages", j), _known("language", lang, languages)
            elif lang == t.get("language") or lang in seen:
                yield (*at, "fallback_languages", j), f"{lang!r} repeats a language of the target"
            seen.add(lang)
        yield from _ladder_checks(t.get("expansion"), (*at, "expansion"))
        if isinstance(t.get("strategy"), str) and t["strategy"] not in QUEUE_STRATEGIES:
            yield (*at, "strategy"), _known("strategy", t["strategy"], QUEUE_STRATEGIES)
        overflow = t.get("overflow")
        if not isinstance(overflow, dict):
            continue
        given = [k for k in ("target", "queue", "voicemail") if overflow.get(k) is not None]
        given += [k for k in feature_steps if overflow.get(k) is True]
        if len(given) != 1:
            yield (*at, "overflow"), f"give exactly one of {', '.join(one_of)}"
        dest = overflow.get("target")
        if isinstance(dest, str):
            if dest not in target_names:
                yield (*at, "overflow", "target"), _known("target", dest, target_names)
            elif dest == t.get("name"):
                yield (*at, "overflow", "target"), "a target cannot overflow to itself"
