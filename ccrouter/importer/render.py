"""A `Starter` as YAML text with its comments (PyYAML writes no comments). Pure.

Block style, two-space indents; maps of scalars (skills) and lists of scalars in flow style.
Scalars are written by PyYAML, so they read back as the same values.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from ccrouter.importer.model import Path, Starter


def _scalar(value: Any) -> str:
    text: str = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...")


def _flat(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not isinstance(v, dict | list) for v in value.values())
    if isinstance(value, list):
        return all(not isinstance(v, dict | list) for v in value)
    return True


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return _scalar(value)


class _Writer:
    def __init__(self, notes: dict[Path, list[str]]) -> None:
        self.notes = notes
        self.lines: list[str] = []

    def comments(self, path: Path, indent: int) -> None:
        for note in self.notes.get(path, []):
            for line in textwrap.wrap(note, max(40, 98 - indent)):
                self.lines.append(" " * indent + "# " + line)

    def mapping(self, data: dict[str, Any], path: Path, indent: int) -> None:
        pad = " " * indent
        for key, value in data.items():
            here = (*path, key)
            self.comments(here, indent)
            inner = any(len(p) > len(here) and p[: len(here)] == here for p in self.notes)
            if _flat(value) and not inner and not (isinstance(value, dict) and len(value) > 6):
                self.lines.append(f"{pad}{_scalar(key)}: {_flow(value)}")
            elif isinstance(value, dict):
                self.lines.append(f"{pad}{_scalar(key)}:")
                self.mapping(value, here, indent + 2)
            else:
                self.lines.append(f"{pad}{_scalar(key)}:")
                self.sequence(value, here, indent + 2)

    def sequence(self, items: list[Any], path: Path, indent: int) -> None:
        pad = " " * indent
        for i, item in enumerate(items):
            here = (*path, i)
            self.comments(here, indent)
            if isinstance(item, dict) and item:
                start = len(self.lines)
                self.mapping(item, here, indent + 2)
                first = next(j for j in range(start, len(self.lines))
                             if not self.lines[j].lstrip().startswith("#"))  # fmt: skip
                self.lines[first] = pad + "- " + self.lines[first][indent + 2 :]
            else:
                self.lines.append(f"{pad}- {_flow(item)}")


def render(starter: Starter) -> str:
    """The config file's text: header comments, then every section with its notes."""
    w = _Writer(starter.notes)
    w.lines += ["# " + line for note in starter.header for line in textwrap.wrap(note, 96)]
    for key, value in starter.data.items():
        w.lines.append("")
        w.mapping({key: value}, (), 0)
    return "\n".join(w.lines) + "\n"
