"""Guesses from names: a queue's product and language, an operator's id. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
"""What the config accepts as a target, queue or operator id (`ccrouter/config/schema.py`)."""

_CODES = """
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
ISO_639_1 = frozenset(_CODES.split())
"""Language codes a queue name may end in (`support-ru`, `wallet_uz`)."""

_SUFFIX = re.compile(r"^(?P<product>.+?)[-_.](?P<lang>[A-Za-z]{2})$")


def split_queue_name(name: str) -> tuple[str, str] | None:
    """(product, language) when the name ends in `-xx`/`_xx` with an ISO 639-1 code."""
    m = _SUFFIX.match(name)
    if m is None or m.group("lang").lower() not in ISO_639_1:
        return None
    return m.group("product"), m.group("lang").lower()


def operator_id(interface: str, taken: Iterable[str]) -> str:
    """`PJSIP/1001` -> `op1001`, `Local/agent1@agents` -> `agent1`; unique among `taken`."""
    resource = interface.partition("/")[2].partition("@")[0]
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", resource).strip("-.") or "op"
    if base[0].isdigit():
        base = f"op{base}"
    used, candidate, n = set(taken), base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
