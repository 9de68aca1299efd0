"""The cluster's rules, pure: how long a lease lives, and what a node's daemon is told.

A node is served by the instance that holds its lease. The row lives `ttl_s` (0.6 x
`cluster.lease_s`) past its last renewal, renewed every `renew_s` (0.2 x); a standby asks every
`poll_s` (0.2 x), so a dead holder's node has a new one within 0.8 x `lease_s`. A holder that
could not renew for `demote_s` (0.5 x) stops serving the node by itself, before the row can
expire and another instance take it: two instances never serve one node.

Every instance listens on the FastAGI port of every node it may serve. A call that reaches an
instance not serving the node is held (`park`) when the holder comes earlier in the order the
node's Asterisk tries instances — it was tried and did not answer, so it is likely dead and this
instance may take the node — or when nobody holds it; it is sent on (`next`) when the holder
comes later, where Asterisk will reach it. A held call is served once this instance serves the
node, or sent on after `park_s`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ccrouter.config import AsteriskSettings, Settings


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl_s: float
    renew_s: float
    poll_s: float
    demote_s: float
    park_s: float
    """How long a standby holds a call for a node it may be about to serve (the lease's move
    and the node's daemon starting) before it sends the call on."""

    @classmethod
    def of(cls, lease_s: float) -> LeaseTiming:
        return cls(ttl_s=0.6 * lease_s, renew_s=0.2 * lease_s, poll_s=0.2 * lease_s,
                   demote_s=0.5 * lease_s, park_s=max(2.0 * lease_s, 3.0))  # fmt: skip


Verdict = Literal["park", "next"]


UNKNOWN: Final = ""
"""The holder when the database could not be asked: this instance cannot take the node."""


def standby_verdict(order: Sequence[str], me: str, holder: str | None) -> Verdict:
    """What this instance, not serving a node, does with a call for it: `order` is the order
    the node's Asterisk tries instances in, `holder` the live lease holder (None: nobody;
    UNKNOWN: the database is away, so this instance cannot serve the node soon)."""
    if holder == UNKNOWN:
        return "next"
    if holder is None or holder == me or holder not in order or me not in order:
        return "park"
    return "park" if order.index(holder) < order.index(me) else "next"


def my_nodes(settings: Settings) -> list[str]:
    """The nodes this instance may serve (`cluster.instances[].nodes`, else every node)."""
    names = settings.asterisk.names()
    given = settings.cluster.me().nodes
    return names if given is None else [n for n in names if n in given]


def node_settings(settings: Settings, node: str) -> Settings:
    """The settings of the daemon serving `node` on this instance: that node's AMI, the
    FastAGI and HTTP ports of this instance for it (its index in `asterisk.nodes` added to the
    instance's first ports), and only the operators of that node."""
    names = settings.asterisk.names()
    index = names.index(node)
    ami = next((n.ami for n in settings.asterisk.nodes if n.name == node), settings.ami)
    update: dict[str, object] = {
        "ami": ami,
        "asterisk": AsteriskSettings(node=node, nodes=settings.asterisk.nodes),
        "operators": [op for op in settings.operators if op.node in (None, node)],
    }
    if settings.cluster.enabled:
        me = settings.cluster.me()
        update["agi"] = settings.agi.model_copy(
            update={"host": me.host, "port": me.agi_port + index})
        update["http"] = settings.http.model_copy(
            update={"port": me.http_port + index if me.http_port else 0})
    return settings.model_copy(update=update)

