"""Config files mangled every way a person (or an editor) can: any value at any key, keys removed,
garbage YAML, bad encodings. `load_settings` either returns settings or raises ConfigInvalid whose
every error names the file and a line (and the key when there is one); nothing else escapes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from ccrouter.config import ConfigInvalid, Settings, load_settings
from tests.conftest import ROOT
from tests.fuzz_settings import fuzz

EXAMPLE_TEXT = (ROOT / "config" / "ccrouter.yaml").read_text(encoding="utf-8")
EXAMPLE = yaml.safe_load(EXAMPLE_TEXT)

scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["", "ru", "wallet", "general", "PJSIP/1001", "-1",
                                           "sqlite+aiosqlite:///x.db", "0x10", "1e400"]),
)  # fmt: skip
anything = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = paths(EXAMPLE)


def mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "set":
        parent[last] = value
    else:  # "add": an unknown key next to it
        if isinstance(parent, dict):
            parent[f"{last}_typo"] = value
    return doc


def load_text(text: bytes) -> Settings | None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ccrouter.yaml"
        path.write_bytes(text)
        try:
            return load_settings(path, environ={})
        except ConfigInvalid as exc:
            assert exc.errors
            for error in exc.errors:
                assert error.file.endswith("ccrouter.yaml") and error.message
                assert error.line >= 0
                assert str(error).startswith(f"{error.file}:{error.line}: ")
            return None


@fuzz(40)
@example([(("targets", 0, "name"), "set", 1)])  # was a TypeError in a cross-check
@example([(("languages", 0), "set", ["ru"])])  # so was a list among the languages (make fuzz)
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["set", "delete", "add"]),
                          anything), min_size=1, max_size=3))  # fmt: skip
def test_mutated_example_loads_or_names_file_line_and_key(
    edits: list[tuple[tuple[Any, ...], str, Any]],
) -> None:
    doc: Any = EXAMPLE
    for path, op, value in edits:
        try:
            doc = mutate(doc, path, op, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path
    load_text(yaml.safe_dump(doc, allow_unicode=True).encode())


@fuzz(60)
@example(0, b"\x00", 0)  # was a yaml ReaderError escaping load_settings
@given(st.integers(0, len(EXAMPLE_TEXT)), st.binary(max_size=40), st.integers(0, 200))
def test_corrupted_file_bytes_load_or_name_the_problem(at: int, junk: bytes, cut: int) -> None:
    raw = EXAMPLE_TEXT.encode()
    load_text(raw[:at] + junk + raw[at + cut :])
