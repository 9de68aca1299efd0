"""`ccrouter check` with `ivr.sounds_dir`: prompts are looked up as Asterisk's main/file.c does
(fileexists_core): the channel's language, that language without its `_` suffixes, no language,
then `en` — so a prompt only in `en/` plays for a Russian caller, as the real run showed
(`Playing 'ss-noservice.gsm' ... (language 'ru')` from sounds/en)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrouter.config import check_settings
from ccrouter.config.sounds import sound_file, sound_stems

CONFIG = """\
languages: [ru, uz]
products: {general: General}
targets:
  - {name: general, product: general, language: ru, queue: general-line}
routing: {default_language: ru, default_product: general, default_target: general}
ivr:
  sounds_dir: SOUNDS
  start: main
  greeting: [ccrouter/welcome]
  menus:
    main:
      prompts: [ss-noservice]
      options: {"1": route}
"""


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def check(tmp_path: Path, sounds: Path, text: str = CONFIG) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("SOUNDS", str(sounds)), encoding="utf-8")
    return [str(e).replace(str(path), "c.yaml") for e in check_settings(path, environ={})]


def test_prompts_only_in_the_default_language_directory_are_played(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    touch(sounds, "en/ss-noservice.gsm", "en/ccrouter/welcome.wav")
    assert check(tmp_path, sounds) == []


def test_a_prompt_found_nowhere_names_every_path_tried(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    touch(sounds, "en/ccrouter/welcome.wav", "ru/ss-noservice.ulaw")
    assert check(tmp_path, sounds) == [
        "c.yaml:12: ivr.menus.main.prompts[0]: prompt 'ss-noservice' not found for: uz (tried "
        f"{sounds}/uz/ss-noservice.*, {sounds}/ss-noservice.*, {sounds}/en/ss-noservice.*)"]
    (sounds / "ru" / "ss-noservice.ulaw").unlink()
    (found,) = check(tmp_path, sounds)
    assert found == (
        "c.yaml:12: ivr.menus.main.prompts[0]: prompt 'ss-noservice' not found for: ru, uz "
        f"(tried {sounds}/ru/ss-noservice.*, {sounds}/ss-noservice.*, "
        f"{sounds}/en/ss-noservice.*, {sounds}/uz/ss-noservice.*)")


def test_a_file_without_a_sound_format_does_not_count(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    touch(sounds, "en/ccrouter/welcome.wav", "en/ss-noservice.txt", "en/ss-noservice")
    assert [e.split(":")[2] for e in check(tmp_path, sounds)] == [" ivr.menus.main.prompts[0]"]
    touch(sounds, "en/ss-noservice.WAV")  # format wav49's files (main/file.c build_filename)
    assert check(tmp_path, sounds) == []


def test_the_lookup_order_is_asterisks(tmp_path: Path) -> None:
    root = tmp_path
    assert sound_stems(root, "digits/1", "ru") == [
        root / "ru/digits/1", root / "digits/1", root / "en/digits/1"]
    # dialect and style codes are cut one `_` at a time
    assert sound_stems(root, "x", "pt_BR_f") == [
        root / "pt_BR_f/x", root / "pt_BR/x", root / "pt/x", root / "x", root / "en/x"]
    # `en` itself (or a dialect of it) is not tried twice
    assert sound_stems(root, "x", "en") == [root / "en/x", root / "x"]
    assert sound_stems(root, "x", "en_GB") == [root / "en_GB/x", root / "en/x", root / "x"]
    # an absolute prompt keeps its directory, the language goes before the file name
    assert sound_stems(root, "/srv/ivr/hello", "uz") == [
        Path("/srv/ivr/uz/hello"), Path("/srv/ivr/hello"), Path("/srv/ivr/en/hello")]


@pytest.mark.parametrize(("files", "expected"), [
    (["ru/x.gsm", "x.wav", "en/x.wav"], "ru/x.gsm"),
    (["x.wav", "en/x.gsm"], "x.wav"),
    (["en/x.sln16"], "en/x.sln16"),
    (["uz/x.gsm"], None),
])  # fmt: skip
def test_the_first_place_that_has_the_file_wins(
    tmp_path: Path, files: list[str], expected: str | None
) -> None:
    touch(tmp_path, *files)
    found = sound_file(sound_stems(tmp_path, "x", "ru"))
    assert found == (None if expected is None else tmp_path / expected)


def test_an_absolute_prompt_is_checked_where_it_is(tmp_path: Path) -> None:
    sounds, own = tmp_path / "sounds", tmp_path / "own"
    touch(sounds, "en/ss-noservice.gsm", "en/ccrouter/welcome.wav")
    text = CONFIG.replace("greeting: [ccrouter/welcome]", f"greeting: [{own}/hello]")
    (found,) = check(tmp_path, sounds, text)
    assert found.startswith(f"c.yaml:9: ivr.greeting[0]: prompt '{own}/hello' not found for: "
                            f"ru, uz (tried {own}/ru/hello.*, {own}/hello.*, {own}/en/hello.*")
    touch(own, "uz/hello.gsm", "hello.gsm")
    assert check(tmp_path, sounds, text) == []
