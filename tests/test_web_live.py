"""Live views over real sockets: the wallboard stream, the operator's screen pop (card + the
caller's last 5 cards at AgentCalled and AgentConnect), live queues/operators, /metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ccrouter.sim import SimCaller, SimOperator
from tests.test_web_api import WALLET_DID, answered_call
from tests.web_stack import WebStack, web_stack


async def events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    name, data = "", []
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and name:
            yield name, json.loads("\n".join(data))
            name, data = "", []


async def next_event(stream: AsyncIterator[tuple[str, Any]], want: Any, timeout: float = 5.0
                     ) -> Any:
    async def find() -> Any:
        async for name, data in stream:
            if want(name, data):
                return data
        raise AssertionError("stream ended")

    return await asyncio.wait_for(find(), timeout)


def paused_member(ws: WebStack, queue: str, iface: str, name: str, **kw: Any) -> None:
    ws.st.sim.add_operator(SimOperator(interface=iface, **kw))
    ws.st.sim.add_member(queue, iface, name=name, paused=True)


async def open_stream(ws: WebStack, path: str, who: str) -> aiohttp.ClientResponse:
    resp = await ws.client.get(ws.base + path, params={"access_token": ws.tokens[who]})
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    return resp


async def test_screen_pop_carries_the_card_and_the_callers_last_five(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        old = [await answered_call(ws, "79005550000") for _ in range(6)]
        paused_member(ws, "wallet-ru", "PJSIP/1002", "Anna Smirnova", answer_after_s=2,
                      talk_time_s=3)  # op1002 takes the next call (1001 paused)
        await ws.st.app.ami.send({"Action": "QueuePause", "Queue": "wallet-ru",
                                  "Interface": "PJSIP/1001", "Paused": "true"})
        await ws.st.app.ami.send({"Action": "QueuePause", "Queue": "wallet-ru",
                                  "Interface": "PJSIP/1002", "Paused": "false"})
        resp = await open_stream(ws, "/api/v1/operators/op1002/stream", "op2")
        stream = events(resp)
        call = ws.st.sim.place_call(SimCaller("79005550000", "Ivan", dialled=WALLET_DID))
        ringing = await next_event(stream, lambda n, d: n == "pop" and d["phase"] == "ringing")
        connected = await next_event(stream, lambda n, d: d["phase"] == "connected")
        resp.close()
        assert ringing["card"]["number"] == connected["card"]["number"]
        assert ringing["card"]["number"] == await asyncio.wait_for(_card_var(call), 5)
        assert [c["number"] for c in connected["history"]] == old[::-1][:5]
        assert connected["card"]["caller_num"] == "7900***0000"  # operators see masked numbers
        assert connected["card"]["queue"] == "wallet-ru"
        # a page opened after the pop gets the retained one at once; another operator may not
        late = await open_stream(ws, "/api/v1/operators/op1002/stream", "sup")
        again = await next_event(events(late), lambda n, d: n == "pop")
        late.close()
        assert again["card"]["number"] == connected["card"]["number"]
        status, _ = await ws.call("GET", "/api/v1/operators/op1002/stream", "op1")
        assert status == 403
        status, _ = await ws.call("GET", "/api/v1/operators/nobody/stream", "sup")
        assert status == 404
        await call.finished


async def _card_var(call: Any) -> str:
    while "CCROUTER_CARD" not in call.variables:
        await asyncio.sleep(0.01)
    return str(call.variables["CCROUTER_CARD"])


async def test_wallboard_stream_shows_waiting_callers_and_operator_states(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        paused_member(ws, "terminal-ru", "PJSIP/1004", "Sergey Pak", answer_after_s=0.5,
                      talk_time_s=600)
        # a member added after connect is learnt from its next member event (here a pause)
        await ws.st.app.ami.send({"Action": "QueuePause", "Queue": "terminal-ru",
                                  "Interface": "PJSIP/1004", "Paused": "true",
                                  "Reason": "lunch"})
        resp = await open_stream(ws, "/api/v1/live/stream", "sup")
        stream = events(resp)
        call = ws.st.sim.place_call(SimCaller("79001112233", dialled="712000200",
                                              patience_s=600))

        def waiting(name: str, snap: Any) -> bool:
            q = {x["queue"]: x for x in snap["queues"]}["terminal-ru"]
            return bool(name == "snapshot" and q["waiting"] == 1)

        snap = await next_event(stream, waiting)
        q = {x["queue"]: x for x in snap["queues"]}["terminal-ru"]
        assert q["paused"] == 1 and q["free"] == 0 and q["logged_in"] == 1
        ops = {o["id"]: o for o in snap["operators"]}
        assert ops["op1004"]["state"] == "paused" and ops["op1004"]["paused_reason"] == "lunch"
        assert ops["op1001"]["state"] == "logged_out"
        (live,) = snap["calls"]
        assert live["caller_num"] == "79001112233" and live["queue"] == "terminal-ru"
        assert snap["ami_connected"] is True
        # operators may not watch the wallboard
        status, _ = await ws.call("GET", "/api/v1/live/stream", "op1")
        assert status == 403
        await ws.st.app.ami.send({"Action": "QueuePause", "Queue": "terminal-ru",
                                  "Interface": "PJSIP/1004", "Paused": "false"})

        def answered(name: str, snap: Any) -> bool:
            ops = {o["id"]: o for o in snap["operators"]}
            return bool(snap["calls"] and snap["calls"][0]["answered"]
                        and ops["op1004"]["state"] == "busy")

        snap = await next_event(stream, answered)
        assert snap["calls"][0]["operator"] == "Sergey Pak"
        resp.close()
        assert not call.finished.done()  # still talking: the stack's teardown ends it


async def test_live_json_endpoints_and_metrics_parse(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as ws:
        await answered_call(ws)
        short = ws.st.sim.place_call(SimCaller("79002220000", dialled="712000200", patience_s=2))
        assert await asyncio.wait_for(short.finished, 10) == "abandoned"
        _, queues = await ws.call("GET", "/api/v1/live/queues", "sup")
        assert {q["queue"] for q in queues} >= {t.queue_name for t in ws.st.settings.targets}
        _, ops = await ws.call("GET", "/api/v1/live/operators", "admin")
        assert {o["id"]: o["state"] for o in ops}["op1001"] == "free"
        async with ws.client.get(ws.base + "/metrics") as r:
            assert r.status == 200 and r.content_type == "text/plain"
            text = await r.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in families.values() for s in f.samples}
        assert samples[("ccrouter_queue_answered_total", (("queue", "wallet-ru"),))] == 1
        assert samples[("ccrouter_queue_short_abandoned_total", (("queue", "terminal-ru"),))] == 1
        assert samples[("ccrouter_queue_calls_total", (("queue", "terminal-ru"),))] == 1
        assert families["ccrouter_queue_wait_seconds"].type == "histogram"
        assert samples[("ccrouter_agi_script_seconds_count", ())] == 2
        assert samples[("ccrouter_agi_sessions_total", ())] == 2
        assert samples[("ccrouter_ami_connects_total", ())] >= 1
        assert samples[("ccrouter_ami_connected", ())] == 1
        assert samples[("ccrouter_card_rows_written_total", ())] >= 2
        assert ("ccrouter_live_calls", ()) in samples


async def test_callback_queue_depth_metric_with_the_callback_feature(tmp_path: Path) -> None:
    from ccrouter.callbacks.feature import install as callbacks
    from ccrouter.web.feature import WebFeature
    from tests.stack import stack
    from tests.web_stack import web_settings

    web = WebFeature()
    async with (stack(tmp_path, settings=web_settings(), features=[callbacks, web]),
                aiohttp.ClientSession() as client,
                client.get(f"http://{web.address[0]}:{web.address[1]}/metrics") as r):
        text = await r.text()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["ccrouter_callback_queue_depth"] == 0
