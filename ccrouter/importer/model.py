"""Parsed app_queue queues -> a starter config (data plus the comments where it guessed). Pure.

Targets come from queues (one per queue, the queue's name and strategy), operators from the
members (one per interface), skills from the penalties, inverting `routing.model.skills`:
a member of a target's own-language queue has penalty `LEVEL_MAX - min(product, language)`.
Two shapes are tried:

1. names read as product x language (`wallet-ru`, `wallet-uz`): products and languages are
   shared, so an operator in wallet-ru and terminal-uz is also a member of wallet-uz and
   terminal-ru. The smallest skills that give every membership (each skill the highest level
   any of the operator's queues needs) reproduce the members exactly if any skills can; they
   are checked forward with `penalty()`.
2. otherwise each queue is its own product (the language still read from the name): any
   membership pattern is then exact.

Penalties outside 0..99 cannot be said with levels 1..100 (own language): they are clamped,
with a comment. The expansion ladder is one step (every member rings at once, by penalty, as
app_queue did without queue rules), last-agent queues are off, and so is what a feature
section's starter turns off, so that `ccrouter dialplan` generates exactly the imported queues.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ccrouter.dialplan import PERSONAL_QUEUE_PREFIX
from ccrouter.importer.names import NAME, operator_id, split_queue_name
from ccrouter.routing.model.skills import LEVEL_MAX, Step, TargetSkills, penalty

STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered",
              "linear", "wrandom")  # fmt: skip
"""app_queue's strategies (apps/app_queue.c `strategies[]`); an unknown one is ringall there."""
DEFAULT_LANGUAGE = "en"
_IFACE = re.compile(r"^[A-Za-z0-9_-]+/\S+$")
NAME_STATE = re.compile(r"^[A-Za-z0-9_:-]+/\S+$")
"""The config's patterns for an interface and a state interface."""
_UNSAFE = re.compile(r'[,;\\"\r\n]')
"""What a member name cannot hold (the config check: it may go into a `member =>` line)."""

Path = tuple[str | int, ...]


class ImportInputError(ValueError):
    """Nothing usable to import (the message says what was wrong)."""


@dataclass(frozen=True, slots=True)
class ImportedMember:
    interface: str
    name: str = ""
    penalty: int = 0
    state_interface: str = ""
    static: bool = False


@dataclass(frozen=True, slots=True)
class ImportedQueue:
    name: str
    strategy: str = "ringall"
    members: tuple[ImportedMember, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)
    """queues.conf options (timeout, retry, wrapuptime, musicclass); AMI reports none."""


@dataclass(slots=True)
class Starter:
    """The config's data, comment lines above key paths, and warnings for the console."""

    data: dict[str, Any]
    notes: dict[Path, list[str]] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def note(self, path: Path, text: str, *, warn: bool = False) -> None:
        self.notes.setdefault(path, []).append(text)
        if warn:
            self.warnings.append(text)


@dataclass(frozen=True, slots=True)
class _Shape:
    product: dict[str, str]  # queue -> product
    language: dict[str, str]  # queue -> language
    per_queue: bool


def usable_queues(queues: Sequence[ImportedQueue], starter: Starter) -> list[ImportedQueue]:
    """The queues a target can stand for: not ccrouter's own last-agent queues, valid names."""
    out = []
    for q in queues:
        if q.name.startswith(PERSONAL_QUEUE_PREFIX):
            continue  # ccrouter's own (a set-up that ran ccrouter before): regenerated anyway
        if not NAME.match(q.name) or q.name == "general":
            starter.header.append(f"skipped queue {q.name!r}: a target's queue name may only "
                                  "hold letters, digits, '_', '.', '-' (and is not 'general')")
            starter.warnings.append(starter.header[-1])
            continue
        out.append(q)
    if not out:
        raise ImportInputError("no queue to import (none found, or none with a usable name)")
    return out


def _clamped(p: int) -> int:
    return min(max(p, 0), LEVEL_MAX - 1)


def _memberships(queues: Sequence[ImportedQueue]) -> dict[str, dict[str, int]]:
    """interface -> queue -> penalty (clamped to what levels can say)."""
    out: dict[str, dict[str, int]] = {}
    for q in queues:
        for m in q.members:
            out.setdefault(m.interface, {})[q.name] = _clamped(m.penalty)
    return out


def _skills(shape: _Shape, queues: Mapping[str, int]) -> dict[str, int]:
    """The smallest skills giving these memberships: per skill, the highest level needed."""
    skills: dict[str, int] = {}
    for queue, p in queues.items():
        level = LEVEL_MAX - p
        for skill in (shape.product[queue], shape.language[queue]):
            skills[skill] = max(skills.get(skill, 0), level)
    return skills


def _target(shape: _Shape, queue: str) -> TargetSkills:
    return TargetSkills(queue, queue, shape.product[queue], (shape.language[queue],),
                        (Step(0, 1, 0),))  # fmt: skip


def _exact(shape: _Shape, members: Mapping[str, Mapping[str, int]], names: list[str]) -> bool:
    targets = [_target(shape, q) for q in names]
    for queues in members.values():
        skills = _skills(shape, queues)
        for t in targets:
            if penalty(skills, t) != queues.get(t.queue):
                return False
    return True


def _shape(queues: Sequence[ImportedQueue], members: Mapping[str, Mapping[str, int]],
           starter: Starter) -> _Shape:  # fmt: skip
    names = [q.name for q in queues]
    split = {n: split_queue_name(n) for n in names}
    found = Counter(s[1] for s in split.values() if s is not None)
    default = found.most_common(1)[0][0] if found else DEFAULT_LANGUAGE
    language = {n: (s[1] if s else default) for n, s in split.items()}
    unsplit = [n for n, s in split.items() if s is None]
    if unsplit:
        starter.note(("languages",), f"guessed: {', '.join(unsplit)} end in no language code "
                     f"(-xx), so they serve {default!r}; change their targets' language")
    products = {n: (s[0] if s else n) for n, s in split.items()}
    pairs = Counter((products[n], language[n]) for n in names)
    clash = set(products.values()) & set(language.values())
    if all(c == 1 for c in pairs.values()) and not clash:
        shape = _Shape(products, language, per_queue=False)
        if _exact(shape, members, names):
            starter.note(("targets",), "product x language read from the queue names; skills "
                         "give every operator exactly the memberships and penalties they had")
            return shape
        why = "the members do not follow a product x language pattern"
    else:
        why = "the names do not read as distinct product x language pairs"
    per_queue = {n: n if n not in language.values() else f"{n}-line" for n in names}
    starter.note(("targets",), f"one product per queue ({why}): an operator's level in the "
                 "product is their penalty there; merge products that are one line of business")
    return _Shape(per_queue, language, per_queue=True)


def _operator(interface: str, found: list[tuple[ImportedQueue, ImportedMember]],
              skills: dict[str, int], taken: list[str], i: int,
              starter: Starter) -> dict[str, Any]:  # fmt: skip
    op_id = operator_id(interface, taken)
    taken.append(op_id)
    names = [m.name for _, m in found if m.name and m.name != interface]
    name = names[0] if names else op_id
    if _UNSAFE.search(name):
        name = " ".join(_UNSAFE.sub(" ", name).split())
        starter.note(("operators", i), f"{names[0]!r}: , ; \\ \" cannot stand in a queues.conf "
                     f"member line, so the name is {name!r}")
    op: dict[str, Any] = {"id": op_id, "name": name, "interface": interface}
    if not names:
        starter.note(("operators", i), f"{interface}: no member name in Asterisk; name guessed")
    elif len(set(names)) > 1:
        starter.note(("operators", i), f"{interface} has several member names: "
                     f"{', '.join(sorted(set(names)))}; the first is kept")
    states = {m.state_interface for _, m in found if m.state_interface
              and m.state_interface != interface}  # fmt: skip
    if states:
        state = sorted(states)[0]
        if NAME_STATE.match(state):
            op["state_interface"] = state
        else:
            starter.note(("operators", i), f"state interface {state!r} is not a device "
                         "(Tech/resource) ccrouter can use; left out", warn=True)
    for q, m in found:
        if not 0 <= m.penalty < LEVEL_MAX:
            starter.note(("operators", i), f"penalty {m.penalty} in {q.name} cannot be said "
                         f"with skill levels 1..100: ccrouter gives {_clamped(m.penalty)}",
                         warn=True)  # fmt: skip
    op["logged_in"] = True
    op["skills"] = skills
    return op


def _strategy(q: ImportedQueue, starter: Starter) -> str:
    s = q.strategy.lower()
    if s in STRATEGIES:
        return s
    starter.note(("targets",), f"{q.name}: unknown strategy {q.strategy!r}, app_queue uses "
                 "ringall; so does this config", warn=True)
    return "ringall"


def _valid_members(queues: Sequence[ImportedQueue], starter: Starter) -> list[ImportedQueue]:
    out = []
    for q in queues:
        keep = []
        for m in q.members:
            if _IFACE.match(m.interface):
                keep.append(m)
            else:
                starter.header.append(f"skipped member {m.interface!r} of {q.name}: not a "
                                      "Tech/resource interface")
                starter.warnings.append(starter.header[-1])
        out.append(ImportedQueue(q.name, q.strategy, tuple(keep), q.options))
    return out


def _most_common(values: list[str], default: str) -> str:
    return Counter(values).most_common(1)[0][0] if values else default


def _queue_defaults(queues: Sequence[ImportedQueue], strategies: dict[str, str],
                    starter: Starter) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"strategy": _most_common(list(strategies.values()), "ringall")}
    for option, key in (("timeout", "ring_s"), ("retry", "retry_s"),
                        ("wrapuptime", "wrapup_s"), ("musicclass", "musicclass")):  # fmt: skip
        values = [q.options[option] for q in queues if option in q.options]
        if not values:
            continue
        value = _most_common(values, "")
        out[key] = int(value) if key != "musicclass" and value.isdigit() else value
        if len(set(values)) > 1:
            starter.note(("routing", "queues", key), f"your queues' {option} differ "
                         f"({', '.join(sorted(set(values)))}); one value for all here")
    if not any(q.options for q in queues):
        starter.note(("routing", "queues"), "ring time, retry and wrap-up are not reported by "
                     "QueueStatus: defaults; set yours")
    return out


def starter_config(queues: Sequence[ImportedQueue], ami: Mapping[str, Any] | None = None,
                   source: str = "",
                   features: Mapping[str, tuple[Mapping[str, Any], str]] | None = None,
                   ) -> Starter:  # fmt: skip
    """The starter config for these queues (`ami`: the AMI section, when read over AMI;
    `features`: the feature sections' starter values and comments, `config.sections.starters`)."""
    starter = Starter({})
    starter.header.append(f"ccrouter starter config, written by `ccrouter import` from {source}")
    usable = _valid_members(usable_queues(queues, starter), starter)
    members = _memberships(usable)
    shape = _shape(usable, members, starter)
    strategies = {q.name: _strategy(q, starter) for q in usable}
    defaults = _queue_defaults(usable, strategies, starter)
    languages = list(dict.fromkeys(shape.language[q.name] for q in usable))
    products = list(dict.fromkeys(shape.product[q.name] for q in usable))
    targets = []
    for q in usable:
        t: dict[str, Any] = {"name": q.name, "product": shape.product[q.name],
                             "language": shape.language[q.name]}  # fmt: skip
        if strategies[q.name] != defaults["strategy"]:
            t["strategy"] = strategies[q.name]
        targets.append(t)
    main = max(usable, key=lambda q: len(q.members))  # first of the largest on a tie
    found: dict[str, list[tuple[ImportedQueue, ImportedMember]]] = {}
    for q in usable:
        for m in q.members:
            found.setdefault(m.interface, []).append((q, m))
    taken: list[str] = []
    operators = [
        _operator(iface, pairs, _skills(shape, members[iface]), taken, i, starter)
        for i, (iface, pairs) in enumerate(found.items())
    ]
    static = [m.interface for m in main.members if m.static]
    data = starter.data
    if ami is not None:
        data["ami"] = {**ami, "secret": ""}
        starter.note(("ami", "secret"), "keep the secret out of this file: set "
                     "CCROUTER_AMI_SECRET (e.g. in /etc/ccrouter/env)")
    data["languages"] = languages
    data["products"] = {p: p.replace("-", " ").replace("_", " ").capitalize() for p in products}
    starter.note(("products",), "display names guessed from the ids")
    data["targets"] = targets
    data["routing"] = {
        "default_language": shape.language[main.name],
        "default_product": shape.product[main.name],
        "default_target": main.name,
        "fallback_static_members": static,
        "expansion": [{"after_s": 0, "min_level": 1}],
        "queues": defaults,
        "last_agent": {"enabled": False},
    }
    starter.note(("routing", "default_target"), f"guessed: {main.name} has the most members; "
                 "calls nobody can place go here (and to its queue when ccrouter is down)")
    if static:
        starter.note(("routing", "fallback_static_members"), f"the static members of "
                     f"{main.name}: they stay `member =>` lines there (a safety net while "
                     "ccrouter is down); every other member becomes dynamic (ccrouter adds it)")
    starter.note(("routing", "expansion"), "every member at once, by penalty, as your queues "
                 "rang without queue rules; add steps to widen by skill as callers wait")
    starter.note(("routing", "last_agent"), "enabled: true adds one queue per operator "
                 "(ccrouter-op-ID): repeat callers then ring their last operator first")
    data["operators"] = operators
    starter.note(("operators",), "one per member interface, logged in (as they are now); "
                 "skills from the penalties (level = 100 - penalty)")
    for key, (value, note) in (features or {}).items():
        data[key] = dict(value)
        starter.note((key,), note)
    return starter
