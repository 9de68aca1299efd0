"""The `recordings:` config section: which calls are recorded (MixMonitor), where the files
go, how long they are kept, who may play them.

Imported by `ccrouter.config.schema` (a field of `Settings`); imports nothing of ccrouter.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_NAME = r"^[A-Za-z0-9_.-]+$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordingSettings(_Model):
    enabled: bool = False
    """Record answered calls. With neither `targets` nor `products`: every call; otherwise
    only the calls of the listed targets or product lines."""
    targets: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    format: Literal["wav", "gsm", "wav49"] = "wav"
    """MixMonitor's format, by the file's extension (`wav49` is written as `.WAV`)."""
    directory: str = Field(default="/var/spool/asterisk/monitor/ccrouter",
                           pattern=r"^/[^\x00,()\"'$;{}\[\]]*$")
    """The directory as Asterisk sees it (MixMonitor's file argument)."""
    read_directory: str | None = Field(default=None, pattern=r"^/?[^\x00]*$")
    """The same directory as ccrouter reads it (an NFS mount, ...); default: `directory`."""
    keep_days: float = Field(default=90.0, gt=0)
    keep_days_by_product: dict[str, float] = Field(default_factory=dict)
    """Per product line, overriding `keep_days`."""
    announcement: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_/.-]+$")
    """A sound the caller hears before the queue ("this call may be recorded")."""
    operators_hear: Literal["own", "all", "none"] = "own"
    """What an operator's token may play: their own calls (default), every call, none."""
    prune_hour: int = Field(default=3, ge=0, le=23)
    """The daily prune job runs at this local hour."""
    prune_check_s: float = Field(default=600.0, gt=0)
    """How often the job looks whether the daily prune is due (and at start-up)."""
