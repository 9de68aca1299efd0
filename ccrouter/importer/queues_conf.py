"""queues.conf files -> `ImportedQueue`s, read as Asterisk's config parser reads them.

Sections `[name]`; templates `[name](!)` (not queues themselves) and sections built on them,
`[name](tpl1,tpl2)` (the templates' lines first, in order, then the section's own), `[name](+)`
adding to a section read before; `key = value` and `key => value`; `;` comments (`\\;` is a
literal semicolon); `#include` / `#tryinclude` of a file, relative to the including file's
directory (Asterisk resolves it against its config directory: pass the files from there).
`[general]` holds settings, not a queue. Later single-valued options override earlier ones;
every `member =>` line is a member: `interface[,penalty[,membername[,state_interface]]]`
(apps/app_queue.c reload_single_member; a penalty that is not a number is 0 there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ccrouter.importer.model import ImportedMember, ImportedQueue

_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*(?:\((?P<opts>[^)]*)\))?\s*$")
_MAX_DEPTH = 10


class QueuesConfError(ValueError):
    """A queues.conf file that cannot be read (message: file:line: what)."""


@dataclass(slots=True)
class _Section:
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # key, value, where
    template: bool = False


def _strip_comment(raw: str) -> str:
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\" and raw[i + 1 : i + 2] == ";":
            out.append(";")
            i += 2
            continue
        if raw[i] == ";":
            break
        out.append(raw[i])
        i += 1
    return "".join(out).strip()


def _read(path: Path, sections: dict[str, _Section], depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise QueuesConfError(f"{path}: #include nested deeper than {_MAX_DEPTH} files")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QueuesConfError(f"{path}: cannot read: {exc.strerror or exc}") from None
    current: _Section | None = None
    for n, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{n}"
        line = _strip_comment(raw)
        if not line:
            continue
        if line.startswith("#"):
            directive, _, arg = line.partition(" ")
            arg = arg.strip().strip('"<>')
            if directive in ("#include", "#tryinclude"):
                target = path.parent / arg
                if directive == "#tryinclude" and not target.exists():
                    continue
                _read(target, sections, depth + 1)
                continue
            raise QueuesConfError(f"{where}: {directive} is not supported by ccrouter import")
        if m := _SECTION.match(line):
            name = m.group("name").strip()
            opts = [o.strip() for o in (m.group("opts") or "").split(",") if o.strip()]
            if "+" in opts:
                if name not in sections:
                    raise QueuesConfError(f"{where}: [{name}](+) adds to a section not "
                                          "defined before")  # fmt: skip
                current = sections[name]
                continue
            current = _Section(template="!" in opts)
            for base in (o for o in opts if o != "!"):
                if base not in sections:
                    raise QueuesConfError(f"{where}: [{name}] is built on {base!r}, which is "
                                          "not defined before it")  # fmt: skip
                current.lines += sections[base].lines
            sections[name] = current
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise QueuesConfError(f"{where}: expected `key = value`, got {line!r}")
        if current is None:
            raise QueuesConfError(f"{where}: {key.strip()!r} before any [section]")
        current.lines.append((key.strip(), value.removeprefix(">").strip(), where))


def _member(value: str, where: str) -> ImportedMember:
    fields = [f.strip() for f in value.split(",")]
    interface = fields[0]
    if not interface:
        raise QueuesConfError(f"{where}: `member =>` without an interface")
    penalty_text = fields[1] if len(fields) > 1 else ""
    penalty = int(penalty_text) if re.fullmatch(r"-?\d+", penalty_text) else 0
    name = fields[2] if len(fields) > 2 else ""
    state = fields[3] if len(fields) > 3 else ""
    return ImportedMember(interface, name or interface, max(penalty, 0), state or interface,
                          static=True)  # fmt: skip


def read_queues_conf(paths: list[Path]) -> list[ImportedQueue]:
    """Every queue of these files (and the files they include), in order of appearance."""
    sections: dict[str, _Section] = {}
    for path in paths:
        _read(path, sections)
    queues = []
    for name, section in sections.items():
        if section.template or name.lower() == "general":
            continue
        options: dict[str, str] = {}
        members: dict[str, ImportedMember] = {}
        for key, value, where in section.lines:
            if key.lower() == "member":
                m = _member(value, where)
                members[m.interface] = m  # app_queue: the same interface again replaces it
            else:
                options[key.lower()] = value
        queues.append(ImportedQueue(name, options.get("strategy", "ringall"),
                                    tuple(members.values()), options))  # fmt: skip
    return queues
