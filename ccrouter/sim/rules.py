"""Queue rules (queuerules.conf) as app_queue applies them.

`penaltychange => seconds,max[,min]`: a value with a sign (`+3`, `-2`) or an empty one is
relative, a bare number absolute. When a caller joins, the rules of the queue's `defaultrule`
are copied onto the caller (later rule edits do not reach them). When the caller has waited a
rule's seconds, QUEUE_MAX_PENALTY changes — only if the dialplan had set QUEUE_MAX_PENALTY
before Queue() — and likewise QUEUE_MIN_PENALTY only if that was set; a result below 0 is 0.
The channel variables are updated too (app_queue's update_qe_rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PenaltyChange:
    time: int
    max_value: int
    max_relative: bool
    min_value: int
    min_relative: bool


def _value(text: str) -> tuple[int, bool]:
    text = text.strip()
    if not text:
        return 0, True
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"bad penalty value {text!r}")
    return int(text), text[0] in "+-"


def parse_queuerules(text: str) -> dict[str, list[PenaltyChange]]:
    """queuerules.conf text -> rule name -> changes by time (comments and [general] skipped)."""
    rules: dict[str, list[PenaltyChange]] = {}
    current: list[PenaltyChange] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            name = m.group(1)
            current = None if name == "general" else rules.setdefault(name, [])
            continue
        key, sep, value = line.partition("=>")
        if not sep or key.strip() != "penaltychange" or current is None:
            continue
        parts = [*value.split(","), "", ""]
        seconds = parts[0].strip()
        if not seconds.isdigit():
            raise ValueError(f"penaltychange needs seconds first: {raw!r}")
        mx, mx_rel = _value(parts[1])
        mn, mn_rel = _value(parts[2])
        current.append(PenaltyChange(int(seconds), mx, mx_rel, mn, mn_rel))
    for changes in rules.values():
        changes.sort(key=lambda c: c.time)
    return rules


def apply_change(max_penalty: int | None, min_penalty: int | None,
                 change: PenaltyChange) -> tuple[int | None, int | None]:  # fmt: skip
    """The caller's (max, min) after one rule; None = not set by the dialplan (left alone)."""
    if max_penalty is not None:
        max_penalty = max(0, max_penalty + change.max_value if change.max_relative
                          else change.max_value)  # fmt: skip
    if min_penalty is not None:
        min_penalty = max(0, min_penalty + change.min_value if change.min_relative
                          else change.min_value)  # fmt: skip
    return max_penalty, min_penalty


def parse_conf_sections(text: str) -> list[tuple[str, dict[str, str]]]:
    """An Asterisk .conf file -> [(section, {key: value})] (comments, [general] skipped; a
    repeated key keeps its last value)."""
    out: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            out.append((m.group(1), {}))
            continue
        key, sep, value = line.partition("=")
        if sep and out:
            out[-1][1][key.strip().rstrip(">").strip()] = value.strip()
    return [(name, opts) for name, opts in out if name != "general"]
