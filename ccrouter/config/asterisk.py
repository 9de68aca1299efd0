"""The `ami:` and `asterisk:` config sections: how ccrouter reaches each Asterisk node.

One node is the short form: the top-level `ami:` and `asterisk.node` (its name, on every card).
With `asterisk.nodes`, each node names its own AMI connection (its keys laid over `ami:`).
Imported by `ccrouter.config.schema`; imports nothing of ccrouter.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

NODE_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"


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


class NodeSettings(_Model):
    name: str = Field(pattern=NODE_NAME)
    ami: AmiSettings = AmiSettings()
    """This node's AMI connection; keys not given come from the top-level `ami:`."""


class AsteriskSettings(_Model):
    node: str = Field(default="pbx1", pattern=NODE_NAME)
    """The name of the one node of the short form (the top-level `ami:`); cards record it."""
    nodes: list[NodeSettings] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _first_node_by_default(cls, data: Any) -> Any:
        """With `nodes` and no `node`: the first node (what `ccrouter dialplan` writes for)."""
        if isinstance(data, dict) and "node" not in data and isinstance(data.get("nodes"), list):
            first = next((n for n in data["nodes"] if isinstance(n, dict)), None)
            if first is not None and isinstance(first.get("name"), str):
                return {**data, "node": first["name"]}
        return data

    def names(self) -> list[str]:
        """Every node's name, in config order (the short form: `node`)."""
        return [n.name for n in self.nodes] or [self.node]

    def is_first(self, node: str) -> bool:
        """Rows from before rows named their node (cards, features' rows) are the first
        node's."""
        return node == self.names()[0]

    @property
    def owns_unnamed(self) -> bool:
        """This node (`node`) is the first: the unnamed rows are its."""
        return self.is_first(self.node)


def merge_node_ami(data: Any) -> Any:
    """The raw config with each `asterisk.nodes[].ami` laid over the top-level `ami:` (user,
    secret, timeouts said once)."""
    if not isinstance(data, dict) or not isinstance(data.get("asterisk"), dict):
        return data
    nodes, top = data["asterisk"].get("nodes"), data.get("ami")
    if not isinstance(nodes, list) or not isinstance(top, dict | None):
        return data
    merged = []
    for node in nodes:
        own = node.get("ami", {}) if isinstance(node, dict) else None
        if isinstance(own, dict):  # anything else is pydantic's error to report
            node = {**node, "ami": {**(top or {}), **own}}
        merged.append(node)
    return {**data, "asterisk": {**data["asterisk"], "nodes": merged}}
