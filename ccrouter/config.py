"""Settings: defaults < YAML file < environment, into one frozen, validated object.

The models below are the schema. `load_settings(path)` reads the YAML keeping line numbers so
every error names file, line and key; `CCROUTER_*` environment variables override secrets and
addresses (see ENV_OVERRIDES).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AmiSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "ccrouter"
    secret: str = ""
    connect_timeout_s: float = Field(5.0, gt=0)
    action_timeout_s: float = Field(5.0, gt=0)
    ping_interval_s: float = Field(10.0, gt=0)
    ping_timeout_s: float = Field(5.0, gt=0)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)


class AgiSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    header_timeout_s: float = Field(5.0, gt=0)
    header_max_bytes: int = Field(16384, ge=512)
    command_timeout_s: float = Field(60.0, gt=0)
    session_timeout_s: float = Field(600.0, gt=0)


class DatabaseSettings(_Model):
    url: str = "sqlite+aiosqlite:///var/ccrouter.db"
    commit_window_ms: int = Field(50, ge=1, le=5000)
    batch_max: int = Field(500, ge=1)
    write_retry_s: float = Field(1.0, gt=0)


class HttpSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class LogSettings(_Model):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"
    mask_numbers: bool = True


class CallSettings(_Model):
    short_abandon_s: int = Field(5, ge=0)
    close_grace_s: float = Field(10.0, ge=0)
    """After the caller's channel hung up, how long to wait for missing events before closing."""


class Operator(_Model):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    interface: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+/\S+$")
    skills: dict[str, int] = Field(default_factory=dict)


class Target(_Model):
    """A routing target: one Asterisk queue for a product x language."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    product: str
    language: str
    queue: str | None = None
    timeout_s: int = Field(300, ge=1)

    @property
    def queue_name(self) -> str:
        return self.queue or self.name


class RoutingSettings(_Model):
    default_language: str
    default_product: str
    default_target: str
    did: dict[str, str] = Field(default_factory=dict)
    """Dialled number -> product."""


class Settings(_Model):
    ami: AmiSettings = AmiSettings()
    agi: AgiSettings = AgiSettings()
    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    calls: CallSettings = CallSettings()
    languages: list[str] = Field(min_length=1)
    products: dict[str, str] = Field(min_length=1)
    """Product id -> display name."""
    operators: list[Operator] = Field(default_factory=list)
    targets: list[Target] = Field(min_length=1)
    routing: RoutingSettings

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)


ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "CCROUTER_AMI_HOST": ("ami", "host"),
    "CCROUTER_AMI_PORT": ("ami", "port"),
    "CCROUTER_AMI_USERNAME": ("ami", "username"),
    "CCROUTER_AMI_SECRET": ("ami", "secret"),
    "CCROUTER_AGI_HOST": ("agi", "host"),
    "CCROUTER_AGI_PORT": ("agi", "port"),
    "CCROUTER_DATABASE_URL": ("database", "url"),
    "CCROUTER_HTTP_HOST": ("http", "host"),
    "CCROUTER_HTTP_PORT": ("http", "port"),
    "CCROUTER_LOG_FORMAT": ("log", "format"),
    "CCROUTER_LOG_LEVEL": ("log", "level"),
}
