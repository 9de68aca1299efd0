"""Nodes and instances in the config: checks with file:line: key errors, each node's daemon
settings, the generated FastAGI failover, and `ccrouter run` refusing what it cannot be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccrouter.asterisk_conf import extensions_conf
from ccrouter.cli import main as cli_main
from ccrouter.cluster.model import my_nodes, node_settings
from ccrouter.config import ConfigInvalid, Settings, load_settings
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "ccrouter.yaml"
PG = "postgresql+asyncpg://ccrouter@db.example/ccrouter"


def write(tmp_path: Path, **over: Any) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data.update(over)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def nodes() -> dict[str, Any]:
    return {"nodes": [{"name": "n1", "ami": {"host": "10.0.0.11"}},
                      {"name": "n2", "ami": {"host": "10.0.0.12", "port": 5039}}]}  # fmt: skip


def cluster(**over: Any) -> dict[str, Any]:
    return {"instances": [{"name": "a", "host": "10.0.1.1", "agi_port": 4573, "http_port": 8080},
                          {"name": "b", "host": "10.0.1.2"},
                          {"name": "c", "host": "10.0.1.3", "nodes": ["n2"]}], **over}  # fmt: skip


def settings(tmp_path: Path, instance: str = "a") -> Settings:
    path = write(tmp_path, asterisk=nodes(), cluster=cluster(instance=instance),
                 database={"url": PG})  # fmt: skip
    return load_settings(path, environ={"CCROUTER_AMI_SECRET": "s3cret"})


def test_each_node_gets_its_ami_over_the_top_level_and_its_own_ports(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.asterisk.names() == ["n1", "n2"] and s.asterisk.node == "n1"
    n2 = node_settings(s, "n2")
    assert (n2.ami.host, n2.ami.port, n2.ami.secret, n2.ami.username) == (
        "10.0.0.12", 5039, "s3cret", s.ami.username)  # the secret said once, for every node
    assert (n2.agi.host, n2.agi.port, n2.http.port) == ("10.0.1.1", 4574, 8081)
    assert n2.asterisk.node == "n2" and not n2.asterisk.owns_unnamed
    assert node_settings(s, "n1").asterisk.owns_unnamed
    assert my_nodes(s) == ["n1", "n2"] and my_nodes(settings(tmp_path, "c")) == ["n2"]


def test_operators_sit_on_their_node(tmp_path: Path) -> None:
    s = settings(tmp_path)
    ops = [op.model_copy(update={"node": "n2"}) if op.id == "op1001" else op
           for op in s.operators]  # fmt: skip
    s = s.model_copy(update={"operators": ops})
    assert "op1001" not in {op.id for op in node_settings(s, "n1").operators}
    assert "op1001" in {op.id for op in node_settings(s, "n2").operators}
    assert len(node_settings(s, "n1").operators) == len(s.operators) - 1  # the rest: everywhere


@pytest.mark.parametrize(("over", "message"), [
    ({"cluster": cluster(), "database": {"url": "sqlite+aiosqlite:///x.db"}},
     "cluster.instances: several instances need one shared PostgreSQL database"),
    ({"cluster": cluster(instances=[{"name": "a", "nodes": ["n9"]}]), "database": {"url": PG}},
     "cluster.instances[0].nodes[0]: unknown node 'n9'; declared: n1, n2"),
    ({"cluster": cluster(instance="z"), "database": {"url": PG}},
     "cluster.instance: unknown instance 'z'; declared: a, b, c"),
    ({"cluster": cluster(instances=[{"name": "a"}, {"name": "a"}]), "database": {"url": PG}},
     "cluster.instances[1].name: duplicate instance 'a' (first: instances[0])"),
    ({"asterisk": {"nodes": [{"name": "n1"}, {"name": "n1"}]}},
     "asterisk.nodes[1].name: duplicate node 'n1' (first: nodes[0])"),
    ({"asterisk": {"node": "n3", **nodes()}}, "asterisk.node: unknown node 'n3'; declared: n1, n2"),
    ({"asterisk": {"nodes": [{"name": "N 1"}]}}, "asterisk.nodes[0].name"),
])  # fmt: skip
def test_bad_cluster_config_is_named_with_its_line(tmp_path: Path, over: dict[str, Any],
                                                   message: str) -> None:  # fmt: skip
    data = {"asterisk": nodes(), **over}
    with pytest.raises(ConfigInvalid) as info:
        load_settings(write(tmp_path, **data), environ={})
    text = str(info.value)
    assert message in text and "cluster.yaml:" in text, text


def test_the_dialplan_fails_over_through_the_instances_that_may_serve_the_node(
    tmp_path: Path,
) -> None:
    s = settings(tmp_path)
    for node, port, hosts in (("n1", 4573, ["10.0.1.1", "10.0.1.2"]),
                              ("n2", 4574, ["10.0.1.1", "10.0.1.2", "10.0.1.3"])):  # fmt: skip
        text = extensions_conf(s.model_copy(update={
            "asterisk": s.asterisk.model_copy(update={"node": node})}))  # fmt: skip
        sub = text[text.index("[ccrouter-agi]"):]
        tried = [line for line in sub.splitlines() if ",AGI(" in line]
        assert tried == [f" same => n,AGI(agi://{h}:{port}/${{ARG1}},${{ARG2}},${{ARG3}},"
                         "${ARG4},${ARG5})" for h in hosts] * 2  # fmt: skip
        # two rounds; each attempt: clear the send-on flag, AGI(), done unless refused or sent
        # on (round 2: an instance not serving the node holds the call until it does)
        steps = [line.split(",", 1)[1].split("(", 1)[0] for line in sub.splitlines()[2:-1]]
        assert steps == (["Set"] + ["Set", "AGI", "GotoIf"] * len(hosts)) * 2
        assert sub.count(" same => n,Set(CCROUTER_AGI_NEXT=)\n") == 2 * len(hosts)
        assert sub.count(" same => n,Set(CCROUTER_AGI_ROUND=2)\n") == 1
        assert sub.count('GotoIf($["${AGISTATUS}" != "FAILURE" & "${CCROUTER_AGI_NEXT}" = ""]'
                         "?done)") == 2 * len(hosts)  # fmt: skip
        assert "Gosub(ccrouter-agi,s,1(ivr,did=${EXTEN}))" in text  # the example has menus
        assert "Gosub(ccrouter-agi,s,1(ping))" in text
        assert "agi://" not in text.replace(sub, "").split("[ccrouter-inbound]")[1]


def test_dialplan_node_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, asterisk=nodes(), cluster=cluster(), database={"url": PG})
    assert cli_main(["dialplan", "--config", str(path), "--node", "n2"]) == 0
    assert "ccrouter AGI ${ARG1} node n2" in capsys.readouterr().out
    assert cli_main(["dialplan", "--config", str(path), "--node", "n9"]) == 2
    assert "unknown node 'n9'; declared: n1, n2" in capsys.readouterr().err


def test_run_without_knowing_which_instance_it_is_exits_with_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path, asterisk=nodes(), cluster=cluster(), database={"url": PG})
    done = subprocess.run([sys.executable, "-m", "ccrouter", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "CCROUTER_AMI_SECRET": "x"})  # fmt: skip
    assert done.returncode == 1
    assert "cluster.instance is not set (set CCROUTER_INSTANCE to one of: a, b, c)" in done.stderr


