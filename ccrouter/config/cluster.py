"""The `asterisk:` and `cluster:` config sections: several Asterisk nodes, several ccrouter
instances on one PostgreSQL database.

One node and one instance is the short form of today: the top-level `ami:` is the node
`asterisk.node`, and no `cluster:` section is needed. With `asterisk.nodes`, each node's `ami:`
is laid over the top-level one (so a shared user and `CCROUTER_AMI_SECRET` need saying once).
With `cluster.instances`, every ccrouter process is told which one it is (`cluster.instance`
or `CCROUTER_INSTANCE`); each holds, for every node it may serve, a lease in the database
(`cluster.lease_s`), and while it holds one it is that node's ccrouter: the AMI connection, the
FastAGI port Asterisk dials for that node, card writing, membership, the features' tasks,
alerts.

Imported by `ccrouter.config.schema` (fields of `Settings`); imports nothing of ccrouter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ccrouter.config.asterisk import NODE_NAME
from ccrouter.config.names import duplicate_names

_NAME = NODE_NAME


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InstanceSettings(_Model):
    name: str = Field(pattern=_NAME)
    host: str = "127.0.0.1"
    """The address Asterisk dials for this instance's FastAGI (and where it listens)."""
    agi_port: int = Field(default=4573, ge=1, le=65000)
    """FastAGI port of the first node; the node at index i of `asterisk.nodes` is served on
    `agi_port + i`. While another instance holds the node, a call that reaches this port is
    held until this instance takes the node when the holder comes earlier in the order
    Asterisk tries (it did not answer), else sent on to the next instance."""
    http_port: int = Field(default=8080, ge=0, le=65000)
    """The HTTP API and wallboard of the first node; node i on `http_port + i` (0: any port)."""
    nodes: list[str] | None = None
    """The nodes this instance may hold; every node when not given."""


class ClusterSettings(_Model):
    instance: str = ""
    """Which of `instances` this process is (or CCROUTER_INSTANCE)."""
    instances: list[InstanceSettings] = Field(default_factory=list)
    lease_s: float = Field(default=5.0, ge=0.5, le=120)
    """Within this many seconds of a holder's death (or loss of the database) another
    instance holds its node: the lease row lives 0.6 x this, is renewed every 0.2 x this, and
    a standby asks every 0.2 x this."""

    @property
    def enabled(self) -> bool:
        return bool(self.instances)

    def agi_addresses(self, node: str, index: int) -> list[tuple[str, int]]:
        """Where the node `node` (at `index` in `asterisk.nodes`) dials FastAGI, in the order
        it tries them: every instance that may serve it."""
        order = self.serving_order(node)
        return [(i.host, i.agi_port + index) for i in self.instances if i.name in order]

    def serving_order(self, node: str) -> list[str]:
        """The instances that may serve `node`, in the order its Asterisk tries them."""
        return [i.name for i in self.instances if i.nodes is None or node in i.nodes]

    def me(self) -> InstanceSettings:
        for i in self.instances:
            if i.name == self.instance:
                return i
        names = ", ".join(i.name for i in self.instances)
        if not self.instance:
            raise LookupError(f"cluster.instance is not set (set CCROUTER_INSTANCE to one of: "
                              f"{names})")  # fmt: skip
        raise LookupError(f"cluster.instance {self.instance!r} is not one of "
                          f"cluster.instances ({names})")  # fmt: skip


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def cluster_checks(data: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Cross-field rules of `asterisk:` and `cluster:` on the raw config (key path, message)."""
    asterisk = _dict(data.get("asterisk"))
    nodes = [n.get("name") for n in _list(asterisk.get("nodes")) if isinstance(n, dict)]
    names = [n for n in nodes if isinstance(n, str)] or [str(asterisk.get("node", "pbx1"))]
    yield from duplicate_names(asterisk.get("nodes"), ("asterisk", "nodes"), "node")
    node = asterisk.get("node")
    if nodes and isinstance(node, str) and node not in names:
        yield ("asterisk", "node"), f"unknown node {node!r}; declared: {', '.join(names)}"
    cluster = _dict(data.get("cluster"))
    instances = _list(cluster.get("instances"))
    yield from duplicate_names(instances, ("cluster", "instances"), "instance")
    for i, inst in enumerate(instances):
        for j, node in enumerate(_list(_dict(inst).get("nodes"))):
            if isinstance(node, str) and node not in names:
                yield ("cluster", "instances", i, "nodes", j), (
                    f"unknown node {node!r}; declared: {', '.join(names)}")
    if instances:
        url = _dict(data.get("database")).get("url", "")
        if not (isinstance(url, str) and url.startswith("postgresql")):
            yield ("cluster", "instances"), (
                "several instances need one shared PostgreSQL database: set database.url to "
                "postgresql+asyncpg://... (or CCROUTER_DATABASE_URL)")
        instance = cluster.get("instance")
        known = [_dict(i).get("name") for i in instances]
        if isinstance(instance, str) and instance and instance not in known:
            yield ("cluster", "instance"), (
                f"unknown instance {instance!r}; declared: {', '.join(map(str, known))}")
    for i, op in enumerate(_list(data.get("operators"))):
        node = _dict(op).get("node")
        if isinstance(node, str) and node not in names:
            yield ("operators", i, "node"), f"unknown node {node!r}; declared: {', '.join(names)}"
