"""The IVR's vocabulary: the steps the machine asks the AGI script to perform, the events that
answer them, and the caller's state between them. Pure values."""

from __future__ import annotations

from dataclasses import dataclass

from ccrouter.ivr.model.menus import ALL_KEYS, Announcement, Collect, CollectKind, End

# --- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    prompts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetLanguage:
    language: str


@dataclass(frozen=True, slots=True)
class Ask:
    menu: str
    prompts: tuple[str, ...]
    timeout_ms: int
    keys: str = ALL_KEYS


@dataclass(frozen=True, slots=True)
class Read:
    kind: CollectKind
    prompt: str
    max_digits: int
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class Check:
    kind: CollectKind
    digits: str


@dataclass(frozen=True, slots=True)
class Finish:
    end: End
    target: str | None = None
    mailbox: str = ""
    out_of_hours: bool = False
    feature: str = ""
    """End.FEATURE: the name of the end the feature provides."""


Step = Play | SetLanguage | Ask | Read | Check | Finish

# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    pass


@dataclass(frozen=True, slots=True)
class Pressed:
    key: str


@dataclass(frozen=True, slots=True)
class NoInput:
    pass


@dataclass(frozen=True, slots=True)
class Entered:
    digits: str


@dataclass(frozen=True, slots=True)
class Checked:
    """The card number / the account's product (None: not valid). An account may name a
    `target` instead (the engineers' lookup hook): `value` is then that target's product."""

    value: str | None
    target: str | None = None


Event = Done | Pressed | NoInput | Entered | Checked


class IvrError(ValueError):
    """An event that does not answer the step in progress (a bug in the driver)."""


@dataclass(frozen=True, slots=True)
class IvrState:
    now: float
    menu: str = ""
    stack: tuple[str, ...] = ()
    tries: int = 0
    inputs: int = 0
    language: str | None = None
    product: str | None = None
    card: str | None = None
    account: str | None = None
    collect: Collect | None = None
    collect_next: str | None = None
    remembered_language: str | None = None
    incidents: tuple[Announcement, ...] = ()
    played: frozenset[int] = frozenset()
    queue: tuple[Step, ...] = ()
    """Steps after the current one that need no input (Play, SetLanguage) and the one that
    ends the sequence."""
    current: Step | None = None
    path: tuple[str, ...] = ()
    closed_after_language: bool = False
    """The dialled line is closed and the caller's language is not known: the language menu is
    asked first, then the out-of-hours message plays in the chosen language."""
