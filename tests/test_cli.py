"""The `ccrouter` command line: check, dialplan, run, demo."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ccrouter.asterisk_conf import extensions_conf, manager_conf
from ccrouter.cli import build_parser, main
from ccrouter.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "ccrouter.yaml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CCROUTER_"):
            monkeypatch.delenv(name)


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCROUTER_")}
    return subprocess.run(
        [sys.executable, "-m", "ccrouter", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def broken(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "  default_target: general", "  default_target: nowhere"
    )
    assert "nowhere" in text
    path = tmp_path / "broken.yaml"
    path.write_text(text + "ami:\n  port: 1\n", encoding="utf-8")  # also a duplicate key
    return path


def test_check_broken_file_exits_1_and_prints_file_line_key(tmp_path: Path) -> None:
    path = broken(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    target_line = next(n for n, x in enumerate(lines, 1) if "default_target: nowhere" in x)
    proc = run_cli("check", str(path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    errors = proc.stderr.splitlines()
    assert f"{path}:{target_line}: routing.default_target: unknown target 'nowhere'" in errors[0]
    assert any(e.startswith(f"{path}:{len(lines) - 1}: ami: duplicate key") for e in errors)
    assert len(errors) == 2


def test_check_example_exits_0() -> None:
    proc = run_cli("check", "config/ccrouter.yaml")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "config/ccrouter.yaml: OK (6 targets, 6 operators)\n"


def test_check_defaults_to_ccrouter_config_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = broken(tmp_path)
    monkeypatch.setenv("CCROUTER_CONFIG", str(path))
    assert main(["check"]) == 1
    assert capsys.readouterr().err.startswith(f"{path}:")
    monkeypatch.delenv("CCROUTER_CONFIG")
    monkeypatch.chdir(ROOT)
    assert main(["check"]) == 0
    assert "config/ccrouter.yaml: OK" in capsys.readouterr().out


def test_check_reports_bad_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCROUTER_HTTP_PORT", "eighty")
    assert main(["check", str(EXAMPLE)]) == 1
    assert capsys.readouterr().err.startswith("environment:0: CCROUTER_HTTP_PORT: ")


def test_dialplan_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["dialplan", "--config", str(EXAMPLE), "--out", str(out)]) == 0
    settings = load_settings(EXAMPLE, {})
    assert (out / "extensions_ccrouter.conf").read_text() == extensions_conf(settings)
    assert (out / "manager_ccrouter.conf").read_text() == manager_conf("ccrouter")
    assert sorted(p.name for p in out.iterdir()) == [
        "extensions_ccrouter.conf", "manager_ccrouter.conf", "queuerules_ccrouter.conf",
        "queues_ccrouter.conf",
    ]  # fmt: skip
    capsys.readouterr()
    assert main(["dialplan", "--config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == extensions_conf(settings)


def test_dialplan_refuses_port_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8").replace("port: 4573", "port: 0"))
    assert main(["dialplan", "--config", str(path)]) == 2
    assert "agi.port is 0" in capsys.readouterr().err


def test_run_refuses_invalid_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[Settings] = []
    fake = types.ModuleType("ccrouter.app")
    fake.main = lambda settings: calls.append(settings) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ccrouter.app", fake)
    path = broken(tmp_path)
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "routing.default_target" in err
    assert "not starting" in err
    assert calls == []


def test_run_passes_settings_to_app(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Settings] = []
    fake = types.ModuleType("ccrouter.app")
    fake.main = lambda settings: calls.append(settings) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ccrouter.app", fake)
    monkeypatch.setenv("CCROUTER_AMI_SECRET", "from-env")
    assert main(["run", "--config", str(EXAMPLE)]) == 3
    (settings,) = calls
    assert settings.ami.secret == "from-env"
    assert len(settings.targets) == 6


def test_demo_passes_parsed_arguments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[argparse.Namespace] = []
    fake = types.ModuleType("ccrouter.demo")
    fake.main = lambda args: seen.append(args) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ccrouter.demo", fake)
    argv = ["demo", "--duration", "2.5", "--rate", "4", "--time-scale", "10"]
    assert main(argv) == 0
    (args,) = seen
    assert (args.duration, args.rate, args.time_scale) == (2.5, 4.0, 10.0)
    assert args.config == Path("config/ccrouter.yaml")
    with pytest.raises(SystemExit) as info:
        main(["demo", "--rate", "-1"])
    assert info.value.code == 2
    assert "must be > 0" in capsys.readouterr().err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: ccrouter" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["incident", "callback", "outbound", "token", "operator"])
def test_feature_commands_are_listed_alike_with_or_without_their_module(command: str) -> None:
    """Only the module of the command run is imported; the others are listed from cli.py's
    table, whose help lines must be the modules' own."""
    assert build_parser([command]).format_help() == build_parser(["check"]).format_help()
