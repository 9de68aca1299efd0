"""Quality control, pure: who may listen in, the ChanSpy arguments of each mode, the grade of
a call against the checklist, and the QC report's groups. Plain values in, decisions out.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

SpyMode = Literal["listen", "whisper", "barge"]
MODES: Final[tuple[SpyMode, ...]] = ("listen", "whisper", "barge")

MODE_OPTIONS: Final[Mapping[str, str]] = {"listen": "", "whisper": "w", "barge": "B"}
"""ChanSpy's option letter per mode (apps/app_chanspy.c): none to only listen, `w` to whisper to
the operator (the caller does not hear it), `B` to barge in (both hear the supervisor)."""
COMMON_OPTIONS: Final = "qEu"
"""Always: `q` no beep or channel name spoken when spying starts, `E` end when the spied-on
channel hangs up, `u` the first argument is the exact channel name (not a prefix, which
would also match `PJSIP/10010-...` for `PJSIP/1001`)."""


class Viewer(Protocol):
    """Who asks (`ccrouter.web.auth.Principal`): the token's role and name."""

    @property
    def role(self) -> str: ...
    @property
    def name(self) -> str: ...


def may_spy(who: Viewer, operator: str | None) -> str | None:
    """Whether `who` may listen in on (whisper to, barge in on) a call of `operator` (an
    operators[].id, or None when the operator is not in the config): None when allowed,
    else why not. THE one place of this decision (a team supervisor only on their team: add
    it here when teams exist)."""
    role = str(who.role)
    if role in ("supervisor", "admin"):
        return None
    if role == "operator":
        return "operators may not listen in on calls"
    return f"role {role} may not listen in on calls"


def may_grade(who: Viewer, operator: str | None) -> str | None:
    """Whether `who` may grade a call of `operator`: supervisors and admins (teams: here)."""
    role = str(who.role)
    return None if role in ("supervisor", "admin") else f"role {role} may not grade calls"


class SpyRefused(ValueError):
    """The call cannot be listened to (the message says why)."""


def chanspy_data(channel: str, mode: str) -> str:
    """The Originate `Data` of Application ChanSpy: `<channel>,<options>`, ChanSpy's
    `chanprefix` and `options` arguments (`Data: Local/op1@acc-agents,qE` in the recorded
    transcript)."""
    if mode not in MODE_OPTIONS:
        raise SpyRefused(f"mode {mode!r}: one of {', '.join(MODES)}")
    if not channel or any(c in channel for c in ",\r\n|") or channel.strip() != channel:
        raise SpyRefused(f"the operator's channel {channel!r} cannot be named to ChanSpy")
    return f"{channel},q{MODE_OPTIONS[mode]}Eu"


def spy_caller_id(template: str, mode: str, card: str) -> str:
    """The caller id the supervisor's phone shows: `"<name>" <card>`."""
    name = template.replace("{mode}", mode).replace("{card}", card)
    return f'"{name}" <{card}>'


# --- grading --------------------------------------------------------------------------------


class Item(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def weight(self) -> float: ...


class GradeError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Grade:
    score: float
    """0-100: the met items' share of the checklist's total weight, one decimal."""
    items: tuple[dict[str, Any], ...]
    """Each item as graded: id, text, weight, met (kept with the grade: a later checklist
    change does not rewrite old scores)."""


def grade(checklist: Sequence[Item], answers: Mapping[str, bool]) -> Grade:
    """The grade of one call: every checklist item answered met (true) or not (false)."""
    if not checklist:
        raise GradeError("items", "grading is off: the config has no qc.checklist")
    ids = {i.id for i in checklist}
    unknown = sorted(set(answers) - ids)
    if unknown:
        raise GradeError(f"items.{unknown[0]}", f"items.{unknown[0]}: not a checklist item "
                         f"(the checklist: {', '.join(i.id for i in checklist)})")
    missing = [i.id for i in checklist if i.id not in answers]
    if missing:
        raise GradeError(f"items.{missing[0]}", f"items.{missing[0]}: not graded (every "
                         "checklist item is true or false)")
    total = sum(i.weight for i in checklist)
    met = sum(i.weight for i in checklist if answers[i.id])
    items = tuple({"id": i.id, "text": i.text, "weight": i.weight, "met": bool(answers[i.id])}
                  for i in checklist)  # fmt: skip
    return Grade(round(100.0 * met / total, 1), items)


# --- the report -----------------------------------------------------------------------------

Interval = Literal["day", "week", "month"]


def period_start(ts: float, interval: Interval, tz: str) -> str:
    """The local date (ISO) starting the day, week (Monday) or month holding `ts`."""
    d = dt.datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(tz)).date()
    if interval == "week":
        d -= dt.timedelta(days=d.weekday())
    elif interval == "month":
        d = d.replace(day=1)
    return d.isoformat()


@dataclass(frozen=True, slots=True)
class GradeRow:
    operator: str
    group: str
    """The operator's team when teams exist; "" until then."""
    graded_at: float
    score: float


def summarise(rows: Iterable[GradeRow], interval: Interval, tz: str) -> dict[str, Any]:
    """Grades per operator, per operator and period, and per team (when rows carry teams):
    count, average, lowest, highest."""
    by_op: dict[str, list[float]] = {}
    by_period: dict[tuple[str, str], list[float]] = {}
    by_group: dict[str, list[float]] = {}
    every: list[float] = []
    for r in rows:
        every.append(r.score)
        by_op.setdefault(r.operator, []).append(r.score)
        by_period.setdefault((r.operator, period_start(r.graded_at, interval, tz)),
                             []).append(r.score)  # fmt: skip
        if r.group:
            by_group.setdefault(r.group, []).append(r.score)
    return {
        "total": _stats(every),
        "operators": [{"operator": k, **_stats(v)} for k, v in sorted(by_op.items())],
        "periods": [{"operator": k[0], "start": k[1], **_stats(v)}
                    for k, v in sorted(by_period.items())],
        "teams": [{"team": k, **_stats(v)} for k, v in sorted(by_group.items())],
    }


def _stats(scores: list[float]) -> dict[str, Any]:
    if not scores:
        return {"grades": 0, "average": None, "lowest": None, "highest": None}
    return {"grades": len(scores), "average": round(sum(scores) / len(scores), 1),
            "lowest": min(scores), "highest": max(scores)}
