"""Settings -> the pure routing values: per-target skills and ladders, the routing table."""

from __future__ import annotations

from collections.abc import Mapping

from ccrouter.config import Settings, Target
from ccrouter.config.sections import overflow_steps
from ccrouter.routing.model.decide import OverflowSpec, PrioritySpec, RoutingTable, TargetSpec
from ccrouter.routing.model.skills import OperatorState, Step, TargetSkills


def target_skills(settings: Settings, target: Target) -> TargetSkills:
    steps = target.expansion or settings.routing.expansion
    fallbacks = tuple(target.fallback_languages)
    return TargetSkills(
        name=target.name,
        queue=target.queue_name,
        product=target.product,
        languages=(target.language, *fallbacks),
        # A step's fallback rank is capped at the target's own list (nothing more to add).
        ladder=tuple(Step(s.after_s, s.min_level, min(s.fallback, len(fallbacks))) for s in steps),
    )


def all_target_skills(settings: Settings) -> list[TargetSkills]:
    return [target_skills(settings, t) for t in settings.targets]


def _overflow(target: Target, steps: Mapping[str, str]) -> OverflowSpec | None:
    """`steps`: the features' overflow steps (flag -> dialplan variable)."""
    o = target.overflow
    if o is None:
        return None
    if o.target is not None:
        return OverflowSpec("target", o.target, o.when_unstaffed)
    if o.queue is not None:
        return OverflowSpec("queue", o.queue, o.when_unstaffed)
    for flag, variable in steps.items():  # a feature's step, on this target's line
        if getattr(o, flag, False) is True:
            return OverflowSpec(flag, target.name, o.when_unstaffed, variable)
    assert o.voicemail is not None  # config checks: exactly one is given
    return OverflowSpec("voicemail", o.voicemail, o.when_unstaffed)


def routing_table(settings: Settings) -> RoutingTable:
    steps = overflow_steps()
    specs = {
        t.name: TargetSpec(
            t.name, t.queue_name, t.product, t.language, t.timeout_s,
            initial_max_penalty=target_skills(settings, t).initial_max_penalty,
            overflow=_overflow(t, steps),
        )
        for t in settings.targets
    }  # fmt: skip
    r = settings.routing
    p = r.priorities
    return RoutingTable(
        targets={(s.product, s.language): s for s in specs.values()},
        default_target=specs[r.default_target],
        default_product=r.default_product,
        default_language=r.default_language,
        did=dict(r.did),
        priorities=PrioritySpec(p.repeat_caller, p.vip, frozenset(p.vip_numbers)),
        last_agent_ring_s=r.last_agent.ring_s if r.last_agent.enabled else 0,
        fallback_queue=r.fallback_queue,
    )


def configured_operators(settings: Settings) -> dict[str, OperatorState]:
    """Operators as the config describes them (before any state from the database)."""
    return {
        op.id: OperatorState(
            id=op.id, name=op.name, interface=op.interface,
            state_interface=op.state_interface or op.interface,
            skills=dict(op.skills), logged_in=op.logged_in,
        )
        for op in settings.operators
    }  # fmt: skip
