"""The `qc:` config section: live listening (ChanSpy on a supervisor's own phone) and the QC
grading checklist.

Imported by `ccrouter.config.schema` (a field of `Settings`); imports nothing of ccrouter.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ID = r"^[A-Za-z0-9_.-]{1,40}$"
_INTERFACE = r"^[A-Za-z0-9]+/[^\s,()\x00]+$"
"""A dialable device (`PJSIP/100`, `Local/100@phones`): no comma, which would end ChanSpy's
channel argument, no parentheses or spaces."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpySettings(_Model):
    devices: dict[str, str] = Field(default_factory=dict)
    """The phone each supervisor listens on, by the name of their token (`ccrouter token create
    --role supervisor --name NAME`): `NAME: PJSIP/100`. ccrouter rings it with an Originate
    whose application is ChanSpy; a token without a device may not listen in."""
    ring_timeout_s: int = Field(default=30, ge=5, le=300)
    """How long the supervisor's phone rings (Originate `Timeout`)."""
    caller_id: str = Field(default="ccrouter {mode} {card}", max_length=80,
                           pattern=r"^[^\x00\r\n\"<>]*$")
    """The name the supervisor's phone shows; `{mode}` and `{card}` are filled in."""

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: dict[str, str]) -> dict[str, str]:
        for name, device in v.items():
            if not re.fullmatch(r"^[^\x00]{1,100}$", name):
                raise ValueError(f"{name!r}: a token name of 1-100 characters")
            if not re.fullmatch(_INTERFACE, device):
                raise ValueError(f"{name}: {device!r} is not a device like PJSIP/100 "
                                 "(Tech/resource, no spaces, commas or parentheses)")
        return v


class ChecklistItem(_Model):
    id: str = Field(pattern=_ID)
    text: str = Field(min_length=1, max_length=200)
    weight: float = Field(default=1.0, gt=0, le=100)


class QcSettings(_Model):
    spy: SpySettings = SpySettings()
    checklist: list[ChecklistItem] = Field(default_factory=list)
    """What a graded call is held to: each item met or not, weighted; the score is the met
    items' share of the total weight, 0-100. Empty: grading is off."""
    last_grades: int = Field(default=5, ge=1, le=50)
    """How many of an operator's latest grades the wallboard shows."""

    @field_validator("checklist")
    @classmethod
    def _unique(cls, v: list[ChecklistItem]) -> list[ChecklistItem]:
        seen: set[str] = set()
        for item in v:
            if item.id in seen:
                raise ValueError(f"checklist item id {item.id!r} appears twice")
            seen.add(item.id)
        return v
