"""FastAGI input from a broken or hostile peer: header blocks and command replies. Parsing
either succeeds or raises the typed error that names the problem; nothing else escapes."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from ccrouter.pbx.agi.session import (
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    parse_env,
    parse_reply,
    read_reply,
)
from ccrouter.routing.agi import requirements_from_args
from tests.fuzz_settings import fuzz

ENV_KEYS = ["agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language",
            "agi_type", "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname",
            "agi_dnid", "agi_context", "agi_extension", "agi_priority", "agi_enhanced",
            "agi_accountcode", "agi_threadid", "agi_arg_1", "agi_arg_2", "agi_arg_10"]  # fmt: skip
value = st.one_of(
    st.text(max_size=30).map(lambda t: t.replace("\n", "")),
    st.sampled_from(["route", "route?lang=ru", "", " ", "unknown", "did=712000100", "card=x"]),
    st.text(min_size=1000, max_size=20000, alphabet="ab=,"),
)
line = st.one_of(
    st.tuples(st.sampled_from(ENV_KEYS), value).map(lambda kv: f"{kv[0]}: {kv[1]}".encode()),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"HANGUP", b"agi_: x", b"agi_arg_0: y", b"\xff\xfe", b"agi_network_script:"]),
)


@fuzz(100)
@given(st.lists(line, max_size=25))
def test_header_block_parses_or_raises_a_protocol_error(lines: list[bytes]) -> None:
    block = b"\n".join(lines) + b"\n\n"
    try:
        request = AgiRequest.from_env(parse_env(block))
    except AgiProtocolError as exc:
        assert str(exc)
    else:
        assert "\n" not in request.script  # "" is an unknown script for the server, not a crash
        assert all(isinstance(a, str) for a in request.args)


@fuzz(100)
@given(st.lists(st.one_of(value, st.text(max_size=40)), max_size=12))
def test_route_arguments_never_raise_and_every_problem_is_named(args: list[str]) -> None:
    requirements, problems = requirements_from_args(args)
    assert requirements.priority >= 0
    assert all(isinstance(p, str) and p for p in problems)


reply_line = st.one_of(
    st.sampled_from([b"200 result=1", b"200 result= (timeout)", b"200 result=-1 endpos=20000",
                     b"510 Invalid or unknown command", b"HANGUP", b"100 Trying...",
                     b"520-Invalid command syntax.  Proper usage follows:",
                     b"520 End of proper usage.",
                     b"511 Command Not Permitted on a dead channel or intercept routine"]),
    st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=30).map(lambda t: f"200 result={t}".replace("\n", "").encode()),
)  # fmt: skip


@fuzz(100)
@given(st.lists(reply_line, min_size=1, max_size=6), st.booleans())
def test_reply_reader_returns_a_reply_or_a_typed_error(lines: list[bytes], eof: bool) -> None:
    async def read() -> None:
        reader = asyncio.StreamReader(limit=4096)
        reader.feed_data(b"\n".join(lines) + (b"" if eof else b"\n"))
        reader.feed_eof()
        try:
            reply, _ = await read_reply(reader)
        except (AgiProtocolError, AgiHangup):
            return
        assert 100 <= reply.code <= 999
        if reply.code == 200:
            assert parse_reply(reply.lines[0]) == reply

    asyncio.run(asyncio.wait_for(read(), 5))
