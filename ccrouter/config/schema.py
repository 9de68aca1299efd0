"""The settings schema: one frozen, validated object (pydantic models).

Feature sections live beside their code (`ccrouter/config/ivr.py`); cross-field rules are in
`checks.py` (the IVR's in `ivr_checks.py`, the sounds check in `sounds.py`), reading YAML
with line numbers in `loader.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ccrouter.config.asterisk import NODE_NAME, AmiSettings, AsteriskSettings, merge_node_ami
from ccrouter.config.cluster import ClusterSettings
from ccrouter.config.helpdesk import HelpdeskSettings, MailSettings
from ccrouter.config.ivr import HoursSettings, IvrSettings, SurveySettings
from ccrouter.config.qc import QcSettings
from ccrouter.config.recordings import RecordingSettings
from ccrouter.config.report_schedules import ReportSettings
from ccrouter.config.teams import Team

_NAME = r"^[A-Za-z0-9_.-]+$"
"""Queue and target names: they go into the dialplan and AMI actions unquoted."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    mask_numbers_for: list[Literal["operator", "supervisor", "admin", "viewer"]] = Field(
        default_factory=list
    )
    """API roles that see callers' numbers masked (7900***4567) in cards and live views."""
    keepalive_s: float = Field(default=15.0, gt=0)
    """Comment line sent on idle server-sent-event streams (keeps proxies from closing them)."""


class WebhookSettings(_Model):
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """Alerts are POSTed here as JSON (fired and resolved); null: log only."""
    timeout_s: float = Field(default=5.0, gt=0)
    attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=1.0, gt=0)
    """Delay before the 2nd attempt; doubles for every further attempt."""


ALERT_KINDS: Final = ("sl_below", "longest_wait_above", "no_operator", "ami_down")
"""The core's alert kinds; a feature section adds its own (`Section.alert_kinds`)."""


class AlertRule(_Model):
    """One alert rule. `threshold` means, by kind: sl_below -> a fraction (0.8);
    longest_wait_above -> seconds; no_operator -> unused; ami_down -> seconds; a feature's
    kind (system-wide) -> the figure it watches (e.g. requests waiting)."""

    name: str = Field(min_length=1, pattern=_NAME)
    kind: str
    queue: str | None = Field(default=None, pattern=_NAME)
    """A target's queue, or null for every queue (queue kinds only)."""
    threshold: float = Field(default=0.0, ge=0)
    window_min: int = Field(default=30, ge=1, le=1440)
    """sl_below: the service level over this many last minutes."""
    min_offered: int = Field(default=1, ge=1)
    """sl_below: stay quiet until the window holds this many offered calls."""
    hours: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    """no_operator: the line's hours, local time (reports.timezone), e.g. 08:00-20:00."""

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        """One of the core's kinds or a feature section's (the error a Literal would give)."""
        from ccrouter.config.sections import alert_kinds  # the sections import this module

        kinds = alert_kinds()
        if value not in kinds:
            shown = [repr(k) for k in kinds]
            expected = f"{', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else shown[0]
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": expected})  # fmt: skip
        return value


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
    node: str | None = Field(default=None, pattern=NODE_NAME)
    """With several Asterisk nodes: the node whose queues this operator's device is a member
    of (every node when not given)."""


class ExpansionStep(_Model):
    """After `after_s` seconds of waiting, operators with both levels >= `min_level` may take
    the call, in the target's own language or (with `fallback` = n) its first n fallbacks."""

    after_s: int = Field(ge=0)
    min_level: int = Field(default=1, ge=1, le=100)
    fallback: int = Field(default=0, ge=0, le=9)


class Overflow(_Model):
    """Where a call goes when its queue times out (`timeout_s`) or nobody is logged in with
    the skills: exactly one of another target, a plain queue, a voicemail box, or a step a
    feature provides on this target's line (a flag its section adds: `Section.overflow_steps`)."""

    target: str | None = Field(default=None, pattern=_NAME)
    queue: str | None = Field(default=None, pattern=_NAME)
    voicemail: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?$")
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
    wrapup_s: int | None = Field(default=None, ge=0, le=3600)
    """After-call work: queues.conf `wrapuptime` of this target's queue (no call for the
    operator this long after one ends); default: `routing.queues.wrapup_s`."""

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
    fallback_static_members: list[str] = Field(default_factory=list)
    """Operators' interfaces (`PJSIP/1001`) written as static `member =>` lines of the
    fallback queue in the generated queues_ccrouter.conf, so that after an Asterisk restart
    while ccrouter is down (no dynamic members yet) callers sent to ccrouter-fallback find
    someone. Asterisk cannot remove a static member over AMI: while ccrouter runs it pauses
    those whose operator is logged out (reason `ccrouter-logged-out`) and manages the rest like
    any member. The fallback queue must be a target's queue (queues_ccrouter.conf defines it)."""
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

    def static_member_keys(self) -> frozenset[tuple[str, str]]:
        """(queue, interface) of the fallback queue's static members."""
        if self.fallback_queue is None:
            return frozenset()
        return frozenset((self.fallback_queue, i) for i in self.fallback_static_members)


class Settings(_Model):
    ami: AmiSettings = AmiSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    cluster: ClusterSettings = ClusterSettings()
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
    hours: dict[str, HoursSettings] = Field(default_factory=dict)
    """Product line -> business hours; a line not listed is open 24/7."""
    ivr: IvrSettings = IvrSettings()
    survey: SurveySettings = SurveySettings()
    helpdesk: HelpdeskSettings = HelpdeskSettings()
    mail: MailSettings = MailSettings()
    recordings: RecordingSettings = RecordingSettings()
    teams: list[Team] = Field(default_factory=list)
    qc: QcSettings = QcSettings()

    @model_validator(mode="before")
    @classmethod
    def _merge_node_ami(cls, data: Any) -> Any:
        return merge_node_ami(data)

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
    "CCROUTER_INSTANCE": ("cluster", "instance"),
    "CCROUTER_AGI_PORT": ("agi", "port"),
    "CCROUTER_DATABASE_URL": ("database", "url"),
    "CCROUTER_HTTP_HOST": ("http", "host"),
    "CCROUTER_HTTP_PORT": ("http", "port"),
    "CCROUTER_LOG_FORMAT": ("log", "format"),
    "CCROUTER_LOG_LEVEL": ("log", "level"),
    "CCROUTER_HELPDESK_SECRET": ("helpdesk", "secret"),
    "CCROUTER_SMTP_PASSWORD": ("mail", "password"),
}


