"""Where Asterisk finds a prompt, and the `ivr.sounds_dir` check that every prompt can play.

`sound_stems` is main/file.c's lookup order (the channel's language, its shorter forms, no
language, then `en`); `sound_file` the first stem present in one of Asterisk's formats;
`sound_checks` the errors of prompts no configured language can play. Reads the file system
only; imports nothing of ccrouter but the config's key path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ccrouter.config.ivr import KeyPath

SOUND_EXTENSIONS = (
    "wav", "WAV", "gsm", "pcm", "ulaw", "ul", "mu", "ulw", "alaw", "al", "alw", "sln", "slin",
    "raw", "sln12", "sln16", "sln24", "sln32", "sln44", "sln48", "sln96", "sln192", "wav16",
    "g722", "g723", "g723sf", "g726-40", "g726-32", "g726-24", "g726-16", "g729", "g719",
    "ilbc", "siren7", "siren14", "spx", "spx16", "spx32", "ogg", "vox", "au",
)  # fmt: skip
"""The file extensions of the sound formats shipped with Asterisk (`.exts` of formats/*.c;
format wav49's files are `.WAV`, main/file.c's build_filename)."""
DEFAULT_SOUND_LANGUAGE = "en"
"""Asterisk's DEFAULT_LANGUAGE (include/asterisk.h): the last directory a prompt is looked in."""


def sound_stems(root: Path, prompt: str, language: str) -> list[Path]:
    """Where Asterisk looks for `prompt` on a channel of `language`, in order, without the
    format's extension: main/file.c's fileexists_core with asterisk.conf's default
    `languageprefix = yes`. The language, then the language cut at each last `_` (`pt_BR` ->
    `pt`), then no language, then the default language `en` unless already tried. A relative
    prompt is under `root` (`<root>/<lang>/<prompt>`); an absolute one keeps its path and gets
    the language before its file name (`/a/<lang>/b`)."""
    langs: list[str | None] = []
    lang = language
    while lang:
        langs.append(lang)
        lang = lang.rpartition("_")[0]
    langs.append(None)
    if DEFAULT_SOUND_LANGUAGE not in langs:
        langs.append(DEFAULT_SOUND_LANGUAGE)
    if prompt.startswith("/"):
        path = Path(prompt)
        return [path if x is None else path.parent / x / path.name for x in langs]
    return [root / prompt if x is None else root / x / prompt for x in langs]


def sound_file(stems: list[Path]) -> Path | None:
    """The first stem that exists in one of Asterisk's formats, as that file; None if none."""
    for stem in stems:
        for ext in SOUND_EXTENSIONS:
            path = stem.with_name(f"{stem.name}.{ext}")
            if path.is_file():
                return path
    return None


def sound_checks(
    root: Path, prompts: list[tuple[KeyPath, Any]], languages: list[str]
) -> Iterator[tuple[KeyPath, str]]:
    """A prompt no configured language can play is an error naming the paths tried; one
    missing in a language's own directory but found in the fallbacks is played, so fine."""
    if not root.is_dir():
        yield ("ivr", "sounds_dir"), f"{root} is not a directory"
        return
    for at, prompt in prompts:
        if not isinstance(prompt, str):
            continue
        missing = [lang for lang in languages
                   if sound_file(sound_stems(root, prompt, lang)) is None]  # fmt: skip
        if missing:
            tried = dict.fromkeys(s for lang in missing for s in sound_stems(root, prompt, lang))
            yield at, (f"prompt {prompt!r} not found for: {', '.join(missing)} (tried "
                       f"{', '.join(f'{s}.*' for s in tried)})")  # fmt: skip
