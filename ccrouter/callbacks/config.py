"""The `callbacks:` section of the config: its model and its cross-field checks.

`SECTION` is what the wiring adds to the root settings (`ccrouter.config.sections`); the
feature reads its settings typed with `callback_settings(settings)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ccrouter.config import Settings
from ccrouter.config.names import KeyPath, target_names, unknown
from ccrouter.config.sections import Section
from ccrouter.dialplan import VAR_OVERFLOW_CALLBACK


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallbackOffer(_Model):
    """The in-queue offer: after `after_s` of waiting (then every `every_s`) the queue plays
    `prompt` ("press 1 to be called back"); the key leaves the queue for the callback_offer
    script, which keeps the caller's place (ordering by join time) and says goodbye."""

    enabled: bool = False
    after_s: int = Field(default=120, ge=1)
    """queues.conf periodic-announce-startdelay: the wait after which the offer starts."""
    every_s: int = Field(default=60, ge=1)
    """queues.conf periodic-announce-frequency."""
    key: str = Field(default="1", pattern=r"^[0-9*#]$")
    prompt: str = Field(default="ccrouter-callback-offer", pattern=r"^[A-Za-z0-9_/.-]+$")
    confirm_prompt: str = Field(default="ccrouter-callback-confirmed",
                                pattern=r"^[A-Za-z0-9_/.-]+$")  # fmt: skip


class CallbackSettings(_Model):
    """Automatic callback of abandoned calls and scheduled outbound calls (customer first: the
    customer is dialled, then joins the target's queue ahead of everyone, QUEUE_PRIO)."""

    enabled: bool = True
    dial: str = Field(default="PJSIP/{number}@trunk", pattern=r"^[A-Za-z0-9_-]+/.*\{number\}")
    """Asterisk dial string for a customer's number ({number} is replaced)."""
    caller_id: str = ""
    """The caller ID customers see (empty: the trunk's default)."""
    withheld_pattern: str = r"^(|anonymous|unknown|restricted|private|unavailable)$"
    """Caller numbers that are withheld (case-insensitive regex): no callback."""
    valid_pattern: str = r"^\+?[0-9]{5,15}$"
    """A number must match this to be called back."""
    do_not_call: list[str] = Field(default_factory=list)
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_backoff_s: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [120.0, 600.0, 1800.0], min_length=1
    )
    """Wait after the 1st, 2nd, ... failed attempt (the last value repeats)."""
    expire_after_s: float = Field(default=86400.0, gt=0)
    ring_timeout_s: int = Field(default=30, ge=5, le=300)
    max_live_wait_s: float = Field(default=60.0, ge=0)
    """No callback to a target while one of its live callers has waited longer than this."""
    pace_s: float = Field(default=2.0, ge=0)
    """At most one Originate per target per this many seconds."""
    queue_priority: int = Field(default=10, ge=0)
    """QUEUE_PRIO of a callback leg (higher = ahead of live callers)."""
    mode: Literal["customer_first", "operator_first"] = "customer_first"
    """customer_first: dial the customer, who then joins the queue ahead of everyone (no
    operator waits on a ringing phone; the customer may hear a few seconds of hold).
    operator_first: ring the free operator, who hears `whisper`, then dial the customer (the
    customer gets a person at once; the operator waits through the customer's ringing, and
    calls to busy/absent customers cost operator time)."""
    whisper: str = Field(default="ccrouter-callback-whisper", pattern=r"^[A-Za-z0-9_/.-]*$")
    """operator_first: the sound the operator hears before the customer is dialled."""
    operator_ring_s: int = Field(default=20, ge=5, le=120)
    """operator_first: how long the operator's phone rings before another operator is tried."""
    operator_cooldown_s: float = Field(default=120.0, ge=0)
    """operator_first: an operator who did not answer a callback is not rung for one again
    for this long."""
    prompt: str = "ccrouter-callback-intro"
    """Sound played to the customer before the queue (in their language); empty: none."""
    fallback: dict[str, list[str]] = Field(default_factory=dict)
    """Target -> other targets whose operators may also serve its callbacks."""
    poll_s: float = Field(default=5.0, gt=0)
    """How often requests added by other processes (the CLI) are picked up."""
    offer: CallbackOffer = CallbackOffer()


def callback_checks(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """Callback regexes compile; fallback targets are declared targets; a target's overflow
    offers callbacks only while they are enabled."""
    targets = target_names(data)
    cb = _as_dict(data.get("callbacks"))
    if "callback" in _as_dict(_as_dict(data.get("routing")).get("priorities")):
        yield ("routing", "priorities", "callback"), (
            "removed: a callback leg's QUEUE_PRIO is callbacks.queue_priority (set it there)")
    if cb.get("mode") == "operator_first" and cb.get("whisper") == "":
        yield ("callbacks", "whisper"), (
            "operator_first needs a whisper prompt: the operator must hear whose call it is")
    for key in ("withheld_pattern", "valid_pattern"):
        value = cb.get(key)
        if isinstance(value, str):
            try:
                re.compile(value)
            except re.error as exc:
                yield ("callbacks", key), f"not a regular expression: {exc}"
    for name, others in _as_dict(cb.get("fallback")).items():
        for i, other in enumerate([name, *_as_list(others)]):
            at: KeyPath = ("callbacks", "fallback", name) if i == 0 else (
                "callbacks", "fallback", name, i - 1)
            if targets and isinstance(other, str) and other not in targets:
                yield at, unknown("target", other, targets)
    for i, t in enumerate(_as_list(data.get("targets"))):
        overflow = _as_dict(_as_dict(t).get("overflow"))
        given = [k for k in ("target", "queue", "voicemail") if overflow.get(k) is not None]
        if overflow.get("callback") is True and not given and cb.get("enabled") is False:
            yield ("targets", i, "overflow", "callback"), (
                "callbacks are disabled (callbacks.enabled)")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


SECTION: Section[CallbackSettings] = Section(
    "callbacks", CallbackSettings, callback_checks, alert_kinds=("callback_backlog_above",),
    ivr_ends=("callback",), overflow_steps={"callback": VAR_OVERFLOW_CALLBACK},
    starter=({"enabled": False}, "off: set callbacks.dial to your trunk before turning on "
             "callbacks of abandoned calls"))
"""The backlog alert kind watches the gauge the feature publishes (`feature.install`); the
IVR's `callback` end is `agi.IvrCallbackEnd`; a starter config from `ccrouter import` has
callbacks off (no trunk to dial yet). A
target's `overflow: {callback: true}` offers a callback ("press 1 to be called back",
callbacks.offer's prompt and key) on its line; a caller who declines hears ss-noservice."""


def callback_settings(settings: Settings) -> CallbackSettings:
    """The `callbacks:` section of `settings`."""
    return SECTION.of(settings)
