"""Feature sections: how a feature adds its part of the config file to the root settings.

A feature declares a `Section` (its top-level key, its pydantic model with defaults for every
field, and its cross-field checks on the raw YAML data) beside its code; the wiring adds it
with `add_section`, and from then on `root_model()` (what `load_settings` validates against)
has that key. The feature reads its part typed with `section.of(settings)`; the core reads
only the core sections (`Settings`), so it knows no feature's settings.

Loading still rejects unknown keys: a key no section declared is an `unknown key` error
listing the known ones, as for any other section.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, create_model

from ccrouter.config.ivr import with_ends
from ccrouter.config.names import KeyPath
from ccrouter.config.schema import ALERT_KINDS, Overflow, Settings, Target

M = TypeVar("M", bound=BaseModel)

SectionChecks = Callable[[dict[str, Any]], Iterable[tuple[KeyPath, str]]]
"""Cross-field rules on the raw YAML data (the whole document): (key path, message) pairs."""


def _no_checks(data: dict[str, Any]) -> Iterable[tuple[KeyPath, str]]:
    return ()


@dataclass(frozen=True, slots=True, eq=False)
class Section(Generic[M]):
    """One feature's top-level config section."""

    key: str
    model: type[M]
    checks: SectionChecks = _no_checks
    alert_kinds: tuple[str, ...] = ()
    """System-wide alert kinds the feature's figures feed (`ccrouter.runtime.Gauge`): a rule
    of such a kind needs a threshold and no queue."""
    ivr_ends: tuple[str, ...] = ()
    """Ends of the IVR the feature provides (it registers each at install, as
    `daemon.ivr_ends[name]`): a menu option's `<name>` action and out-of-hours `then: <name>`."""
    starter: tuple[Mapping[str, Any], str] | None = None
    """What `ccrouter import` writes for this section in a starter config made from your
    queues (the value, and the comment above it); None: nothing (the defaults)."""
    overflow_steps: Mapping[str, str] = field(default_factory=dict)
    """Overflow steps the feature provides: `overflow: {<flag>: true}` on a target sends its
    overflowing calls to the feature on that target's line; the route script sets the given
    dialplan variable to the target's name (the feature's dialplan takes it from there)."""

    def of(self, settings: Settings) -> M:
        """This section of `settings` (loaded with the section added)."""
        value = getattr(settings, self.key, None)
        if not isinstance(value, self.model):
            raise LookupError(f"these settings have no {self.key!r} section: they were "
                              "validated before the feature's section was added")  # fmt: skip
        return value


_sections: dict[str, Section[Any]] = {}
_root: type[Settings] | None = None
_overflow: type[Overflow] | None = None


def add_section(section: Section[Any]) -> None:
    """Add a feature's section to the root settings (again with the same section: no-op)."""
    global _root, _overflow
    if _sections.get(section.key) is section:
        return
    if section.key in Settings.model_fields or section.key in _sections:
        raise ValueError(f"config section {section.key!r} is declared twice")
    _sections[section.key] = section
    _root = _overflow = None


def sections() -> tuple[Section[Any], ...]:
    """The feature sections added, in the order they were added."""
    return tuple(_sections.values())


def feature_alert_kinds() -> tuple[str, ...]:
    """The alert kinds the feature sections added."""
    return tuple(k for s in _sections.values() for k in s.alert_kinds)


def alert_kinds() -> tuple[str, ...]:
    """Every alert kind a rule may name: the core's, then the features'."""
    return (*ALERT_KINDS, *feature_alert_kinds())


def starters() -> dict[str, tuple[Mapping[str, Any], str]]:
    """Each feature section's starter value and comment for `ccrouter import`, by key."""
    return {k: s.starter for k, s in _sections.items() if s.starter is not None}


def ivr_ends() -> tuple[str, ...]:
    """The IVR ends the feature sections added."""
    return tuple(e for s in _sections.values() for e in s.ivr_ends)


def overflow_steps() -> dict[str, str]:
    """Every feature's overflow step: its flag on `overflow:` -> its dialplan variable."""
    return {k: v for s in _sections.values() for k, v in s.overflow_steps.items()}


def overflow_model() -> type[Overflow]:
    """`Overflow` with every feature's step flag (false by default)."""
    global _overflow
    if _overflow is None:
        flags: dict[str, Any] = {k: (bool, False) for k in overflow_steps()}
        _overflow = Overflow if not flags else create_model(
            "Overflow", __base__=Overflow, __module__=__name__, **flags)  # fmt: skip
    return _overflow


def root_model() -> type[Settings]:
    """`Settings` with every added feature section and overflow step (subclasses: the core's
    types still fit)."""
    global _root
    if _root is None:
        fields: dict[str, Any] = {
            key: (s.model, Field(default_factory=s.model)) for key, s in _sections.items()
        }
        overflow = overflow_model()
        if overflow is not Overflow:
            optional: Any = overflow | None
            target = create_model("Target", __base__=Target, __module__=__name__,
                                  overflow=(optional, None))  # fmt: skip
            fields["targets"] = (list[target], Field(min_length=1))  # type: ignore[valid-type]
        if ivr_ends():
            ivr, hours = with_ends(ivr_ends())
            fields["ivr"] = (ivr, Field(default_factory=ivr))
            fields["hours"] = (dict[str, hours], Field(default_factory=dict))  # type: ignore[valid-type]
        _root = create_model("Settings", __base__=Settings, __module__=__name__, **fields)
    return _root
