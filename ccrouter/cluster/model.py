"""The cluster's rules, pure: how long a lease lives, and what a node's daemon is told.

A node is served by the instance that holds its lease. The row lives `ttl_s` (0.6 x
`cluster.lease_s`) past its last renewal, renewed every `renew_s` (0.2 x); a standby asks every
`poll_s` (0.2 x), so a dead holder's node has a new one within 0.8 x `lease_s`. A holder that
could not renew for `demote_s` (0.5 x) stops serving the node by itself, before the row can
expire and another instance take it: two instances never serve one node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccrouter.config import AsteriskSettings, Settings


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl_s: float
    renew_s: float
    poll_s: float
    demote_s: float

    @classmethod
    def of(cls, lease_s: float) -> LeaseTiming:
        return cls(ttl_s=0.6 * lease_s, renew_s=0.2 * lease_s, poll_s=0.2 * lease_s,
                   demote_s=0.5 * lease_s)  # fmt: skip


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

