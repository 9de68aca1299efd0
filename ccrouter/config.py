"""Settings: defaults < YAML file < environment, into one frozen, validated object.

The models below are the schema. `load_settings(path)` reads the YAML keeping line numbers so
every error names file, line and key; `CCROUTER_*` environment variables override secrets and
addresses (see ENV_OVERRIDES). A relative SQLite path in `database.url` (from the file or the
default) is resolved against the config file's directory; one from the environment is left as
given (relative to the working directory, as SQLite reads it).

Checking happens in one pass and reports every error found: YAML syntax (then it stops),
duplicate keys, unknown keys, wrong types and ranges (pydantic), and the cross-field rules in
`_cross_checks` (names that must be declared, names that must be unique).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ccrouter.ivr.config import HoursSettings, IvrSettings, SurveySettings, ivr_checks

_NAME = r"^[A-Za-z0-9_.-]+$"
"""Queue and target names: they go into the dialplan and AMI actions unquoted."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AmiSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "ccrouter"
    secret: str = ""
    connect_timeout_s: float = Field(default=5.0, gt=0)
    action_timeout_s: float = Field(default=5.0, gt=0)
    ping_interval_s: float = Field(default=10.0, gt=0)
    ping_timeout_s: float = Field(default=5.0, gt=0)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)


class AgiSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=4573, ge=0, le=65535)
    header_timeout_s: float = Field(default=5.0, gt=0)
    header_max_bytes: int = Field(default=16384, ge=512)
    command_timeout_s: float = Field(default=60.0, gt=0)
    session_timeout_s: float = Field(default=600.0, gt=0)


class DatabaseSettings(_Model):
    url: str = "sqlite+aiosqlite:///var/ccrouter.db"
    commit_window_ms: int = Field(default=50, ge=1, le=5000)
    batch_max: int = Field(default=500, ge=1)
    write_retry_s: float = Field(default=1.0, gt=0)


class HttpSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    mask_numbers_for: list[Literal["operator", "supervisor", "admin"]] = Field(
        default_factory=list
    )
    """API roles that see callers' numbers masked (7900***4567) in cards and live views."""
    keepalive_s: float = Field(default=15.0, gt=0)
    """Comment line sent on idle server-sent-event streams (keeps proxies from closing them)."""


class ReportSettings(_Model):
    sl_threshold_s: int = Field(default=20, ge=1)
    """T of the service level SL(T): answered within T seconds (80/20 -> 20)."""
    target_sl: float = Field(default=0.8, gt=0, lt=1)
    """The service level the Erlang C staffing estimate aims for."""
    timezone: str = "UTC"
    """IANA name (Asia/Tashkent): report hours/days and "today" on the wallboard are local."""


class WebhookSettings(_Model):
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """Alerts are POSTed here as JSON (fired and resolved); null: log only."""
    timeout_s: float = Field(default=5.0, gt=0)
    attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=1.0, gt=0)
    """Delay before the 2nd attempt; doubles for every further attempt."""


class AlertRule(_Model):
    """One alert rule. `threshold` means, by kind: sl_below -> a fraction (0.8);
    longest_wait_above -> seconds; no_operator -> unused; ami_down -> seconds;
    callback_backlog_above -> requests waiting."""

    name: str = Field(min_length=1, pattern=_NAME)
    kind: Literal[
        "sl_below", "longest_wait_above", "no_operator", "ami_down", "callback_backlog_above"
    ]
    queue: str | None = Field(default=None, pattern=_NAME)
    """A target's queue, or null for every queue (queue kinds only)."""
    threshold: float = Field(default=0.0, ge=0)
    window_min: int = Field(default=30, ge=1, le=1440)
    """sl_below: the service level over this many last minutes."""
    min_offered: int = Field(default=1, ge=1)
    """sl_below: stay quiet until the window holds this many offered calls."""
    hours: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    """no_operator: the line's hours, local time (reports.timezone), e.g. 08:00-20:00."""


class AlertSettings(_Model):
    evaluate_every_s: float = Field(default=10.0, gt=0)
    webhook: WebhookSettings = WebhookSettings()
    rules: list[AlertRule] = Field(default_factory=list)


class LogSettings(_Model):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"
    mask_numbers: bool = True


class CallSettings(_Model):
    short_abandon_s: int = Field(default=5, ge=0)
    close_grace_s: float = Field(default=10.0, ge=0)
    """After the caller's channel hung up, how long to wait for missing events before closing."""


class Operator(_Model):
    id: str = Field(min_length=1, pattern=_NAME)
    name: str = Field(min_length=1)
    interface: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+/\S+$")
    skills: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=dict)
    """Language or product id -> level 0..100 (100 = expert)."""
    state_interface: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_:-]+/\S+$")
    """The device app_queue watches for busy/free (e.g. PJSIP/1001 for a Local/ interface)."""
    logged_in: bool = False
    """Initial state when the database has none for this operator (`ccrouter operator login`)."""


class ExpansionStep(_Model):
    """After `after_s` seconds of waiting, operators with both levels >= `min_level` may take
    the call, in the target's own language or (with `fallback` = n) its first n fallbacks."""

    after_s: int = Field(ge=0)
    min_level: int = Field(default=1, ge=1, le=100)
    fallback: int = Field(default=0, ge=0, le=9)


class Overflow(_Model):
    """Where a call goes when its queue times out (`timeout_s`) or nobody is logged in with
    the skills: exactly one of another target, a plain queue, or a voicemail box."""

    target: str | None = Field(default=None, pattern=_NAME)
    queue: str | None = Field(default=None, pattern=_NAME)
    voicemail: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?$")
    callback: bool = False
    """Offer a callback ("press 1 to be called back", callbacks.offer's prompt and key) on this
    target's line; a caller who declines hears ss-noservice."""
    when_unstaffed: bool = True
    """Overflow at once (no queue wait) when nobody is logged in with the skills."""


class Target(_Model):
    """A routing target: one Asterisk queue for a product x language."""

    name: str = Field(min_length=1, pattern=_NAME)
    product: str
    language: str
    queue: str | None = Field(default=None, pattern=_NAME)
    timeout_s: int = Field(default=300, ge=1)
    """How long a caller waits in this target's queue before the overflow step."""
    fallback_languages: list[str] = Field(default_factory=list)
    """Languages (in order) whose speakers may take the call as the wait grows (`fallback`)."""
    expansion: list[ExpansionStep] | None = None
    """This target's expansion ladder; default: `routing.expansion`."""
    overflow: Overflow | None = None
    strategy: str | None = None
    """app_queue strategy for this target's queue; default: `routing.queues.strategy`."""

    @property
    def queue_name(self) -> str:
        return self.queue or self.name


QUEUE_STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered",
                    "linear", "wrandom")  # fmt: skip
"""app_queue's strategies (apps/app_queue.c `strategies[]`)."""


class QueueDefaults(_Model):
    """Settings of the generated queues_ccrouter.conf (one queue per target)."""

    strategy: str = "leastrecent"
    ring_s: int = Field(default=15, ge=1)
    """How long one operator's phone rings (queues.conf `timeout`)."""
    retry_s: int = Field(default=2, ge=0)
    wrapup_s: int = Field(default=0, ge=0)
    musicclass: str = Field(default="default", pattern=_NAME)


class Priorities(_Model):
    """QUEUE_PRIO for special callers (higher is served first; the highest that applies)."""

    repeat_caller: int = Field(default=5, ge=0, le=1_000_000)
    vip: int = Field(default=20, ge=0, le=1_000_000)
    vip_numbers: list[Annotated[str, Field(pattern=r"^\+?[0-9]+$")]] = Field(default_factory=list)


class LastAgent(_Model):
    """A repeat caller is first offered to the operator of their last card, if free."""

    enabled: bool = True
    window_h: float = Field(default=72.0, gt=0)
    """A caller with an answered card this recent is recognised by their number."""
    ring_s: int = Field(default=15, ge=1, le=120)
    lookup_timeout_ms: int = Field(default=50, ge=1, le=5000)
    """Bound on the database look-up of a quoted card on the route path (then: no last agent)."""


def _default_expansion() -> list[ExpansionStep]:
    return [
        ExpansionStep(after_s=0, min_level=80),
        ExpansionStep(after_s=30, min_level=50),
        ExpansionStep(after_s=60, min_level=1),
        ExpansionStep(after_s=90, min_level=1, fallback=1),
    ]


class RoutingSettings(_Model):
    default_language: str
    default_product: str
    default_target: str
    did: dict[str, str] = Field(default_factory=dict)
    """Dialled number -> product."""
    fallback_queue: str | None = Field(default=None, pattern=_NAME)
    """Plain Asterisk queue the dialplan sends calls to when ccrouter is down or cannot route,
    and after a queue TIMEOUT/JOINEMPTY/LEAVEEMPTY. Left out: the default target's queue (see
    `Settings._default_fallback_queue`). null: no fallback queue (the caller hears
    `ss-noservice` and is hung up)."""
    expansion: list[ExpansionStep] = Field(default_factory=_default_expansion, min_length=1)
    queues: QueueDefaults = QueueDefaults()
    priorities: Priorities = Priorities()
    last_agent: LastAgent = LastAgent()
    hook: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """An engineer's routing hook, `package.module:function` (see ccrouter/routing/hook.py)."""
    hook_timeout_ms: int = Field(default=200, ge=1, le=10_000)
    manual_changes: Literal["revert", "adopt"] = "revert"
    """Queue membership changed in Asterisk behind ccrouter's back: undo it, or keep it."""
    state_poll_s: float = Field(default=0.5, gt=0, le=60)
    """How often the daemon checks the database for operator changes made by the CLI."""


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


class Settings(_Model):
    ami: AmiSettings = AmiSettings()
    agi: AgiSettings = AgiSettings()
    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    calls: CallSettings = CallSettings()
    languages: list[str] = Field(min_length=1)
    products: dict[str, str] = Field(min_length=1)
    """Product id -> display name."""
    operators: list[Operator] = Field(default_factory=list)
    targets: list[Target] = Field(min_length=1)
    routing: RoutingSettings
    reports: ReportSettings = ReportSettings()
    alerts: AlertSettings = AlertSettings()
    callbacks: CallbackSettings = CallbackSettings()
    hours: dict[str, HoursSettings] = Field(default_factory=dict)
    """Product line -> business hours; a line not listed is open 24/7."""
    ivr: IvrSettings = IvrSettings()
    survey: SurveySettings = SurveySettings()

    @model_validator(mode="before")
    @classmethod
    def _default_fallback_queue(cls, data: Any) -> Any:
        """Without `routing.fallback_queue`, calls ccrouter cannot route go to the default
        target's queue: never lost, and never to a queue the generated files do not define."""
        if not isinstance(data, dict) or not isinstance(data.get("routing"), dict):
            return data
        routing = data["routing"]
        if "fallback_queue" in routing or not isinstance(data.get("targets"), list):
            return data
        for t in data["targets"]:
            if isinstance(t, dict) and t.get("name") == routing.get("default_target"):
                queue = t.get("queue") or t.get("name")
                if isinstance(queue, str):
                    return {**data, "routing": {**routing, "fallback_queue": queue}}
        return data

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)


ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "CCROUTER_AMI_HOST": ("ami", "host"),
    "CCROUTER_AMI_PORT": ("ami", "port"),
    "CCROUTER_AMI_USERNAME": ("ami", "username"),
    "CCROUTER_AMI_SECRET": ("ami", "secret"),
    "CCROUTER_AGI_HOST": ("agi", "host"),
    "CCROUTER_AGI_PORT": ("agi", "port"),
    "CCROUTER_DATABASE_URL": ("database", "url"),
    "CCROUTER_HTTP_HOST": ("http", "host"),
    "CCROUTER_HTTP_PORT": ("http", "port"),
    "CCROUTER_LOG_FORMAT": ("log", "format"),
    "CCROUTER_LOG_LEVEL": ("log", "level"),
}


# --- loading and checking -------------------------------------------------------------------

KeyPath = tuple[str | int, ...]
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
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
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
    ann: Any = Settings
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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _known(kind: str, value: str, names: Sequence[str]) -> str:
    return f"unknown {kind} {value!r}; declared: {', '.join(map(str, names)) or '(none)'}"


RESERVED_QUEUE = "general"
RESERVED_QUEUE_MESSAGE = (
    "'general' cannot name a queue: [general] is app_queue's settings section in queues.conf"
    " (set `queue:` to another name, e.g. general-line)"
)


def _cross_checks(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """Rules across sections, on the raw values (type errors are pydantic's to report)."""
    # A section of the wrong type is pydantic's error; names are then not checked against it.
    lang_ok, prod_ok = (
        isinstance(data.get("languages"), list),
        isinstance(data.get("products"), dict),
    )
    languages = [x for x in _as_list(data.get("languages")) if isinstance(x, str)]
    products = list(_as_dict(data.get("products")))
    first: dict[tuple[str, str], int] = {}
    for i, lang in enumerate(_as_list(data.get("languages"))):
        if ("lang", lang) in first and isinstance(lang, str):
            yield ("languages", i), f"duplicate language {lang!r}"
        first.setdefault(("lang", lang), i)
    for i, t in enumerate(_as_list(data.get("targets"))):
        if not isinstance(t, dict):
            continue
        at = ("targets", i)
        product, language, name = t.get("product"), t.get("language"), t.get("name")
        if prod_ok and isinstance(product, str) and product not in products:
            yield (*at, "product"), _known("product", product, products)
        if lang_ok and isinstance(language, str) and language not in languages:
            yield (*at, "language"), _known("language", language, languages)
        if isinstance(product, str) and isinstance(language, str):
            j = first.setdefault(("pl", f"{product}\0{language}"), i)
            if j != i:
                yield at, f"a second target for {product} x {language} (first: targets[{j}])"
        if not isinstance(name, str):
            continue
        j = first.setdefault(("name", name), i)
        if j != i:
            yield (*at, "name"), f"duplicate target name {name!r} (first: targets[{j}])"
            continue
        queue = t.get("queue") or name
        which = "queue" if t.get("queue") else "name"
        if queue == RESERVED_QUEUE:
            yield (*at, which), RESERVED_QUEUE_MESSAGE
        overflow_queue = _as_dict(t.get("overflow")).get("queue")
        if overflow_queue == RESERVED_QUEUE:
            yield (*at, "overflow", "queue"), RESERVED_QUEUE_MESSAGE
        if isinstance(queue, str):
            j = first.setdefault(("queue", queue), i)
            if j != i:
                yield (*at, which), f"duplicate queue name {queue!r} (first: targets[{j}])"
    target_names = [k[1] for k in first if k[0] == "name"]
    routing = _as_dict(data.get("routing"))
    for key, kind, names, ok in (
        ("default_language", "language", languages, lang_ok),
        ("default_product", "product", products, prod_ok),
        ("default_target", "target", target_names, isinstance(data.get("targets"), list)),
    ):
        value = routing.get(key)
        if ok and isinstance(value, str) and value not in names:
            yield ("routing", key), _known(kind, value, names)
    if routing.get("fallback_queue") == RESERVED_QUEUE:
        yield ("routing", "fallback_queue"), RESERVED_QUEUE_MESSAGE
    for did, product in _as_dict(routing.get("did")).items():
        if prod_ok and isinstance(product, str) and product not in products:
            yield ("routing", "did", did), _known("product", product, products)
    skill_names = [*languages, *products]
    for i, op in enumerate(_as_list(data.get("operators"))):
        if not isinstance(op, dict):
            continue
        for attr in ("id", "interface"):
            value = op.get(attr)
            if isinstance(value, str):
                j = first.setdefault((attr, value), i)
                if j != i:
                    yield (
                        ("operators", i, attr),
                        (f"duplicate operator {attr} {value!r} (first: operators[{j}])"),
                    )
        for skill in _as_dict(op.get("skills")):
            if lang_ok and prod_ok and skill not in skill_names:
                yield (
                    ("operators", i, "skills", skill),
                    (f"{_known('skill', skill, skill_names)} (skills are languages or products)"),
                )
    yield from _routing_checks(data, languages if lang_ok else None, target_names)
    ami = _as_dict(data.get("ami"))
    fields = AmiSettings.model_fields
    low = ami.get("reconnect_min_s", fields["reconnect_min_s"].default)
    high = ami.get("reconnect_max_s", fields["reconnect_max_s"].default)
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        key = "reconnect_min_s" if "reconnect_min_s" in ami else "reconnect_max_s"
        yield ("ami", key), f"reconnect_min_s ({low}) must not exceed reconnect_max_s ({high})"
    yield from _web_checks(data, target_names)
    yield from _callback_checks(data, target_names)
    yield from ivr_checks(data)


def _callback_checks(
    data: dict[str, Any], targets: Sequence[str]
) -> Iterator[tuple[KeyPath, str]]:
    """Callback regexes compile; fallback targets are declared targets."""
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
                yield at, _known("target", other, targets)


def _web_checks(data: dict[str, Any], targets: Sequence[str]) -> Iterator[tuple[KeyPath, str]]:
    """Report time zone and alert rules (queue names, thresholds, hours per kind)."""
    reports = _as_dict(data.get("reports"))
    tz = reports.get("timezone")
    if isinstance(tz, str) and not _known_timezone(tz):
        yield ("reports", "timezone"), f"unknown time zone {tz!r} (an IANA name: Asia/Tashkent)"
    queues = [
        (t.get("queue") or t.get("name"))
        for t in _as_list(data.get("targets"))
        if isinstance(t, dict)
    ]
    names: dict[str, int] = {}
    for i, rule in enumerate(_as_list(_as_dict(data.get("alerts")).get("rules"))):
        if not isinstance(rule, dict):
            continue
        at: KeyPath = ("alerts", "rules", i)
        name, kind, queue = rule.get("name"), rule.get("kind"), rule.get("queue")
        if isinstance(name, str):
            j = names.setdefault(name, i)
            if j != i:
                yield (*at, "name"), f"duplicate alert rule name {name!r} (first: rules[{j}])"
        if isinstance(queue, str) and targets and queue not in queues:
            yield (*at, "queue"), _known("queue", queue, [q for q in queues if q])
        if queue is not None and kind in ("ami_down", "callback_backlog_above"):
            yield (*at, "queue"), f"a {kind} rule applies to the whole system: remove queue"
        threshold = rule.get("threshold")
        if kind == "sl_below" and isinstance(threshold, int | float) and not 0 < threshold <= 1:
            yield (*at, "threshold"), f"sl_below needs a fraction in (0, 1], got {threshold}"
        if kind in ("longest_wait_above", "ami_down", "callback_backlog_above") and (
            "threshold" not in rule
        ):
            yield at, f"a {kind} rule needs a threshold"
        if kind == "no_operator" and rule.get("hours") is None:
            yield at, "a no_operator rule needs hours (HH:MM-HH:MM, local time)"
        hours = rule.get("hours")
        if isinstance(hours, str) and re.fullmatch(r"\d{2}:\d{2}-\d{2}:\d{2}", hours):
            for part in hours.split("-"):
                hh, mm = int(part[:2]), int(part[3:])
                if hh > 24 or mm > 59 or (hh == 24 and mm):
                    yield (*at, "hours"), f"not a time of day: {part!r}"


def _known_timezone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True



def _ladder_checks(steps: Any, at: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Expansion steps start at 0 s, grow in time, and only ever widen."""
    last: tuple[int, int, int] | None = None
    for j, step in enumerate(_as_list(steps)):
        after, level, fb = (_as_dict(step).get(k) for k in ("after_s", "min_level", "fallback"))
        if not isinstance(after, int) or not isinstance(level, int | None):
            continue
        level, fb = level or 1, fb if isinstance(fb, int) else 0
        if j == 0 and after != 0:
            yield (*at, j, "after_s"), "the first expansion step must start at after_s: 0"
        if last is not None:
            if after <= last[0]:
                yield (*at, j, "after_s"), f"must be later than the step before ({last[0]} s)"
            elif fb < last[2] or (fb == last[2] and level > last[1]):
                yield (*at, j), "an expansion step must not narrow the step before it"
        last = (after, level, fb)


def _routing_checks(
    data: dict[str, Any], languages: list[str] | None, target_names: list[str]
) -> Iterator[tuple[KeyPath, str]]:
    """Skill-based routing: fallback languages, expansion ladders, overflow steps."""
    routing = _as_dict(data.get("routing"))
    yield from _ladder_checks(routing.get("expansion"), ("routing", "expansion"))
    strategy = _as_dict(routing.get("queues")).get("strategy")
    if isinstance(strategy, str) and strategy not in QUEUE_STRATEGIES:
        yield ("routing", "queues", "strategy"), _known("strategy", strategy, QUEUE_STRATEGIES)
    for i, t in enumerate(_as_list(data.get("targets"))):
        t = _as_dict(t)
        at = ("targets", i)
        seen: set[str] = set()
        for j, lang in enumerate(_as_list(t.get("fallback_languages"))):
            if not isinstance(lang, str):
                continue
            if languages is not None and lang not in languages:
                yield (*at, "fallback_languages", j), _known("language", lang, languages)
            elif lang == t.get("language") or lang in seen:
                yield (*at, "fallback_languages", j), f"{lang!r} repeats a language of the target"
            seen.add(lang)
        yield from _ladder_checks(t.get("expansion"), (*at, "expansion"))
        if isinstance(t.get("strategy"), str) and t["strategy"] not in QUEUE_STRATEGIES:
            yield (*at, "strategy"), _known("strategy", t["strategy"], QUEUE_STRATEGIES)
        overflow = t.get("overflow")
        if not isinstance(overflow, dict):
            continue
        given = [k for k in ("target", "queue", "voicemail") if overflow.get(k) is not None]
        given += ["callback"] if overflow.get("callback") is True else []
        if len(given) != 1:
            yield (*at, "overflow"), "give exactly one of target, queue, voicemail, callback"
        elif given == ["callback"] and _as_dict(data.get("callbacks")).get("enabled") is False:
            yield (*at, "overflow", "callback"), "callbacks are disabled (callbacks.enabled)"
        dest = overflow.get("target")
        if isinstance(dest, str):
            if dest not in target_names:
                yield (*at, "overflow", "target"), _known("target", dest, target_names)
            elif dest == t.get("name"):
                yield (*at, "overflow", "target"), "a target cannot overflow to itself"
