"""Tickets, pure: the states and their moves, the idempotency key, the HMAC signature, the
helpdesk's answer, the retry delay and the caller's mail rendered from its templates."""

from __future__ import annotations

import hashlib
import hmac
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

SIGNATURE_PREFIX: Final = "sha256="
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"


class Status(StrEnum):
    PENDING = "pending"  # kept in the outbox: the helpdesk has not taken it yet
    OPEN = "open"  # created in the helpdesk
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FAILED = "failed"  # refused by the helpdesk (a 4xx): retrying cannot help


INBOUND: Final = frozenset({Status.OPEN, Status.IN_PROGRESS, Status.RESOLVED})
"""What the status webhook may set."""


class BadAnswer(ValueError):
    """The helpdesk's answer or event is not what the contract says; the message says why."""


def idempotency_key(card: str, nonce: str) -> str:
    """Fixed when the ticket is requested and sent with every attempt: a retry of a request
    the helpdesk did take finds the same key there and never makes a second ticket."""
    return f"ccrouter-{card}-{nonce}"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of the exact body bytes, hex."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + mac


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())


def backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """Delay after the `attempt`-th failure (1-based): base, 2 base, 4 base, ... up to cap."""
    return float(min(cap_s, base_s * 2 ** min(max(attempt - 1, 0), 30)))


def can_move(current: Status, new: Status) -> bool:
    """A status event applies unless the ticket is not created yet, or it would reopen a
    resolved ticket's same status (a duplicate delivery changes nothing)."""
    if current in (Status.PENDING, Status.FAILED):
        return False
    return new != current


def request_body(card: Mapping[str, Any], key: str, *, summary: str,
                 requested_by: str) -> dict[str, Any]:  # fmt: skip
    """What the connector POSTs (fixed at request time: every attempt sends the same bytes)."""
    fields = ("number", "caller_num", "caller_name", "caller_email", "language", "product",
              "target", "queue", "operator", "topic", "resolution", "notes", "started_at")
    return {"idempotency_key": key, "summary": summary, "requested_by": requested_by,
            "card": {f: card.get(f) for f in fields}}


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class Created:
    ticket_id: str
    url: str | None


def parse_created(data: Any) -> Created:
    """The helpdesk's answer to a creation: {"id": ..., "url": ...} (url optional)."""
    if not isinstance(data, dict):
        raise BadAnswer("the answer is not a JSON object")
    tid = data.get("id")
    if not isinstance(tid, str | int) or isinstance(tid, bool) or str(tid) == "":
        raise BadAnswer(f"the answer has no ticket id ('id': {tid!r})")
    url = data.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise BadAnswer(f"'url' is not an http(s) URL: {url!r}")
    return Created(str(tid), url)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    ticket_id: str
    status: Status
    comment: str


def parse_event(data: Any) -> StatusEvent:
    """An inbound status event: {"ticket_id": ..., "status": "in_progress"|"resolved"|"open",
    "comment": optional text}."""
    if not isinstance(data, dict):
        raise BadAnswer("body: a JSON object is required")
    tid = data.get("ticket_id")
    if not isinstance(tid, str | int) or isinstance(tid, bool) or str(tid) == "":
        raise BadAnswer("ticket_id: required (the helpdesk's ticket id)")
    raw = data.get("status")
    allowed = sorted(s.value for s in INBOUND)
    if raw not in allowed:
        raise BadAnswer(f"status: one of {', '.join(allowed)} (got {raw!r})")
    comment = data.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 2000:
        raise BadAnswer("comment: text up to 2000 characters")
    return StatusEvent(str(tid), Status(raw), comment)


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    body: str
    language: str


def pick_language(templates: Mapping[str, Any], language: str | None,
                  default: str | None) -> str:  # fmt: skip
    """The card's language when it has templates, else the default, else the first."""
    if language and language in templates:
        return language
    if default and default in templates:
        return default
    return next(iter(templates))


def render_mail(templates: Mapping[str, Any], kind: str, language: str,
                values: Mapping[str, str]) -> Mail:  # fmt: skip
    """`templates[language][kind]` (objects with `subject` and `body`) with `$name`s
    replaced; an unknown `$name` stays as written (safe_substitute)."""
    t = templates[language][kind]
    subject = string.Template(t.subject).safe_substitute(values)
    body = string.Template(t.body).safe_substitute(values)
    return Mail(" ".join(subject.split()), body, language)
