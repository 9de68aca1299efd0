"""The `reports:` section: KPI settings, and `reports.schedules:` — KPI reports mailed on a
schedule (the `ccrouter.digest` feature).

    reports:
      schedules:
        - name: wallet-daily
          at: daily 07:00              # or: weekly mon 07:00
          timezone: Asia/Tashkent      # default: reports.timezone
          scope: {products: [wallet]}  # and/or targets: [...]; or teams: [...]; none: all
          recipients: [wallet-unit@bank.example]
          format: html+csv             # html (no attachment) | csv (a short text + the CSV)

`parse_at` is the one reader of the `at` spelling (the config check and the scheduler use it).
Imported by `ccrouter.config.schema`; imports nothing of ccrouter.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ccrouter.config.names import KeyPath, duplicate_names

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_AT: Final = re.compile(r"^(daily|weekly)(?:\s+([a-z]{3}))?\s+(\d{1,2}):(\d{2})$")
_EMAIL: Final = r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"


class BadSchedule(ValueError):
    """An `at` that is not `daily HH:MM` or `weekly DAY HH:MM` (the message says why)."""


@dataclass(frozen=True, slots=True)
class At:
    """When a schedule runs: every day, or on one weekday (0 = Monday), at hour:minute local."""

    hour: int
    minute: int
    weekday: int | None = None
    """None: daily."""

    @property
    def daily(self) -> bool:
        return self.weekday is None


def parse_at(text: str) -> At:
    """`"daily 07:00"` -> At(7, 0); `"weekly mon 07:30"` -> At(7, 30, weekday=0)."""
    m = _AT.match(text.strip().lower())
    if m is None:
        raise BadSchedule(f"{text!r} is not 'daily HH:MM' or 'weekly DAY HH:MM' "
                          "(DAY: mon..sun), e.g. 'daily 07:00', 'weekly mon 07:00'")  # fmt: skip
    kind, day, hh, mm = m.groups()
    hour, minute = int(hh), int(mm)
    if hour > 23 or minute > 59:
        raise BadSchedule(f"{text!r}: the time is HH:MM with hours 00..23, minutes 00..59")
    if kind == "daily":
        if day is not None:
            raise BadSchedule(f"{text!r}: a daily schedule names no day (weekly {day} ...?)")
        return At(hour, minute)
    if day is None:
        raise BadSchedule(f"{text!r}: a weekly schedule names its day: 'weekly mon {hh}:{mm}'")
    if day not in WEEKDAYS:
        raise BadSchedule(f"{text!r}: unknown day {day!r}; one of {', '.join(WEEKDAYS)}")
    return At(hour, minute, weekday=WEEKDAYS.index(day))


class ReportScope(BaseModel):
    """What a scheduled report covers, as a viewer token's scope (`products`/`targets`) or a
    team supervisor's (`teams`); empty: the whole centre."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    products: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> ReportScope:
        if self.teams and (self.products or self.targets):
            raise ValueError("a scope is teams (a team supervisor's) or product lines / "
                             "targets (a viewer's), not both")  # fmt: skip
        return self


class ReportSchedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    """`ccrouter report send NAME`; the key of its last run in the database."""
    at: str
    """`daily HH:MM` or `weekly DAY HH:MM` (DAY: mon..sun), local time of `timezone`."""
    timezone: str | None = None
    """IANA name; default: reports.timezone."""
    scope: ReportScope = ReportScope()
    recipients: list[str] = Field(min_length=1)
    format: Literal["html+csv", "html", "csv"] = "html+csv"
    """html+csv: the HTML tables and chart with the CSV attached; html: no attachment; csv:
    a short text with the CSV attached."""
    period: Literal["day", "week"] | None = None
    """The whole local days reported, ending at the run's local midnight: day (yesterday),
    week (the 7 days before); default: day for daily, week for weekly."""
    subject: str | None = Field(default=None, max_length=300)
    """Default: `KPI report NAME: FROM..TO`."""

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        parse_at(value)  # BadSchedule is a ValueError: the loader names file:line
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not known_timezone(value):
            raise ValueError(f"unknown time zone {value!r} (an IANA name: Asia/Tashkent)")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for r in value:
            if not re.match(_EMAIL, r):
                raise ValueError(f"{r!r} is not an e-mail address")
        return value

    @property
    def when(self) -> At:
        return parse_at(self.at)

    @property
    def days(self) -> int:
        """How many local days one report covers."""
        period = self.period or ("day" if self.when.daily else "week")
        return 1 if period == "day" else 7


def known_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def schedule_checks(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """Names unique; the scope names declared product lines, targets and teams; mailing needs
    `mail.host`."""
    schedules = _as_list(_as_dict(data.get("reports")).get("schedules"))
    if schedules and not _as_dict(data.get("mail")).get("host"):
        yield ("reports", "schedules"), "mailing reports needs an SMTP server: set mail.host"
    declared: dict[str, list[Any]] = {
        "products": list(_as_dict(data.get("products"))),
        "targets": [t.get("name") for t in _as_list(data.get("targets")) if isinstance(t, dict)],
        "teams": [t.get("name") for t in _as_list(data.get("teams")) if isinstance(t, dict)],
    }
    kinds = {"products": "product line", "targets": "target", "teams": "team"}
    yield from duplicate_names(schedules, ("reports", "schedules"), "schedule")
    for i, sch in enumerate(schedules):
        if not isinstance(sch, dict):
            continue
        for key, kind in kinds.items():
            for k, value in enumerate(_as_list(_as_dict(sch.get("scope")).get(key))):
                if isinstance(value, str) and value not in declared[key]:
                    known = ", ".join(str(x) for x in declared[key]) or "(none)"
                    yield (("reports", "schedules", i, "scope", key, k),
                           f"unknown {kind} {value!r}; declared: {known}")  # fmt: skip


class ReportSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sl_threshold_s: int = Field(default=20, ge=1)
    """T of the service level SL(T): answered within T seconds (80/20 -> 20)."""
    target_sl: float = Field(default=0.8, gt=0, lt=1)
    """The service level the Erlang C staffing estimate aims for."""
    timezone: str = "UTC"
    """IANA name (Asia/Tashkent): report hours/days and "today" on the wallboard are local."""
    card_deadline_s: int = Field(default=120, ge=1, le=86400)
    """After-call work: a card is "completed in time" when its topic and resolution were saved
    within this many seconds of the call's end."""
    schedules: list[ReportSchedule] = Field(default_factory=list)
    """KPI reports mailed on a schedule (see `ccrouter/config/report_schedules.py`)."""
    schedule_poll_s: float = Field(default=30.0, gt=0, le=3600)
    """How often the daemon looks for a scheduled report that is due."""
