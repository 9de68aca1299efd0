"""The config schema of the second line: `helpdesk:` (tickets through a JSON webhook) and
`mail:` (the caller's e-mail through SMTP, templates per language).

Secrets come from the environment (`CCROUTER_HELPDESK_SECRET`, `CCROUTER_SMTP_PASSWORD`, see
`schema.ENV_OVERRIDES`); extra request headers name the environment variable that holds their
value (`headers_env: {Authorization: HELPDESK_TOKEN}`), read when the daemon starts.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HEADER = re.compile(r"^[A-Za-z0-9-]+$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAIL_KINDS: tuple[str, ...] = ("created", "resolved")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HelpdeskSettings(_Model):
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """Tickets are POSTed here as JSON; null: no helpdesk (the feature is off)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers with fixed values."""
    headers_env: dict[str, str] = Field(default_factory=dict)
    """Extra request headers -> the environment variable holding the value (a token)."""
    secret: str = ""
    """HMAC-SHA256 key (from CCROUTER_HELPDESK_SECRET): signs requests, checks status events."""
    signature_header: str = Field(default="X-Ccrouter-Signature", pattern=_HEADER.pattern)
    timeout_s: float = Field(default=10.0, gt=0)
    backoff_s: float = Field(default=2.0, gt=0)
    """Delay before the 2nd attempt; doubles for every further attempt, up to backoff_max_s."""
    backoff_max_s: float = Field(default=300.0, gt=0)
    poll_s: float = Field(default=1.0, gt=0)
    """How often the outbox is looked at for tickets and mails whose retry is due."""

    @field_validator("headers", "headers_env")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _HEADER.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
        return value

    @field_validator("headers_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, var in value.items():
            if not _ENV.match(var):
                raise ValueError(f"{name}: {var!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> HelpdeskSettings:
        if self.url and not self.secret:
            raise ValueError("a helpdesk url needs the HMAC secret: set CCROUTER_HELPDESK_SECRET")
        return self


class MailTemplate(_Model):
    """`$ticket_id`, `$ticket_url`, `$card`, `$topic`, `$status` are replaced."""

    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1)


class MailSettings(_Model):
    host: str | None = None
    """SMTP server; null: no caller mail."""
    port: int = Field(default=25, ge=1, le=65535)
    tls: Literal["none", "starttls", "tls"] = "none"
    """starttls: upgrade the plain connection (port 587); tls: implicit TLS (port 465)."""
    username: str | None = None
    password: str = ""
    """From CCROUTER_SMTP_PASSWORD; used with `username`."""
    sender: str = Field(default="support@localhost", pattern=r"^[^@\s]+@[^@\s]+$")
    timeout_s: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=6, ge=1, le=50)
    backoff_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    templates: dict[str, dict[Literal["created", "resolved"], MailTemplate]] = Field(
        default_factory=dict)  # fmt: skip
    """Language -> {created, resolved}: the mail a caller gets in their card's language (with a
    helpdesk, at least one language; scheduled reports need none)."""
    default_language: str | None = None
    """The templates used for a card whose language has none; default: the first language."""

    @model_validator(mode="after")
    def _complete(self) -> MailSettings:
        for lang, kinds in self.templates.items():
            missing = [k for k in MAIL_KINDS if k not in kinds]
            if missing:
                raise ValueError(f"templates.{lang}: missing {', '.join(missing)}")
        if self.default_language and self.default_language not in self.templates:
            raise ValueError(f"default_language: no templates for {self.default_language!r}")
        return self
