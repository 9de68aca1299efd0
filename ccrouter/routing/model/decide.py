"""Routing decisions: a call's requirements -> a target queue, priority, expansion. Pure.

`decide(requirements, table, floor)`:
1. the target: product (argument, else the dialled number's, else the default) x language
   (argument, else the default); no target in that language -> the product's default-language
   target; no target for the product -> the default target;
2. nobody logged in with the skills (`floor.staffed`) and the target overflows `when_unstaffed`
   -> follow its overflow step at once (another target, a plain queue, voicemail, a step a
   feature provides), noted in `escalation`;
3. priority: the highest of the argument (a leg ccrouter originates carries its own), VIP
   number, repeat caller;
4. expansion: the target's first max penalty (QUEUE_MAX_PENALTY; its queue rule widens it);
5. overflow after the queue timeout: the target's overflow step;
6. last agent: a repeat caller whose last operator is logged in and free rings them first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a call needs, from the route script's arguments, the IVR and the caller's history."""

    product: str | None = None
    language: str | None = None
    dialled: str | None = None
    priority: int = 0
    card: str | None = None
    """A card number the caller quoted (validated): their last agent is tried first."""
    caller_num: str | None = None
    repeat_of: str | None = None
    """The card this call repeats (the quoted card, or the caller's last one by number)."""


@dataclass(frozen=True, slots=True)
class OverflowSpec:
    kind: str
    """"target", "queue", "voicemail", or a feature's step (its flag on `overflow:`)."""
    dest: str
    """Target name, queue name, voicemail box (box@context), or (a feature's step) the target
    on whose line the feature takes the call."""
    when_unstaffed: bool = True
    variable: str = ""
    """A feature's step: the dialplan variable the route script sets to `dest`."""


@dataclass(frozen=True, slots=True)
class TargetSpec:
    name: str
    queue: str
    product: str
    language: str
    timeout_s: int
    initial_max_penalty: int | None = None
    """QUEUE_MAX_PENALTY at the start of the wait (None: no skill expansion)."""
    overflow: OverflowSpec | None = None


@dataclass(frozen=True, slots=True)
class PrioritySpec:
    repeat_caller: int = 0
    vip: int = 0
    vip_numbers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RoutingTable:
    targets: Mapping[tuple[str, str], TargetSpec]
    """(product, language) -> target."""
    default_target: TargetSpec
    default_product: str
    default_language: str
    did: Mapping[str, str] = field(default_factory=dict)
    """Dialled number -> product."""
    priorities: PrioritySpec = PrioritySpec()
    last_agent_ring_s: int = 0
    """0: last-agent routing is off."""
    fallback_queue: str | None = None
    """The dialplan's fallback queue (after a queue failure when a target has no overflow)."""

    def by_name(self, name: str) -> TargetSpec | None:
        if self.default_target.name == name:
            return self.default_target
        for spec in self.targets.values():
            if spec.name == name:
                return spec
        return None


@dataclass(frozen=True, slots=True)
class Floor:
    """What the router knows about the operators right now."""

    staffed: frozenset[str] | None = None
    """Queues with at least one logged-in member; None = unknown (treated as staffed)."""
    last_agent_queue: str | None = None
    """The personal queue of the repeat caller's last operator, when logged in and free."""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    target: str
    queue: str
    """Empty when the call goes straight to its overflow step (voicemail)."""
    product: str
    language: str
    priority: int
    timeout_s: int
    notes: tuple[str, ...] = ()
    """Why a requirement was not honoured (unknown product, ...), for the log."""
    max_penalty: int | None = None
    min_penalty: int | None = None
    overflow_queue: str | None = None
    """Where the dialplan queues the caller after TIMEOUT/JOINEMPTY/LEAVEEMPTY."""
    overflow_max_penalty: int | None = None
    voicemail: str | None = None
    """Voicemail box the dialplan uses when the call overflows (box@context)."""
    feature_step: OverflowSpec | None = None
    """The overflow step a feature provides (at once, or after the queue): the route script
    sets its variable to its target."""
    last_agent_queue: str | None = None
    last_agent_ring_s: int = 0
    escalation: tuple[str, ...] = ()
    """Targets/queues passed over before the call was queued (nobody logged in there)."""
    repeat_of: str | None = None
    source: str = "builtin"
    """"builtin" or "hook" (an engineer's routing hook decided)."""


_NO_LIMIT = 2_147_483_647
"""INT_MAX: app_queue's "no max penalty" (its rules then do not act)."""
_MAX_HOPS = 8


def _target(req: Requirements, table: RoutingTable, notes: list[str]) -> tuple[TargetSpec, str]:
    product = req.product or (req.dialled and table.did.get(req.dialled)) or table.default_product
    language = req.language or table.default_language
    spec = table.targets.get((product, language))
    if spec is None:
        spec = table.targets.get((product, table.default_language))
        if spec is None:
            notes.append(f"no target for product={product} language={language}")
            spec = table.default_target
        else:
            notes.append(f"no target for language={language}; using {table.default_language}")
    return spec, language


def _priority(req: Requirements, table: RoutingTable, repeat: bool) -> int:
    p = table.priorities
    prio = max(0, req.priority)
    if req.caller_num and req.caller_num in p.vip_numbers:
        prio = max(prio, p.vip)
    if repeat:
        prio = max(prio, p.repeat_caller)
    return prio


def _start_of(table: RoutingTable, queue: str) -> int:
    """QUEUE_MAX_PENALTY to start with in `queue`: a target's first step, else no limit."""
    specs = [table.default_target, *table.targets.values()]
    limits = [t.initial_max_penalty for t in specs if t.queue == queue]
    return limits[0] if limits and limits[0] is not None else _NO_LIMIT


def _overflow_fields(spec: TargetSpec, table: RoutingTable) -> dict[str, object]:
    o = spec.overflow
    if o is None:
        if table.fallback_queue is None:
            return {}
        return {"overflow_max_penalty": _start_of(table, table.fallback_queue)}
    if o.kind == "voicemail":
        return {"voicemail": o.dest}
    if o.variable:
        return {"feature_step": o}
    if o.kind == "queue":
        return {"overflow_queue": o.dest, "overflow_max_penalty": _start_of(table, o.dest)}
    nxt = table.by_name(o.dest)
    if nxt is None:
        return {}
    limit = nxt.initial_max_penalty
    return {"overflow_queue": nxt.queue,
            "overflow_max_penalty": _NO_LIMIT if limit is None else limit}  # fmt: skip


def decide(req: Requirements, table: RoutingTable, floor: Floor | None = None) -> RouteDecision:
    floor = floor or Floor()
    notes: list[str] = []
    spec, language = _target(req, table, notes)
    escalation: list[str] = []
    queue: str | None = spec.queue
    voicemail: str | None = None
    step: OverflowSpec | None = None
    staffed = floor.staffed
    while staffed is not None and queue is not None and queue not in staffed:
        o = spec.overflow
        if o is None or not o.when_unstaffed or len(escalation) >= _MAX_HOPS:
            break
        escalation.append(spec.name)
        if o.kind == "target" and (nxt := table.by_name(o.dest)) is not None:
            if nxt.name in escalation:
                break
            spec, queue = nxt, nxt.queue
        elif o.kind == "queue":
            queue = o.dest
            break
        elif o.kind == "voicemail":
            queue, voicemail = None, o.dest
            break
        else:  # a feature's step
            queue, step = None, o
            break
    if escalation:
        notes.append(f"nobody logged in for {'->'.join(escalation)}")
    repeat = bool(req.repeat_of or req.card)
    extra: dict[str, object] = {}  # one construction: replace() on a frozen class is slow
    if queue is not None and queue == spec.queue:
        extra = _overflow_fields(spec, table)
    elif voicemail is not None:
        extra["voicemail"] = voicemail
    elif step is not None:
        extra["feature_step"] = step
    if floor.last_agent_queue and table.last_agent_ring_s > 0 and queue:
        extra["last_agent_queue"] = floor.last_agent_queue
        extra["last_agent_ring_s"] = table.last_agent_ring_s
    return RouteDecision(
        target=spec.name,
        queue=queue or "",
        product=spec.product,
        language=language if spec.language == language else spec.language,
        priority=_priority(req, table, repeat),
        timeout_s=spec.timeout_s,
        notes=tuple(notes),
        max_penalty=spec.initial_max_penalty if queue == spec.queue else None,
        escalation=tuple(escalation),
        repeat_of=req.repeat_of or req.card,
        **extra,  # type: ignore[arg-type]
    )
