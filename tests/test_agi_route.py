"""The `route` AGI script: arguments -> Requirements -> router -> EXEC MSet, over a socket."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from structlog.testing import capture_logs

from ccrouter.calls.model.cards import card_number
from ccrouter.dialplan import SCRIPT_ROUTE
from ccrouter.pbx.agi import AgiRequest
from ccrouter.routing.agi import RouteResult, requirements_from_args, route_script
from ccrouter.routing.model.decide import Requirements, RouteDecision
from tests.test_agi_session import Peer, header_of, running

CARD = card_number(1)
OK = b"200 result=1\n"
EXEC_OK = b"200 result=0\n"
"""What Asterisk answers `EXEC <app>` when the application returned 0 (agi-session.txt)."""
MSET = (
    f"EXEC MSet CCROUTER_QUEUE=support-ru,CCROUTER_CARD={CARD},CCROUTER_QUEUE_TIMEOUT=300,"
    "CCROUTER_LANGUAGE=ru,CCROUTER_PRODUCT=wallet"
)


@dataclass
class FakeRouter:
    priority: int = 0
    fail: bool = False
    queue: str = "support-ru"
    calls: list[tuple[AgiRequest, Requirements]] = field(default_factory=list)

    async def route(self, request: AgiRequest, requirements: Requirements) -> RouteResult:
        self.calls.append((request, requirements))
        if self.fail:
            raise LookupError("no routing table loaded")
        decision = RouteDecision(
            target="support-ru",
            queue=self.queue,
            product=requirements.product or "wallet",
            language=requirements.language or "ru",
            priority=max(self.priority, requirements.priority),
            timeout_s=300,
            notes=("no target for language=xx; using ru",) if requirements.language == "xx" else (),
        )
        return RouteResult(decision=decision, card=CARD)


def test_requirements_from_good_args() -> None:
    args = ("product=wallet", "lang=uz", "did=5555", "priority=2", f"card={CARD}", "")
    assert requirements_from_args(args) == (
        Requirements(product="wallet", language="uz", dialled="5555", priority=2, card=CARD),
        [],
    )
    assert requirements_from_args(()) == (Requirements(), [])


@pytest.mark.parametrize(
    ("arg", "problem"),
    [
        ("wallet", "'wallet' is not key=value"),
        ("colour=red", "unknown argument 'colour'"),
        ("priority=high", "bad priority='high'"),
        ("priority=-1", "bad priority='-1'"),
        ("card=1234567", "bad card='1234567'"),
        ("product=wal let", "bad product='wal let'"),
        ("lang=", "bad lang=''"),
        ("did=", "bad did=''"),
    ],
)
def test_bad_args_are_named_and_ignored(arg: str, problem: str) -> None:
    requirements, problems = requirements_from_args(("priority=3", arg))
    if arg.startswith("priority="):
        assert problems == ["argument 'priority' given twice; the first value is kept"]
        requirements, problems = requirements_from_args((arg,))
        assert requirements.priority == 0
    else:
        assert requirements.priority == 3
    assert len(problems) == 1 and problem in problems[0], problems
    assert requirements.product is None and requirements.card is None


async def test_route_session_sets_the_variables_in_order() -> None:
    router = FakeRouter()
    args = ("agi_arg_1: product=wallet", "agi_arg_2: lang=ru", "agi_arg_3: did=5555",
            "agi_arg_4: priority=2")
    async with running({SCRIPT_ROUTE: route_script(router)}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt", args))
        await peer.answer_all({}, default=EXEC_OK)
    # one round trip, in order, CCROUTER_STATUS=ok last
    assert peer.commands == [f"{MSET},QUEUE_PRIO=2,CCROUTER_STATUS=ok"]
    ((request, requirements),) = router.calls
    assert (request.uniqueid, request.caller_num) == ("1795443825.1", "79001234567")
    # did= wins over the channel's dialled number; the caller's number comes from the channel
    assert requirements == Requirements(product="wallet", language="ru", dialled="5555", priority=2,
                                        caller_num="79001234567")  # fmt: skip
    assert server.stats.ok == 1


async def test_recorded_route_call_without_args_has_no_queue_prio() -> None:
    router = FakeRouter()
    async with running({SCRIPT_ROUTE: route_script(router)}) as (_, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        await peer.answer_all({}, default=OK)
    ((request, requirements),) = router.calls
    assert request.dnid or request.extension
    assert requirements == Requirements(dialled=request.dnid or request.extension,
                                        caller_num=request.caller_num)  # from the channel
    assert peer.commands == [f"{MSET},CCROUTER_STATUS=ok"]  # no QUEUE_PRIO


async def test_bad_args_still_route_and_are_logged() -> None:
    router = FakeRouter()
    # agi-session.txt: route?lang=ru with arg1, arg2 (not key=value)
    header = header_of("agi-session.txt", ("agi_arg_3: lang=xx", "agi_arg_4: colour=red"))
    with capture_logs() as logs:
        async with running({SCRIPT_ROUTE: route_script(router)}) as (_, port):
            peer = await Peer.connect(port, header)
            await peer.answer_all({}, default=OK)
    assert peer.commands == [f"{MSET.replace('=ru', '=xx')},CCROUTER_STATUS=ok"]
    ((request, requirements),) = router.calls
    assert requirements == Requirements(language="xx", dialled=request.dnid or request.extension,
                                        caller_num=request.caller_num or None)  # fmt: skip
    (ignored,) = [e for e in logs if e["event"] == "route_arguments_ignored"]
    text = " ".join(ignored["problems"])
    for name in ("'arg1'", "'arg2'", "'colour'", "'lang=ru'"):
        assert name in text
    (notes,) = [e for e in logs if e["event"] == "route_requirements_not_honoured"]
    assert "language=xx" in notes["notes"][0]


async def test_router_failure_sets_error_status() -> None:
    router = FakeRouter(fail=True)
    async with running({SCRIPT_ROUTE: route_script(router)}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        await peer.answer_all({}, default=OK)
    assert peer.commands == ["SET VARIABLE CCROUTER_STATUS error"]
    assert server.stats.errors == 1


async def test_caller_hangup_mid_route_ends_quietly() -> None:
    router = FakeRouter()
    async with running({SCRIPT_ROUTE: route_script(router)}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        assert await peer.read_command() == f"{MSET},CCROUTER_STATUS=ok"
        peer.writer.write_eof()  # Asterisk drops the socket: the channel is gone
        assert await peer.expect_eof() == []  # no error status attempted
    assert (server.stats.hangups, server.stats.errors, server.stats.ok) == (1, 0, 0)


async def test_caller_hangup_during_one_by_one_variables_ends_quietly() -> None:
    router = FakeRouter(queue="support,ru")  # a comma: MSet would split it
    async with running({SCRIPT_ROUTE: route_script(router)}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        assert await peer.read_command() == "SET VARIABLE CCROUTER_QUEUE support,ru"
        peer.send(OK)
        assert await peer.read_command() == f"SET VARIABLE CCROUTER_CARD {CARD}"
        peer.writer.write_eof()
        assert await peer.expect_eof() == []
    assert (server.stats.hangups, server.stats.errors, server.stats.ok) == (1, 0, 0)


@pytest.mark.parametrize("queue", ["support,ru", "support ru", 'sup"port', "a|b", "q=1", "${X}",
                                   "f(x)", ""])  # fmt: skip
async def test_a_value_mset_would_mangle_goes_one_by_one(queue: str) -> None:
    """MSet splits on `,`/`|`/`=`, strips quotes and backslashes, nests (), [] (app.c): such a
    value, or an empty one, is sent with SET VARIABLE instead, every variable, same order."""
    router = FakeRouter(queue=queue)
    async with running({SCRIPT_ROUTE: route_script(router)}) as (server, port):
        peer = await Peer.connect(port, header_of("agi-route-session.txt"))
        await peer.answer_all({}, default=OK)
    assert [c.split(" ")[2] for c in peer.commands] == [
        "CCROUTER_QUEUE", "CCROUTER_CARD", "CCROUTER_QUEUE_TIMEOUT", "CCROUTER_LANGUAGE",
        "CCROUTER_PRODUCT", "CCROUTER_STATUS"]  # fmt: skip
    assert all(c.startswith("SET VARIABLE ") for c in peer.commands)
    assert server.stats.ok == 1
