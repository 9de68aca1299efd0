"""The IVR's values: the spec a call centre configures (menus, choices, out-of-hours actions,
schedules) and what the machine is told when a call starts (`CallStart`, `Announcement`).

Plain frozen values built by `ccrouter.ivr.spec` from the settings; the state machine that walks
them is `ccrouter.ivr.model.machine`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from ccrouter.schedule import Schedule

ALL_KEYS: Final = "0123456789*#"
MAX_INPUTS: Final = 40
"""A caller who has answered this many prompts is routed as they are (a runaway-loop guard)."""


class Kind(StrEnum):
    MENU = "menu"
    LANGUAGE = "language"
    PRODUCT = "product"
    COLLECT = "collect"
    MESSAGE = "message"
    TARGET = "target"
    ROUTE = "route"
    VOICEMAIL = "voicemail"
    FEATURE = "feature"  # an end another feature provides: `value` names it
    REPEAT = "repeat"
    BACK = "back"
    HANGUP = "hangup"


class CollectKind(StrEnum):
    CARD = "card"
    ACCOUNT = "account"


class End(StrEnum):
    ROUTE = "route"
    HANGUP = "hangup"
    VOICEMAIL = "voicemail"
    FEATURE = "feature"  # an end another feature provides (`Finish.feature` names it)


TERMINAL: Final = frozenset(
    {Kind.MESSAGE, Kind.TARGET, Kind.ROUTE, Kind.VOICEMAIL, Kind.FEATURE, Kind.HANGUP}
)
"""Choices that end the IVR whatever the state (LANGUAGE/PRODUCT/COLLECT end it when `next`
is None)."""


@dataclass(frozen=True, slots=True)
class Collect:
    kind: CollectKind
    prompt: str
    max_digits: int = 12
    timeout_ms: int = 7000
    retries: int = 2
    invalid_prompt: str | None = None
    on_fail: str | None = None
    """Target when every try failed; None: a card entry goes on without a card, an account
    entry goes to the general target."""


@dataclass(frozen=True, slots=True)
class Choice:
    """What a key (or a menu's default) does. `value` is the menu, language, product, target,
    message prompt or mailbox; `next` the menu after a language/product/collect (None: route)."""

    kind: Kind
    value: str = ""
    next: str | None = None
    collect: Collect | None = None


@dataclass(frozen=True, slots=True)
class Menu:
    name: str
    prompts: tuple[str, ...]
    choices: Mapping[str, Choice]
    default: Choice = Choice(Kind.ROUTE)
    """Taken after `retries` failed attempts (no input or an invalid key)."""
    timeout_ms: int = 5000
    retries: int = 2
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class OutOfHours:
    prompt: str | None = None
    then: End = End.HANGUP
    mailbox: str = ""
    feature: str = ""
    """`then` is End.FEATURE: the feature's end, by name."""


@dataclass(frozen=True, slots=True)
class IvrSpec:
    menus: Mapping[str, Menu]
    start: str
    general_target: str
    default_product: str
    greeting: tuple[str, ...] = ()
    language_menu: str | None = None
    hours: Mapping[str, Schedule] = field(default_factory=dict)
    """Product -> schedule; a product without one is open 24/7."""
    target_products: Mapping[str, str] = field(default_factory=dict)
    out_of_hours: OutOfHours = OutOfHours()
    line_out_of_hours: Mapping[str, OutOfHours] = field(default_factory=dict)
    """Product -> its own out-of-hours action (`hours.<line>.out_of_hours`), over the global one."""

    def out_of_hours_for(self, product: str) -> OutOfHours:
        return self.line_out_of_hours.get(product, self.out_of_hours)


@dataclass(frozen=True, slots=True)
class Announcement:
    """An active incident message: `products` empty means every line."""

    id: int
    prompt: str | None
    text: str
    products: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CallStart:
    now: float
    product: str | None = None
    """From the dialled number (or the dialplan's argument)."""
    language: str | None = None
    """Given by the dialplan: the language question is skipped."""
    remembered_language: str | None = None
    """From the caller's recent cards: skips the language menu when it offers that language."""
    incidents: tuple[Announcement, ...] = ()
