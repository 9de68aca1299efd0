"""Routing decisions: a call's requirements -> a target queue. Pure.

The skeleton routes by product x language with defaults; the skills matrix, expansion and
last-agent rules (issue: skill-based routing) extend `decide`.
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


@dataclass(frozen=True, slots=True)
class TargetSpec:
    name: str
    queue: str
    product: str
    language: str
    timeout_s: int


@dataclass(frozen=True, slots=True)
class RoutingTable:
    targets: Mapping[tuple[str, str], TargetSpec]
    """(product, language) -> target."""
    default_target: TargetSpec
    default_product: str
    default_language: str
    did: Mapping[str, str] = field(default_factory=dict)
    """Dialled number -> product."""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    target: str
    queue: str
    product: str
    language: str
    priority: int
    timeout_s: int
    notes: tuple[str, ...] = ()
    """Why a requirement was not honoured (unknown product, ...), for the log."""


def decide(req: Requirements, table: RoutingTable) -> RouteDecision:
    notes: list[str] = []
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
    return RouteDecision(
        target=spec.name,
        queue=spec.queue,
        product=spec.product,
        language=language if spec.language == language else spec.language,
        priority=max(0, req.priority),
        timeout_s=spec.timeout_s,
        notes=tuple(notes),
    )
