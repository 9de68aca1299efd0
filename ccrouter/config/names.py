"""The one rule every named list of the config shares: a name is used once. For the
cross-field checks (`checks.py` and the feature sections' own), on the raw YAML data."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

KeyPath = tuple[str | int, ...]


def unknown(kind: str, value: str, names: Sequence[str]) -> str:
    """The message for a name that is not among the declared `names`."""
    return f"unknown {kind} {value!r}; declared: {', '.join(map(str, names)) or '(none)'}"


def target_names(data: dict[str, Any]) -> list[str]:
    """The names of the targets the raw YAML data declares."""
    targets = data.get("targets")
    return list(dict.fromkeys(
        t["name"] for t in (targets if isinstance(targets, list) else [])
        if isinstance(t, dict) and isinstance(t.get("name"), str)))  # fmt: skip


def duplicate_names(items: Any, at: KeyPath, kind: str) -> Iterator[tuple[KeyPath, str]]:
    """`duplicate <kind> 'x' (first: <list>[j])` at each item whose `name` an earlier one had
    (items that are not mappings, or have no string name, are pydantic's to report)."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items if isinstance(items, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            j = seen.setdefault(name, i)
            if j != i:
                yield (*at, i, "name"), f"duplicate {kind} {name!r} (first: {at[-1]}[{j}])"
