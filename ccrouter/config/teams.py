"""The `teams:` config section: groups of operators, each with its supervisors.

A supervisor token scoped to teams (`ccrouter token create --role supervisor --team NAME`, or
a token whose name a team lists under `supervisors`) sees and manages only the teams'
operators, their calls, cards and KPIs. Imported by `ccrouter.config.schema`; imports nothing
of ccrouter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ccrouter.config.names import KeyPath, duplicate_names

_NAME = r"^[A-Za-z0-9_.-]+$"


class Team(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=80, pattern=_NAME)
    operators: list[str] = Field(default_factory=list)
    """Members: operators[].id."""
    supervisors: list[str] = Field(default_factory=list)
    """Names of supervisor tokens (`ccrouter token create --name`) scoped to this team, in
    addition to the tokens created with `--team`."""


def team_checks(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """Team names are unique; members are declared operators (an operator may be in several
    teams); supervisors are non-empty names."""
    teams = data.get("teams")
    if not isinstance(teams, list):
        return
    ops = data.get("operators")
    ids = [o.get("id") for o in ops if isinstance(o, dict)] if isinstance(ops, list) else []
    yield from duplicate_names(teams, ("teams",), "team")
    for i, team in enumerate(teams):
        if not isinstance(team, dict):
            continue
        members = team.get("operators")
        for k, op in enumerate(members if isinstance(members, list) else []):
            if isinstance(op, str) and isinstance(ops, list) and op not in ids:
                known = ", ".join(str(x) for x in ids) or "(none)"
                yield ("teams", i, "operators", k), f"unknown operator {op!r}; declared: {known}"
        sups = team.get("supervisors")
        for k, sup in enumerate(sups if isinstance(sups, list) else []):
            if isinstance(sup, str) and not sup.strip():
                yield ("teams", i, "supervisors", k), "a supervisor token's name is not empty"
