"""Config loading: every error names file, line and key; defaults < file < environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrouter.config import (
    ENV_FILE,
    ConfigError,
    ConfigInvalid,
    Settings,
    check_settings,
    dotted,
    load_settings,
    resolve_sqlite_url,
)

ROOT = Path(__file__).resolve().parents[1]

# Line numbers matter: the cases below point into this text.
BASE = """\
languages: [ru, uz]
products:
  wallet: Wallet
  terminal: Terminal
targets:
  - name: wallet-ru
    product: wallet
    language: ru
  - name: terminal-uz
    product: terminal
    language: uz
routing:
  default_language: ru
  default_product: wallet
  default_target: wallet-ru
  did:
    "100": wallet
operators:
  - id: op1
    name: One
    interface: PJSIP/1001
    skills: {ru: 90, wallet: 80}
"""


def write(tmp_path: Path, text: str, name: str = "ccrouter.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def only_error(path: Path, environ: dict[str, str] | None = None) -> ConfigError:
    errors = check_settings(path, environ or {})
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def test_base_config_is_valid(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, BASE), {})
    assert [t.name for t in settings.targets] == ["wallet-ru", "terminal-uz"]
    assert settings.operators[0].skills == {"ru": 90, "wallet": 80}
    assert settings.routing.did == {"100": "wallet"}
    assert settings.routing.fallback_queue == "wallet-ru"  # the default target's queue
    assert settings.ami.port == 5038  # default


CASES = [
    # (id, yaml text, line, key, part of the message)
    ("unknown-key", BASE + "ami:\n  hots: pbx\n", 24, "ami.hots", "did you mean 'host'"),
    ("unknown-top", edit("operators:", "operator:"), 18, "operator", "unknown key"),
    ("duplicate-key", edit("  terminal: Terminal\n", "  terminal: T\n  terminal: T2\n"), 5,
     "products.terminal", "duplicate key (first defined on line 4)"),
    ("wrong-type", BASE + "ami:\n  port: five\n", 24, "ami.port", "valid integer"),
    ("wrong-type-list", edit("[ru, uz]", "ru"), 1, "languages", "valid list"),
    ("out-of-range", BASE + "agi:\n  port: 70000\n", 24, "agi.port", "less than or equal"),
    ("missing-key", edit("  default_target: wallet-ru\n", ""), 12, "routing.default_target",
     "required"),
    ("target-product", edit("    product: terminal\n", "    product: termnal\n"), 10,
     "targets[1].product", "unknown product 'termnal'"),
    ("target-language", edit("    language: uz\n", "    language: kk\n"), 11,
     "targets[1].language", "unknown language 'kk'"),
    ("target-name-dup", edit("  - name: terminal-uz\n", "  - name: wallet-ru\n"), 9,
     "targets[1].name", "duplicate target name 'wallet-ru'"),
    ("queue-dup", edit("    language: uz\n", "    language: uz\n    queue: wallet-ru\n"), 12,
     "targets[1].queue", "duplicate queue name 'wallet-ru'"),
    ("product-language-dup",
     edit("    product: terminal\n    language: uz\n", "    product: wallet\n    language: ru\n"),
     9, "targets[1]", "a second target for wallet x ru"),
    ("default-language", edit("default_language: ru", "default_language: en"), 13,
     "routing.default_language", "unknown language 'en'"),
    ("default-product", edit("default_product: wallet", "default_product: cards"), 14,
     "routing.default_product", "unknown product 'cards'"),
    ("default-target", edit("default_target: wallet-ru", "default_target: nowhere"), 15,
     "routing.default_target", "unknown target 'nowhere'"),
    ("did-product", edit('"100": wallet', '"100": cards'), 17, "routing.did.100",
     "unknown product 'cards'"),
    ("operator-id-dup", BASE + "  - {id: op1, name: Two, interface: PJSIP/1002}\n", 23,
     "operators[1].id", "duplicate operator id 'op1'"),
    ("operator-interface-dup", BASE + "  - {id: op2, name: Two, interface: PJSIP/1001}\n", 23,
     "operators[1].interface", "duplicate operator interface 'PJSIP/1001'"),
    ("skill-unknown", edit("{ru: 90, wallet: 80}", "{ru: 90, fr: 80}"), 22,
     "operators[0].skills.fr", "unknown skill 'fr'"),
    ("skill-too-high", edit("{ru: 90, wallet: 80}", "{ru: 101}"), 22,
     "operators[0].skills.ru", "less than or equal to 100"),
    ("skill-negative", edit("{ru: 90, wallet: 80}", "{ru: -1}"), 22,
     "operators[0].skills.ru", "greater than or equal to 0"),
    ("interface-format", edit("PJSIP/1001", "PJSIP 1001"), 21, "operators[0].interface",
     "should match pattern"),
    ("number-for-text", edit("language: uz", "language: 7"), 11, "targets[1].language",
     "quote it in YAML"),
    ("reconnect-order", BASE + "ami:\n  reconnect_min_s: 60\n", 24, "ami.reconnect_min_s",
     "must not exceed reconnect_max_s"),
    ("language-dup", edit("[ru, uz]", "[ru, uz, ru]"), 1, "languages[2]",
     "duplicate language 'ru'"),
    ("reserved-queue-name", edit("  - name: terminal-uz\n", "  - name: general\n"), 9,
     "targets[1].name", "[general] is app_queue's settings section"),
    ("reserved-fallback-queue",
     edit('    "100": wallet\n', '    "100": wallet\n  fallback_queue: general\n'), 18,
     "routing.fallback_queue", "cannot name a queue"),
    ("merge-key", BASE + "base: &b {port: 1}\nami:\n  <<: *b\n", 25, "ami",
     "merge keys"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "key", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_error_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    path = write(tmp_path, text)
    errors = check_settings(path, {})
    if key == "ami" and message == "merge keys":  # `base` is an unknown key as well
        errors = [e for e in errors if e.key != "base"]
    assert len(errors) == 1, "\n".join(map(str, errors))
    (error,) = errors
    assert (error.file, error.line, error.key) == (str(path), line, key), str(error)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, edit("    product: wallet\n", "    product: [wallet\n"))
    error = only_error(path)
    assert error.file == str(path)
    assert error.line in (7, 8)  # PyYAML reports where it noticed: the next line
    assert error.key == ""
    assert error.message.startswith("YAML syntax error")
    assert str(error) == f"{path}:{error.line}: {error.message}"


def test_unreadable_file(tmp_path: Path) -> None:
    error = only_error(tmp_path / "nope.yaml")
    assert (error.line, error.key) == (0, "")
    assert "cannot read the config file" in error.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    error = only_error(write(tmp_path, "- ru\n- uz\n"))
    assert error.line == 1
    assert "mapping of sections" in error.message


def test_empty_file_reports_the_required_sections(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    errors = check_settings(path, {})
    assert {(e.line, e.key) for e in errors} == {
        (1, "languages"), (1, "products"), (1, "targets"), (1, "routing")
    }  # fmt: skip
    assert all(e.message == "required key is missing" for e in errors)


def test_all_errors_reported_at_once_and_raised(tmp_path: Path) -> None:
    text = edit("default_language: ru", "default_language: en") + "ami:\n  port: x\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigInvalid) as info:
        load_settings(path, {})
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}:13: routing.default_language: unknown language 'en'; declared: ru, uz",
        f"{path}:24: ami.port: Input should be a valid integer, unable to parse string as an "
        "integer (got 'x')",
    ]
    assert len(info.value.errors) == 2


def test_environment_overrides_file_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "ami:\n  host: pbx.example\n  port: 5039\n")
    env = {
        "CCROUTER_AMI_PORT": "6000",
        "CCROUTER_AMI_SECRET": "s3cret",
        "CCROUTER_HTTP_PORT": "0",
        "CCROUTER_LOG_FORMAT": "console",
        "UNRELATED": "x",
    }
    settings = load_settings(path, env)
    assert settings.ami.host == "pbx.example"  # file beats default
    assert settings.ami.port == 6000  # environment beats file
    assert settings.ami.secret == "s3cret"
    assert settings.http.port == 0  # section absent from the file
    assert settings.log.format == "console"
    assert settings.agi.port == 4573  # default


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    error = only_error(path, {"CCROUTER_AGI_PORT": "forty", "CCROUTER_AMI_SECRET": "x"})
    assert (error.file, error.line, error.key) == (ENV_FILE, 0, "CCROUTER_AGI_PORT")
    assert "valid integer" in error.message and "agi.port" in error.message
    assert "'forty'" in error.message
    error = only_error(path, {"CCROUTER_LOG_LEVEL": "loud"})
    assert error.key == "CCROUTER_LOG_LEVEL"
    assert str(error).startswith("environment:0: CCROUTER_LOG_LEVEL: ")


def test_secrets_are_not_echoed_in_errors(tmp_path: Path) -> None:
    error = only_error(write(tmp_path, BASE + "ami:\n  secret: [hunter2]\n"))
    assert error.key == "ami.secret"
    assert "hunter2" not in str(error)


def test_relative_sqlite_path_resolves_against_the_config_dir(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    text = BASE + "database:\n  url: sqlite+aiosqlite:///../data/cc.db\n"
    settings = load_settings(write(sub, text), {})
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/data/cc.db"
    default = load_settings(write(sub, BASE, "other.yaml"), {})
    assert default.database.url == f"sqlite+aiosqlite:///{sub.resolve()}/var/ccrouter.db"
    # a path from the environment is taken as given (relative to the working directory)
    env = {"CCROUTER_DATABASE_URL": "sqlite+aiosqlite:///here.db"}
    assert load_settings(write(sub, text), env).database.url == "sqlite+aiosqlite:///here.db"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:////base/x.db"),
        ("sqlite:///../x.db?mode=ro", "sqlite:////x.db?mode=ro"),
        ("sqlite+aiosqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("sqlite+aiosqlite://", "sqlite+aiosqlite://"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_resolve_sqlite_url(url: str, expected: str) -> None:
    assert resolve_sqlite_url(url, Path("/base")) == expected


def test_dotted_paths() -> None:
    assert dotted(("targets", 2, "language")) == "targets[2].language"
    assert dotted(("operators", 0, "skills", "ru")) == "operators[0].skills.ru"
    assert dotted(()) == ""


def test_example_config_loads() -> None:
    settings = load_settings(ROOT / "config" / "ccrouter.yaml", {})
    assert isinstance(settings, Settings)
    assert set(settings.products) >= {"wallet", "terminal"}
    assert settings.languages == ["ru", "uz", "tg"]
    assert len(settings.operators) == 6
    assert all(op.interface.startswith("PJSIP/") for op in settings.operators)
    names = {t.name for t in settings.targets}
    assert {"wallet-ru", "wallet-uz", "wallet-tg", "terminal-ru", "terminal-uz", "general"} <= names
    assert settings.routing.default_target == "general"
    assert settings.ami.username == "ccrouter" and settings.ami.secret == ""
    assert settings.database.url == f"sqlite+aiosqlite:///{ROOT}/var/ccrouter.db"
    secret = load_settings(ROOT / "config" / "ccrouter.yaml", {"CCROUTER_AMI_SECRET": "lab"})
    assert secret.ami.secret == "lab"


def test_unsafe_yaml_tags_and_recursive_aliases_are_errors(tmp_path: Path) -> None:
    error = only_error(write(tmp_path, BASE + "ami:\n  host: !!python/name:os.system ''\n"))
    assert (error.line, error.key) == (24, "ami.host")
    assert "bad YAML value" in error.message
    errors = check_settings(write(tmp_path, BASE + "extra: &a [1, *a]\n"), {})
    assert any(e.key == "extra[1]" and "recursive YAML alias" in e.message for e in errors)
