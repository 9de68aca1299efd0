"""`ccrouter check` on the caller journey: one failing config per error kind, with file, line
and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrouter.config import check_settings, load_settings
from ccrouter.ivr.spec import AccountTable, ivr_spec

BASE = """\
languages: [ru, uz]
products: {wallet: Wallet, general: General}
targets:
  - {name: wallet-ru, product: wallet, language: ru}
  - {name: general, product: general, language: ru, queue: general-line}
routing: {default_language: ru, default_product: general, default_target: general}
hours:
  wallet:
    timezone: Asia/Tashkent
    weekly: {mon: ["09:00-18:00"]}
ivr:
  start: lang
  language_menu: lang
  menus:
    lang:
      prompts: [ccrouter/lang]
      options:
        "1": {language: ru, next: main}
        "2": {language: uz, next: main}
    main:
      prompts: [ccrouter/main]
      options:
        "1": {product: wallet}
        "0": {target: general}
        "*": back
"""


def errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return [str(e).replace(str(path), "c.yaml") for e in check_settings(path, environ={})]


def test_the_base_is_valid_and_builds_a_spec(tmp_path: Path) -> None:
    assert errors(tmp_path, BASE) == []
    (tmp_path / "c.yaml").write_text(BASE)
    spec = ivr_spec(load_settings(tmp_path / "c.yaml", environ={}))
    assert spec.start == "lang" and set(spec.menus) == {"lang", "main"}
    assert spec.general_target == "general" and not spec.hours["wallet"].always_open


def test_the_example_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    assert check_settings(root / "config" / "ccrouter.yaml", environ={}) == []


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('"1": {product: wallet}', '"1": {menu: nowhere}',
     "c.yaml:23: ivr.menus.main.options.1.menu: unknown menu 'nowhere'; declared: lang, main"),
    ('"0": {target: general}', '"0": {target: billing}',
     "c.yaml:24: ivr.menus.main.options.0.target: unknown target 'billing'"),
    ('"2": {language: uz, next: main}', '"2": {language: kk, next: main}',
     "c.yaml:19: ivr.menus.lang.options.2.language: unknown language 'kk'; declared: ru, uz"),
    ('"1": {product: wallet}', '"1": {product: wallet, target: general}',
     "c.yaml:23: ivr.menus.main.options.1: an option needs exactly one action"),
    ('"*": back', '"**": back', "c.yaml:25: ivr.menus.main.options.**: '**' is not one DTMF key"),
    ('"*": back', '"1": back', "c.yaml:25: ivr.menus.main.options.1: duplicate key (first defined"
                               " on line 23)"),
    ('"*": back', '"*": jump', "c.yaml:25: ivr.menus.main.options.*: unknown action 'jump'"),
    ("start: lang", "start: menu1", "c.yaml:12: ivr.start: unknown menu 'menu1'"),
    ('"2": {language: uz, next: main}', '"2": {language: uz, next: nope}',
     "c.yaml:19: ivr.menus.lang.options.2.next: unknown menu 'nope'"),
    ('weekly: {mon: ["09:00-18:00"]}', 'weekly: {mon: ["09:00-13:00", "12:00-18:00"]}',
     "c.yaml:10: hours.wallet.weekly.mon: 09:00-13:00 overlaps 12:00-18:00"),
    ('weekly: {mon: ["09:00-18:00"]}', 'weekly: {mon: ["9-18"]}',
     "c.yaml:10: hours.wallet.weekly.mon[0]: '9-18' is not HH:MM-HH:MM"),
    ('weekly: {mon: ["09:00-18:00"]}', 'weekly: {mon: ["18:00-09:00"]}',
     "c.yaml:10: hours.wallet.weekly.mon[0]: '18:00-09:00': the end must be after the start"),
    ("timezone: Asia/Tashkent", "timezone: Mars/Base",
     "c.yaml:9: hours.wallet.timezone: unknown timezone 'Mars/Base'"),
    ("hours:\n  wallet:", "hours:\n  billing:", "c.yaml:8: hours.billing: unknown product"),
    ('weekly: {mon: ["09:00-18:00"]}', 'weekly: {monday: ["09:00-18:00"]}',
     "c.yaml:10: hours.wallet.weekly.monday: unknown weekday"),
])  # fmt: skip
def test_each_error_kind(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert BASE.count(old) == 1
    found = errors(tmp_path, BASE.replace(old, new))
    assert any(e.startswith(expected) for e in found), found


def test_unreachable_menu(tmp_path: Path) -> None:
    text = BASE + "    lost:\n      prompts: [ccrouter/lost]\n      options: {\"1\": route}\n"
    assert errors(tmp_path, text) == [
        "c.yaml:26: ivr.menus.lost: unreachable: no menu or start leads here"]


def test_loop_with_no_exit(tmp_path: Path) -> None:
    text = BASE.replace('"0": {target: general}', '"0": {menu: lang}').replace(
        '"1": {product: wallet}', '"1": {product: wallet, next: lang}').replace(
        "    main:\n      prompts: [ccrouter/main]\n",
        "    main:\n      prompts: [ccrouter/main]\n      default: {menu: lang}\n").replace(
        "    lang:\n      prompts: [ccrouter/lang]\n",
        "    lang:\n      prompts: [ccrouter/lang]\n      default: {menu: main}\n")
    found = errors(tmp_path, text)
    assert any("ivr.menus.lang: a loop with no exit" in e for e in found), found
    assert any("ivr.menus.main: a loop with no exit" in e for e in found), found


def test_missing_prompts_with_a_sounds_dir(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    for lang in ("ru", "uz"):
        (sounds / lang / "ccrouter").mkdir(parents=True)
        (sounds / lang / "ccrouter" / "lang.wav").write_bytes(b"")
    (sounds / "ccrouter").mkdir()
    (sounds / "ccrouter" / "main.gsm").write_bytes(b"")  # language-neutral is fine too
    text = BASE.replace("ivr:\n", f"ivr:\n  sounds_dir: {sounds}\n")
    assert errors(tmp_path, text) == []
    (sounds / "uz" / "ccrouter" / "lang.wav").unlink()
    assert errors(tmp_path, text) == [
        "c.yaml:17: ivr.menus.lang.prompts[0]: prompt 'ccrouter/lang' not found for: uz (tried "
        f"{sounds}/uz/ccrouter/lang.*, {sounds}/ccrouter/lang.*, {sounds}/en/ccrouter/lang.*)"]


def test_voicemail_out_of_hours_needs_a_mailbox(tmp_path: Path) -> None:
    text = BASE.replace("ivr:\n", "ivr:\n  out_of_hours: {then: voicemail}\n")
    assert errors(tmp_path, text) == [
        "c.yaml:12: ivr.out_of_hours.mailbox: required when then: voicemail"]


def test_a_lines_own_out_of_hours_is_checked_and_reaches_the_spec(tmp_path: Path) -> None:
    line = '    weekly: {mon: ["09:00-18:00"]}\n'
    bad = BASE.replace(line, line + "    out_of_hours: {then: voicemail}\n")
    assert errors(tmp_path, bad) == [
        "c.yaml:11: hours.wallet.out_of_hours.mailbox: required when then: voicemail"]
    good = BASE.replace(line, line + "    out_of_hours: {prompt: ccrouter/wallet-closed, "
                        "then: voicemail, mailbox: 300@default}\n")  # fmt: skip
    assert errors(tmp_path, good) == []
    spec = ivr_spec(load_settings(tmp_path / "c.yaml", environ={}))
    assert spec.line_out_of_hours["wallet"].mailbox == "300@default"
    assert spec.out_of_hours_for("general") == spec.out_of_hours


def test_account_table_longest_prefix() -> None:
    table = AccountTable({"4": "wallet", "40": "terminal"})
    assert table.product("4012") == "terminal"
    assert table.product("4112") == "wallet"
    assert table.product("5") is None
