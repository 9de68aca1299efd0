"""An in-memory card sink with the store's semantics: insert opens a row, updates merge."""

from __future__ import annotations

from typing import Any

from ccrouter.calls.model.cards import CardWrite


class CardRows:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.writes: list[CardWrite] = []

    def submit(self, write: CardWrite) -> None:
        self.writes.append(write)
        if write.insert:
            assert write.number not in self.rows, f"card {write.number} inserted twice"
            self.rows[write.number] = dict(write.fields, number=write.number)
        else:
            assert write.number in self.rows, f"update of unknown card {write.number}"
            self.rows[write.number].update(write.fields)
