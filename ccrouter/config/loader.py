"""Settings: defaults < YAML file < environment, into one frozen, validated object.

The models below are the schema. `load_settings(path)` reads the YAML keeping line numbers so
every error names file, line and key; `CCROUTER_*` environment variables override secrets and
addresses (see ENV_OVERRIDES). A relative SQLite path in `database.url` (from the file or the
default) is resolved against the config file's directory; one from the environment is left as
given (relative to the working directory, as SQLite reads it).

Checking happens in one pass and reports every error found: YAML syntax (then it stops),
duplicate keys, unknown keys, wrong types and ranges (pydantic), and the cross-field rules in
`_cross_checks` (names that must be declared, names that must be unique) and those of every
feature section added (`ccrouter.config.sections`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ccrouter.config.checks import KeyPath, _cross_checks
from ccrouter.config.schema import ENV_OVERRIDES, DatabaseSettings, Settings
from ccrouter.config.sections import root_model, sections

ENV_FILE = "environment"
"""`ConfigError.file` for an error in an environment override (its `key` is the variable)."""


@dataclass(frozen=True, slots=True)
class ConfigError:
    file: str
    line: int
    """1-based; 0 when the error has no line (unreadable file, environment variable)."""
    key: str
    """Dotted path like `targets[2].language`; empty for the file as a whole."""
    message: str

    def __str__(self) -> str:
        if not self.key:
            return f"{self.file}:{self.line}: {self.message}"
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class ConfigInvalid(Exception):
    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults < YAML file < environment. Raises ConfigInvalid listing every error."""
    settings, errors = _load(Path(path), os.environ if environ is None else environ)
    if settings is None:
        raise ConfigInvalid(errors)
    return settings


def check_settings(path: Path, environ: Mapping[str, str] | None = None) -> list[ConfigError]:
    """Every error in the config file (and the environment overrides); empty when valid."""
    return _load(Path(path), os.environ if environ is None else environ)[1]


_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?$")


def resolve_sqlite_url(url: str, base: Path) -> str:
    """`sqlite+aiosqlite:///rel/x.db` -> the same URL with the path made absolute against
    `base`. Absolute paths, `:memory:`, `file:` URIs and other databases pass unchanged."""
    m = _SQLITE_URL.match(url)
    if m is None:
        return url
    prefix, db, query = m.group(1), m.group(2), m.group(3) or ""
    if not db or db == ":memory:" or db.startswith(("/", "file:")):
        return url
    return f"{prefix}{os.path.normpath(base.resolve() / db)}{query}"


@dataclass(slots=True)
class _Doc:
    """The YAML document as plain values, with the line of every key and list item."""

    file: str
    loader: yaml.SafeLoader
    lines: dict[KeyPath, int] = field(default_factory=lambda: {(): 1})
    errors: list[ConfigError] = field(default_factory=list)
    active: set[int] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)
    """Keys whose value could not be read (None stands in): no second error for them."""

    def error(self, path: KeyPath, line: int, message: str) -> None:
        self.errors.append(ConfigError(self.file, line, dotted(path), message))

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        if id(node) in self.active:
            self.error(path, node.start_mark.line + 1, "recursive YAML alias")
            self.broken.add(dotted(path))
            return None
        self.active.add(id(node))
        try:
            return self._convert(node, path)
        finally:
            self.active.discard(id(node))

    def _convert(self, node: yaml.Node, path: KeyPath) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.error(path, line, "a key must be a plain name, not a list or mapping")
                    continue
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.error(path, line, "YAML merge keys (<<) are not supported")
                    continue
                sub = (*path, key_node.value)
                if key_node.value in out:
                    first = self.lines[sub]
                    self.error(sub, line, f"duplicate key (first defined on line {first})")
                    continue
                self.lines[sub] = line
                out[key_node.value] = self.convert(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            for i, item in enumerate(node.value):
                self.lines[(*path, i)] = item.start_mark.line + 1
                items.append(self.convert(item, (*path, i)))
            return items
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.error(path, node.start_mark.line + 1, f"bad YAML value: {exc}")
            self.broken.add(dotted(path))
            return None


def dotted(path: KeyPath) -> str:
    """("targets", 2, "language") -> "targets[2].language"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _read_yaml(path: Path, file: str) -> tuple[Any, _Doc | None, list[ConfigError]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
        return None, None, [ConfigError(file, 0, "", f"cannot read the config file: {reason}")]
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
        line = mark.line + 1 if mark else 0
        return None, None, [ConfigError(file, line, "", f"YAML syntax error: {what}")]
    except yaml.reader.ReaderError as exc:  # a control character such as NUL in the text
        line = text.count("\n", 0, exc.position) + 1
        what = f"character {exc.character!r} is not allowed in YAML"
        return None, None, [ConfigError(file, line, "", f"YAML syntax error: {what}")]
    doc = _Doc(file, loader)
    try:
        data = {} if node is None else doc.convert(node, ())
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        doc.error((), 1, "the file must be a mapping of sections (ami:, targets:, ...)")
        return None, None, doc.errors
    return data, doc, doc.errors


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[KeyPath, str]:
    from_env: dict[KeyPath, str] = {}
    for var, path in ENV_OVERRIDES.items():
        if var not in environ:
            continue
        section: Any = data
        for part in path[:-1]:
            section = section.setdefault(part, {}) if isinstance(section, dict) else None
        if isinstance(section, dict):  # else the file's own type error is reported
            section[path[-1]] = environ[var]
            from_env[path] = var
    return from_env


def _load(path: Path, environ: Mapping[str, str]) -> tuple[Settings | None, list[ConfigError]]:
    file = str(path)
    data, doc, errors = _read_yaml(path, file)
    if data is None or doc is None:
        return None, errors
    from_env = _apply_env(data, environ)
    database = data.setdefault("database", {})
    if isinstance(database, dict) and ("database", "url") not in from_env:
        url = database.get("url", DatabaseSettings.model_fields["url"].default)
        if isinstance(url, str):
            database["url"] = resolve_sqlite_url(url, path.resolve().parent)
    for key, message in _cross_checks(data):
        doc.error(key, _line(doc.lines, key), message)
    for section in sections():
        for key, message in section.checks(data):
            doc.error(key, _line(doc.lines, key), message)
    settings: Settings | None = None
    try:
        settings = root_model().model_validate(data)
    except ValidationError as exc:
        errors.extend(
            e for e in _pydantic_errors(exc, data, doc, from_env) if e.key not in doc.broken
        )
    if errors:
        unique = {(e.file, e.line, e.key, e.message): e for e in errors}
        return None, sorted(unique.values(), key=lambda e: (e.file != file, e.line, e.key))
    return settings, []


def _line(lines: Mapping[KeyPath, int], path: KeyPath) -> int:
    """The line of `path`, or of its closest parent present in the file."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return 1


def _present(data: Any, loc: KeyPath) -> KeyPath:
    """The longest prefix of `loc` that exists in `data` (drops pydantic's union tags)."""
    for n, part in enumerate(loc):
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return loc[:n]
        data = data[part]
    return loc


def _model_at(loc: KeyPath) -> type[BaseModel] | None:
    ann: Any = root_model()
    for part in loc:
        if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(part, str):
            info = ann.model_fields.get(part)
            ann = info.annotation if info else None
        elif get_origin(ann) is list and isinstance(part, int):
            ann = get_args(ann)[0]
        elif get_origin(ann) is dict and isinstance(part, str):
            ann = get_args(ann)[1]
        else:
            return None
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _pydantic_errors(
    exc: ValidationError, data: dict[str, Any], doc: _Doc, from_env: Mapping[KeyPath, str]
) -> Iterator[ConfigError]:
    for err in exc.errors(include_url=False):
        loc: KeyPath = tuple(p for p in err["loc"] if p != "[key]")
        kind = err["type"]
        if kind == "missing":
            message = "required key is missing"
        elif kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            known = sorted(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
            if known:
                message += f"; known keys: {', '.join(known)}"
        else:
            loc = _present(data, loc)
            shown = "***" if "secret" in str(loc[-1:]) else repr(err["input"])[:60]
            message = f"{err['msg']} (got {shown})"
            if kind == "string_type" and isinstance(err["input"], int | float):
                message += "; quote it in YAML to make it text"
        var = from_env.get(loc)
        if var is not None:
            yield ConfigError(ENV_FILE, 0, var, f"{message}; it overrides {dotted(loc)}")
        else:
            yield ConfigError(doc.file, _line(doc.lines, loc), dotted(loc), message)


