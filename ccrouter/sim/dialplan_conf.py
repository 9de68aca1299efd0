"""The dialplan the simulated PBX has loaded (extensions.conf text, as pbx_config reads it) and
the CLI's `dialplan show CONTEXT` output of it, line for line as main/pbx.c
`show_dialplan_helper` prints it: `[ Context 'X' created by 'pbx_config' ]`, then per extension
`  %-17s %-45s [file:line]` with `'exten' =>` before the first priority and `   [label]` (or
nothing) before the others, then `-= N extensions (M priorities) in 1 context. =-`; an
unknown context answers `There is no existence of 'X' context`. The calls themselves follow
the ccrouter contexts built into `calls.py`; this is what the PBX says it has loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Priority:
    exten: str
    priority: int
    label: str
    app: str
    data: str
    line: int


_APP = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$", re.S)
_PRIO = re.compile(r"^(n|\d+)(?:\(([^)]*)\))?$")


def parse_extensions(text: str) -> dict[str, list[Priority]]:
    """Contexts -> their priorities in file order (`exten =>` and `same =>`, `n` priorities,
    `n(label)`; comments after `;`)."""
    contexts: dict[str, list[Priority]] = {}
    ctx, exten, prio = "", "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            ctx = line[1:line.index("]")]
            if ctx not in ("general", "globals"):
                contexts.setdefault(ctx, [])
            continue
        key, sep, value = line.partition("=>")
        key = key.strip()
        if not sep or ctx not in contexts or key not in ("exten", "same"):
            continue
        parts = value.strip().split(",", 2) if key == "exten" else ["", *value.strip()
                                                                     .split(",", 1)]
        if len(parts) < 3:
            continue
        if key == "exten":
            exten = parts[0].strip()
        m = _PRIO.match(parts[1].strip())
        if m is None:
            continue
        prio = prio + 1 if m.group(1) == "n" else int(m.group(1))
        am = _APP.match(parts[2])
        app, data = (am.group(1), am.group(2) or "") if am else (parts[2].strip(), "")
        contexts[ctx].append(Priority(exten, prio, m.group(2) or "", app, data, number))
    return contexts


def dialplan_show(contexts: dict[str, list[Priority]], context: str, filename: str) -> list[str]:
    """CLI `dialplan show CONTEXT` lines (the last one is the summary or the error)."""
    prios = contexts.get(context)
    if prios is None:
        return [f"There is no existence of '{context}' context"]
    out = [f"[ Context '{context}' created by 'pbx_config' ]"]
    seen: list[str] = []
    for p in prios:
        if p.exten not in seen:
            seen.append(p.exten)
            first = f"'{p.exten}' =>"
        else:
            first = f"   [{p.label}]" if p.label else ""
        out.append(f"  {first:<17} {f'{p.priority}. {p.app}({p.data})':<45} "
                   f"[{filename}:{p.line}]")
    n, m = len(seen), len(prios)
    out.append("")  # an empty line after each context shown
    out.append(f"-= {n} {'extension' if n == 1 else 'extensions'} ({m} "
               f"{'priority' if m == 1 else 'priorities'}) in 1 context. =-")
    return out
