"""`ccrouter import`: from a running PBX (the simulator over AMI) and from queues.conf files,
the written config passes `ccrouter check` and generates exactly the imported queues."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ccrouter.asterisk_conf import queues_conf
from ccrouter.config import Settings, load_settings
from ccrouter.config.sections import root_model
from ccrouter.importer.model import ImportedMember, ImportedQueue, starter_config
from ccrouter.importer.queues_conf import read_queues_conf
from ccrouter.importer.render import render
from ccrouter.routing.model.skills import desired_members
from ccrouter.routing.table import all_target_skills, configured_operators
from ccrouter.sim import PbxSimulator
from ccrouter.sim.testing import AmiClient

ROOT = Path(__file__).resolve().parents[1]
SECRET_VAR = "IMPORT_TEST_AMI_SECRET"

Queues = dict[str, tuple[str, dict[str, int]]]
"""queue -> (strategy, interface -> penalty)."""


async def ccrouter(cwd: Path, *args: str, secret: str = "lab-secret") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCROUTER_")}
    env |= {"PYTHONPATH": str(ROOT), SECRET_VAR: secret}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def generated(s: Settings) -> Queues:
    """What `ccrouter dialplan` and the membership sync make of a config: the queues of
    queues_ccrouter.conf with their strategies, the members ccrouter gives them."""
    text = queues_conf(s)
    out: Queues = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = ("", {})
        elif line.startswith("strategy = "):
            out[section] = (line.split(" = ", 1)[1], {})
    members = desired_members(configured_operators(s).values(), all_target_skills(s))
    for (queue, interface), m in members.items():
        out[queue][1][interface] = m.penalty
    return out


def imported(queues: list[ImportedQueue]) -> Queues:
    return {q.name: (q.strategy, {m.interface: m.penalty for m in q.members}) for q in queues}


async def queue_status(port: int) -> Queues:
    """The simulator's queues as a plain AMI client reads them."""
    ami = await AmiClient.connect(port)
    await ami.send("Login", Username="ccrouter", Secret="lab-secret", Events="off")
    assert (await ami.response())["Response"] == "Success"
    await ami.send("QueueStatus", ActionID="qs")
    items = await ami.until("QueueStatusComplete")
    out: Queues = {}
    for item in items:
        if item.get("Event") == "QueueParams":
            out[item["Queue"]] = (item["Strategy"], {})
        elif item.get("Event") == "QueueMember":
            out[item["Queue"]][1][item["Location"]] = int(item["Penalty"])
    ami.writer.close()
    return out


SIM_QUEUES = """
[wallet-ru]
strategy = rrmemory
[wallet-uz]
strategy = leastrecent
[terminal-ru]
strategy = leastrecent
[terminal-uz]
strategy = ringall
"""


async def test_import_over_ami_reproduces_the_simulators_queues(tmp_path: Path) -> None:
    sim = PbxSimulator(noise=False)
    await sim.start()
    try:
        sim.load_queues(SIM_QUEUES)
        # static members (queues.conf `member =>`) ...
        sim.add_member("wallet-ru", "PJSIP/1001", name="Dilnoza", penalty=0)
        sim.add_member("wallet-ru", "PJSIP/1002", name="Anna", penalty=10)
        # ... and dynamic ones, added over AMI as an operator's login would
        ami = await AmiClient.connect(sim.ami_port)
        await ami.send("Login", Username="ccrouter", Secret="lab-secret", Events="off")
        assert (await ami.response())["Response"] == "Success"
        for queue, iface, penalty, name in [
            ("wallet-uz", "PJSIP/1001", 20, "Dilnoza"), ("terminal-ru", "PJSIP/1003", 5, "Sergey"),
            ("terminal-uz", "PJSIP/1003", 30, "Sergey"), ("wallet-ru", "PJSIP/1003", 40, "Sergey"),
            ("wallet-uz", "PJSIP/1003", 40, "Sergey"), ("terminal-ru", "PJSIP/1002", 10, "Anna"),
        ]:  # fmt: skip
            await ami.send("QueueAdd", Queue=queue, Interface=iface, Penalty=str(penalty),
                           MemberName=name)  # fmt: skip
            assert (await ami.response())["Response"] == "Success"
        ami.writer.close()
        before = await queue_status(sim.ami_port)

        code, out, err = await ccrouter(
            tmp_path, "import", "--ami", f"127.0.0.1:{sim.ami_port}", "--user", "ccrouter",
            "--secret-env", SECRET_VAR, "--out", "ccrouter.yaml",
        )  # fmt: skip
        assert code == 0, err
        assert "4 targets, 3 operators" in out
    finally:
        await sim.close()
    code, out, err = await ccrouter(tmp_path, "check", "ccrouter.yaml")
    assert code == 0, err
    s = load_settings(tmp_path / "ccrouter.yaml")
    assert generated(s) == before
    # the names read as product x language, and the members fit that: shared skills
    assert sorted(s.products) == ["terminal", "wallet"] and s.languages == ["ru", "uz"]
    sergey = next(op for op in s.operators if op.interface == "PJSIP/1003")
    assert sergey.name == "Sergey" and sergey.id == "op1003"
    assert sergey.skills == {"terminal": 95, "ru": 95, "uz": 70, "wallet": 60}
    # wallet-ru's static members stay static in the generated file
    assert s.routing.fallback_static_members == ["PJSIP/1001", "PJSIP/1002"]
    assert "member => PJSIP/1002,10,Anna,PJSIP/1002" in queues_conf(s)
    text = (tmp_path / "ccrouter.yaml").read_text()
    assert "# keep the secret out of this file" in text and "lab-secret" not in text
    # dialplan runs on it too
    code, _, err = await ccrouter(tmp_path, "dialplan", "--config", "ccrouter.yaml",
                                  "--out", "dp")  # fmt: skip
    assert code == 0, err and (tmp_path / "dp" / "queues_ccrouter.conf").exists()


async def test_import_over_ami_with_a_wrong_secret_says_so(tmp_path: Path) -> None:
    sim = PbxSimulator(noise=False, login_fail_delay_s=0.05)
    await sim.start()
    try:
        code, _, err = await ccrouter(
            tmp_path, "import", "--ami", f"127.0.0.1:{sim.ami_port}", "--secret-env",
            SECRET_VAR, "--out", "x.yaml", secret="wrong",
        )  # fmt: skip
    finally:
        await sim.close()
    assert code == 1
    assert f"AMI 127.0.0.1:{sim.ami_port}: login as 'ccrouter' refused: Authentication failed" \
        in err  # fmt: skip
    assert not (tmp_path / "x.yaml").exists()


async def test_import_with_nothing_listening_or_an_unset_secret(tmp_path: Path) -> None:
    code, _, err = await ccrouter(tmp_path, "import", "--ami", "127.0.0.1:1", "--secret-env",
                                  SECRET_VAR, "--out", "x.yaml")  # fmt: skip
    assert code == 1 and "AMI 127.0.0.1:1: cannot connect" in err
    code, _, err = await ccrouter(tmp_path, "import", "--ami", "127.0.0.1:1", "--secret-env",
                                  "NO_SUCH_VAR_FOR_IMPORT", "--out", "x.yaml")  # fmt: skip
    assert code == 1 and "--secret-env NO_SUCH_VAR_FOR_IMPORT: the variable is not set" in err
    code, _, err = await ccrouter(tmp_path, "import", "--ami", "host:port", "--out", "x.yaml")
    assert code == 2 and "expected HOST:PORT" in err


QUEUES_CONF = """\
[general]
persistentmembers = yes

[sales-tpl](!)          ; a template: not a queue
strategy = linear
timeout = 20
member => PJSIP/2001,0,Olga   ; every queue built on it has Olga

[sales](sales-tpl)
member => PJSIP/2002,3,Ivan,PJSIP/2002

[support](sales-tpl)
strategy = rrmemory
member => PJSIP/2003,150,Max\\; the third
#include more.conf
"""

MORE_CONF = """\
[billing]
member => PJSIP/2002,7
[support](+)
member => PJSIP/2004,-3,Neg
"""


async def test_import_from_queues_conf_with_templates_and_includes(tmp_path: Path) -> None:
    (tmp_path / "queues.conf").write_text(QUEUES_CONF)
    (tmp_path / "more.conf").write_text(MORE_CONF)
    queues = read_queues_conf([tmp_path / "queues.conf"])
    assert imported(queues) == {
        "sales": ("linear", {"PJSIP/2001": 0, "PJSIP/2002": 3}),
        "support": ("rrmemory", {"PJSIP/2001": 0, "PJSIP/2003": 150, "PJSIP/2004": 0}),
        "billing": ("ringall", {"PJSIP/2002": 7}),
    }
    assert queues[1].members[1].name == "Max; the third"

    code, _, err = await ccrouter(tmp_path, "import", "--queues-conf", "queues.conf",
                                    "--out", "conf/ccrouter.yaml")  # fmt: skip
    assert code == 0, err
    assert "penalty 150 in support cannot be said with skill levels 1..100" in err
    code, _, err = await ccrouter(tmp_path, "check", "conf/ccrouter.yaml")
    assert code == 0, err
    s = load_settings(tmp_path / "conf" / "ccrouter.yaml")
    want = imported(queues)
    want["support"][1]["PJSIP/2003"] = 99  # clamped, as the warning said
    assert generated(s) == want
    assert s.routing.queues.ring_s == 20  # the queues' timeout
    # no language in the names: one product per queue, the language a marked guess
    assert sorted(s.products) == ["billing", "sales", "support"] and s.languages == ["en"]
    text = (tmp_path / "conf" / "ccrouter.yaml").read_text()
    assert "# guessed: sales, support, billing end in no language code" in text


async def test_import_refuses_an_unreadable_or_broken_queues_conf(tmp_path: Path) -> None:
    code, _, err = await ccrouter(tmp_path, "import", "--queues-conf", "missing.conf",
                                  "--out", "x.yaml")  # fmt: skip
    assert code == 1 and "missing.conf: cannot read: No such file or directory" in err
    (tmp_path / "bad.conf").write_text("[q](nosuch)\nmember => PJSIP/1\n")
    code, _, err = await ccrouter(tmp_path, "import", "--queues-conf", "bad.conf",
                                  "--out", "x.yaml")  # fmt: skip
    assert code == 1 and "bad.conf:1: [q] is built on 'nosuch', which is not defined" in err
    (tmp_path / "empty.conf").write_text("[general]\nautofill = yes\n")
    code, _, err = await ccrouter(tmp_path, "import", "--queues-conf", "empty.conf",
                                  "--out", "x.yaml")  # fmt: skip
    assert code == 1 and "no queue to import" in err
    (tmp_path / "x.yaml").write_text("mine")
    code, _, err = await ccrouter(tmp_path, "import", "--queues-conf", "empty.conf",
                                  "--out", "x.yaml")  # fmt: skip
    assert code == 1 and "x.yaml exists; pass --force" in err


_QUEUE_NAMES = ["wallet-ru", "wallet-uz", "terminal-ru", "sales", "billing_kk", "vip.en"]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(
    st.sampled_from(_QUEUE_NAMES),
    st.dictionaries(st.sampled_from([f"PJSIP/{n}" for n in range(1000, 1006)]),
                    st.integers(0, 99), max_size=5),
    min_size=1,
))  # fmt: skip
def test_any_membership_is_reproduced_exactly(queues: dict[str, dict[str, int]]) -> None:
    parsed = [ImportedQueue(q, "rrmemory", tuple(ImportedMember(i, penalty=p)
                                                 for i, p in members.items()))
              for q, members in queues.items()]  # fmt: skip
    starter = starter_config(parsed, source="test")
    data = yaml.safe_load(render(starter))
    assert data == starter.data  # the commented YAML reads back as the data
    s = root_model().model_validate(data)
    assert generated(s) == imported(parsed)
