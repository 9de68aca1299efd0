"""The wallboard snapshot, built for thousands of operators without stalling the loop.

Each operator's JSON is cached and rebuilt only when the live model reports its interface
changed (`LiveModel.take_dirty`); the snapshot text is spliced from the cached fragments and
serialised once for every subscriber (`Hub.publish_text`). Nothing is built while nobody
watches: the retained snapshot is dropped, and the next subscriber gets a fresh one at the
next tick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ccrouter.config import Operator
from ccrouter.web.api import dumps
from ccrouter.web.live import LiveModel


class OperatorsJson:
    """The `operators` array of the snapshot as JSON text, rebuilt per changed interface."""

    def __init__(self) -> None:
        self._source: tuple[Operator, ...] | None = None
        self._configured: dict[str, tuple[str, str]] = {}
        self._fragments: dict[str, str] = {}
        self._order: list[str] = []
        self._text = "[]"
        self.rebuilt = 0
        """Operator fragments rebuilt so far (for tests and benchmarks)."""

    def text(self, live: LiveModel, operators: tuple[Operator, ...] | list[Operator]) -> str:
        dirty = live.take_dirty()
        ops = tuple(operators)
        if ops != self._source:  # first call or a config reload: everything anew
            self._source = ops
            self._configured = {o.interface: (o.id, o.name) for o in ops}
            dirty = None
        configured = self._configured
        known = live.interfaces()
        order = [*configured, *(i for i in known if i not in configured)]
        if dirty is None:
            self._fragments = {}
            dirty = set(order)
        elif order != self._order:
            dirty |= set(order) - set(self._fragments)
        if not dirty and order == self._order:
            return self._text
        for iface in dirty:
            if iface in configured or iface in known:
                self._fragments[iface] = dumps(
                    dataclasses.asdict(live.operator(iface, configured)))
                self.rebuilt += 1
            else:
                self._fragments.pop(iface, None)
        self._order = order
        self._text = "[" + ",".join(self._fragments[i] for i in order) + "]"
        return self._text


def splice(parts: Mapping[str, Any], raw: Mapping[str, str]) -> str:
    """A JSON object from plain values (`parts`) and already-serialised ones (`raw`)."""
    items = [f"{dumps(k)}:{dumps(v)}" for k, v in parts.items()]
    items += [f"{dumps(k)}:{v}" for k, v in raw.items()]
    return "{" + ",".join(items) + "}"
