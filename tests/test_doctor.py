"""`ccrouter doctor` against the simulator loaded with the generated files: every check
passes; each injected fault (wrong secret, no Filter permission, no channelvars, the generated
includes not loaded, FastAGI unreachable, an operator's device unknown) gives a fail line that
names the fix, and the command exits 1. Real sockets throughout: the simulator's AMI, its
FastAGI client calling the doctor's own `ping` listener (or a closed port)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccrouter import dialplan as dp
from ccrouter.asterisk_conf import CHANNELVARS, extensions_conf, queuerules_conf, queues_conf
from ccrouter.asterisk_conf.manager import WRITE_CLASSES
from ccrouter.config import Settings, load_settings
from ccrouter.doctor.checks import Doctor
from ccrouter.doctor.model import Check, exit_code, shown_steps
from ccrouter.pbx.agi.ping import ping
from ccrouter.pbx.agi.server import AgiServer
from ccrouter.sim import PbxSimulator
from ccrouter.sim.model import SimOperator

CONFIG = Path(__file__).resolve().parent.parent / "config" / "ccrouter.yaml"
SECRET = "doctor-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _settings(ami_port: int, agi_port: int, secret: str = SECRET) -> Settings:
    base = load_settings(CONFIG)
    return base.model_copy(update={
        "ami": base.ami.model_copy(update={"port": ami_port, "secret": secret}),
        "agi": base.agi.model_copy(update={"port": agi_port}),
    })


async def _sim(agi_port: int, *, extensions: bool = True) -> PbxSimulator:
    """A simulator loaded as an administrator would load the files `ccrouter dialplan` writes."""
    settings = _settings(0, agi_port)
    sim = PbxSimulator(agi_port=agi_port, secret=SECRET, channelvars=CHANNELVARS,
                       login_fail_delay_s=0.05)
    if extensions:
        sim.load_extensions(extensions_conf(settings))
        sim.load_queuerules(queuerules_conf(settings))
        sim.load_queues(queues_conf(settings))
    for op in settings.operators:
        sim.add_operator(SimOperator(op.state_interface or op.interface))
    await sim.start()
    return sim


@pytest.fixture
async def agi_port() -> AsyncIterator[int]:
    yield _free_port()


async def _doctor(sim: PbxSimulator, agi_port: int, secret: str = SECRET) -> list[Check]:
    return await Doctor(_settings(sim.ami_port, agi_port, secret), "ccrouter.yaml", 2.0).run()


def _failed(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if c.status == "fail"}


async def test_doctor_passes_against_the_simulator_loaded_with_the_generated_files(
        agi_port: int) -> None:
    sim = await _sim(agi_port)
    try:
        checks = await _doctor(sim, agi_port)
    finally:
        await sim.close()
    lines = "\n".join(c.line() for c in checks)
    assert all(c.status == "ok" for c in checks), lines
    names = {c.name for c in checks}
    assert {"ami login", "ami read classes", "ami event filter", "dialplan ccrouter-inbound",
            "dialplan ccrouter-doctor", "queues", "queue rules", "persistentmembers",
            "operator op1001", "fastagi", "channelvars", "clock"} <= names, lines
    assert next(c for c in checks if c.name == "fastagi").detail.endswith(
        "(the doctor's own listener)")
    assert exit_code(checks) == 0


async def test_wrong_secret_fails_with_asterisks_reason_and_the_fix(agi_port: int) -> None:
    sim = await _sim(agi_port)
    try:
        checks = await _doctor(sim, agi_port, secret="wrong")
    finally:
        await sim.close()
    (check,) = checks  # nothing else can be asked
    assert check.status == "fail" and "Authentication failed" in check.detail
    assert "CCROUTER_AMI_SECRET" in check.line() and exit_code(checks) == 1


async def test_no_filter_permission_fails_naming_the_write_class(agi_port: int) -> None:
    sim = await _sim(agi_port)
    sim.write_classes = frozenset({"call", "originate", "agent", "reporting", "command"})
    try:
        failed = _failed(await _doctor(sim, agi_port))
    finally:
        await sim.close()
    assert set(failed) == {"ami event filter"}, failed
    line = failed["ami event filter"].line()
    assert "Permission denied" in line and "`system` to `write =`" in line


async def test_the_generated_manager_user_gets_warnings_for_what_it_may_not_ask(
        agi_port: int) -> None:
    sim = await _sim(agi_port)
    sim.write_classes = frozenset(WRITE_CLASSES)  # manager_ccrouter.conf: no `command` class
    try:
        checks = await _doctor(sim, agi_port)
    finally:
        await sim.close()
    warned = {c.name: c for c in checks if c.status == "warn"}
    assert set(warned) == {"dialplan"} and "`write = ...,command`" in warned["dialplan"].fix
    assert exit_code(checks) == 0 and not _failed(checks)


async def test_missing_channelvars_fails_naming_the_manager_conf_line(agi_port: int) -> None:
    sim = await _sim(agi_port)
    sim.channelvars = ()
    try:
        failed = _failed(await _doctor(sim, agi_port))
    finally:
        await sim.close()
    assert set(failed) == {"channelvars"}, failed
    assert "`channelvars = CCROUTER_CARD` to manager.conf [general]" in failed["channelvars"].fix


async def test_includes_not_loaded_fail_naming_the_include(agi_port: int) -> None:
    sim = await _sim(agi_port, extensions=False)
    try:
        failed = _failed(await _doctor(sim, agi_port))
    finally:
        await sim.close()
    assert "#include extensions_ccrouter.conf" in failed["dialplan ccrouter-inbound"].fix
    assert "#include queues_ccrouter.conf" in failed["queues"].fix
    assert "#include queuerules_ccrouter.conf" in failed["queue rules"].fix
    assert "ccrouter-doctor" in failed["fastagi"].detail  # the test call cannot even start


async def test_a_changed_config_shows_the_loaded_dialplan_differs(agi_port: int) -> None:
    sim = await _sim(agi_port)
    settings = _settings(sim.ami_port, agi_port)
    changed = settings.model_copy(update={"agi": settings.agi.model_copy(update={"port": 4999})})
    try:
        checks = await Doctor(changed, "ccrouter.yaml", 2.0).run()
    finally:
        await sim.close()
    failed = _failed(checks)
    assert "differs from what `ccrouter dialplan` writes now" in \
        failed["dialplan ccrouter-inbound"].detail
    assert "ccrouter dialplan --config ccrouter.yaml" in failed["dialplan ccrouter-inbound"].fix


async def test_persistentmembers_yes_fails_naming_queues_conf(agi_port: int) -> None:
    sim = await _sim(agi_port)
    sim.persistentmembers = True
    try:
        failed = _failed(await _doctor(sim, agi_port))
    finally:
        await sim.close()
    assert set(failed) == {"persistentmembers"}, failed
    assert "`persistentmembers = no` in queues.conf [general]" in failed["persistentmembers"].fix


async def test_the_running_daemons_ping_script_answers_when_it_holds_the_port(
        agi_port: int) -> None:
    settings = _settings(0, agi_port)
    daemon = AgiServer({dp.SCRIPT_PING: ping}, settings.agi)  # what `ccrouter run` registers
    await daemon.start()
    sim = await _sim(agi_port)
    try:
        checks = await _doctor(sim, agi_port)
    finally:
        await sim.close()
        await daemon.close()
    fastagi = next(c for c in checks if c.name == "fastagi")
    assert fastagi.status == "ok" and fastagi.detail.endswith("(the running ccrouter)")
    assert daemon.stats.ok == 1  # the daemon's server, not the doctor's, ran `ping`


async def test_fastagi_unreachable_fails_naming_agi_host(agi_port: int) -> None:
    sim = await _sim(agi_port)
    sim.agi_port = _free_port()  # Asterisk dials a port nobody listens on
    try:
        failed = _failed(await _doctor(sim, agi_port))
    finally:
        await sim.close()
    assert set(failed) == {"fastagi"}, failed
    assert "AGISTATUS=FAILURE" in failed["fastagi"].detail
    assert "agi.host/agi.port" in failed["fastagi"].fix


async def test_unknown_operator_interface_fails_naming_the_operator(agi_port: int) -> None:
    sim = await _sim(agi_port)
    sim.forget_device("PJSIP/1003")
    try:
        failed = _failed(await _doctor(sim, agi_port))
    finally:
        await sim.close()
    (name,) = failed
    assert "PJSIP/1003 is unknown to Asterisk" in failed[name].detail
    assert "pjsip.conf" in failed[name].fix and "operators[" in failed[name].fix


async def test_dialplan_show_is_read_as_asterisk_prints_it() -> None:
    src = "[extensions_ccrouter.conf:{}]"
    output = [  # main/pbx.c show_dialplan_helper, widths %-17s %-45s
        "[ Context 'ccrouter-doctor' created by 'pbx_config' ]",
        "  's' =>            1. NoOp(ccrouter doctor test call)           " + src.format(9),
        "                    2. Set(CCROUTER_CARD=doctor)                 " + src.format(10),
        "     [done]         3. Hangup()                                  " + src.format(11),
        "",
        "-= 1 extension (3 priorities) in 1 context. =-",
    ]  # fmt: skip
    assert shown_steps(output) == [("s", 1, "NoOp(ccrouter doctor test call)"),
                                   ("s", 2, "Set(CCROUTER_CARD=doctor)"), ("s", 3, "Hangup()")]
    assert shown_steps(["There is no existence of 'x' context"]) is None


async def test_the_command_prints_fail_lines_and_exits_1(agi_port: int, tmp_path: Path) -> None:
    sim = await _sim(agi_port)
    sim.channelvars = ()
    env = {**os.environ, "CCROUTER_AMI_PORT": str(sim.ami_port), "CCROUTER_AMI_SECRET": SECRET,
           "CCROUTER_AGI_PORT": str(agi_port)}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ccrouter", "doctor", "--config", str(CONFIG),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 40)
    finally:
        await sim.close()
    text = out.decode()
    assert proc.returncode == 1, (text, err.decode())
    assert "ok   fastagi: Asterisk reached agi://127.0.0.1:" in text
    assert "fail channelvars:" in text and "fix: add `channelvars = CCROUTER_CARD`" in text
    assert text.rstrip().endswith("checks, 1 failed")
