"""Tickets from a card through the JSON webhook connector, against a real HTTP server (the
helpdesk stub on loopback), and the caller's mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from ccrouter.calls.model.cards import CardWrite
from ccrouter.config.helpdesk import HelpdeskSettings, MailSettings, MailTemplate
from ccrouter.helpdesk.feature import install as helpdesk
from ccrouter.helpdesk.model import sign
from tests.stack import wait_until
from tests.web_stack import WebStack, web_settings, web_stack

SECRET = "hd-secret"
SIG = "X-Ccrouter-Signature"


class Helpdesk:
    """The helpdesk: tickets by idempotency key; `fail` answers 500, `stall` sleeps past the
    client's timeout once (after taking the ticket), as a slow helpdesk would."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail = False
        self.stall_once = False
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if request.headers.get(SIG) != sign(SECRET, raw):
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        body = json.loads(raw)
        self.requests.append({"body": body, "headers": dict(request.headers)})
        if self.fail:
            return web.json_response({"error": "down"}, status=500)
        key = request.headers["Idempotency-Key"]
        assert key == body["idempotency_key"]
        if key not in self.tickets:
            n = len(self.tickets) + 1
            self.tickets[key] = {"id": f"HD-{n}", "url": f"https://hd.example/t/HD-{n}",
                                 "body": body}  # fmt: skip
        if self.stall_once:
            self.stall_once = False
            await asyncio.sleep(2.0)
        t = self.tickets[key]
        return web.json_response({"id": t["id"], "url": t["url"]}, status=201)


@pytest.fixture
async def desk() -> AsyncIterator[tuple[Helpdesk, str]]:
    hd = Helpdesk()
    app = web.Application()
    app.router.add_post("/tickets", hd.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield hd, f"http://127.0.0.1:{server.port}/tickets"
    await server.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((envelope.rcpt_tos, msg))
        return "250 OK"


@pytest.fixture
def mailbox() -> Any:
    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    yield box, port
    ctl.stop()


TEMPLATES = {
    "uz": {"created": MailTemplate(subject="Murojaatingiz $ticket_id qabul qilindi",
                                   body="Karta $card. Kuzatish: $ticket_url"),
           "resolved": MailTemplate(subject="Murojaatingiz $ticket_id hal qilindi",
                                    body="Karta $card: hal qilindi.")},
    "ru": {"created": MailTemplate(subject="Заявка $ticket_id принята",
                                   body="Карточка $card. Статус: $ticket_url"),
           "resolved": MailTemplate(subject="Заявка $ticket_id решена", body="Готово.")},
}  # fmt: skip


def settings(url: str, smtp_port: int | None = None, **hd: Any) -> Any:
    h = HelpdeskSettings(url=url, secret=SECRET, timeout_s=0.5, backoff_s=0.05,
                         backoff_max_s=0.2, poll_s=0.05, headers={"X-Tenant": "acme"},
                         **hd)  # fmt: skip
    m = (MailSettings(host="127.0.0.1", port=smtp_port, templates=TEMPLATES, backoff_s=0.05,
                      sender="support@ccrouter.test")
         if smtp_port else MailSettings())  # fmt: skip
    return web_settings(helpdesk=h, mail=m)


async def add_card(ws: WebStack, **fields: Any) -> str:
    app = ws.st.app
    number = app.numbers.next()
    op = next(o for o in ws.st.settings.operators if o.id == "op1001")
    app.writer.submit(CardWrite(number, {"state": "closed", "kind": "inbound",
                                         "started_at": 1.0e9, "interface": op.interface,
                                         "topic": "card blocked", "language": "uz",
                                         **fields}, insert=True))  # fmt: skip
    await app.writer.flush()
    return number


async def card(ws: WebStack, number: str) -> dict[str, Any]:
    status, body = await ws.call("GET", f"/api/v1/cards/{number}", "sup")
    assert status == 200, body
    return dict(body["card"])


async def until_status(ws: WebStack, number: str, status: str) -> dict[str, Any]:
    for _ in range(300):
        c = await card(ws, number)
        if c["ticket_status"] == status:
            return c
        await asyncio.sleep(0.02)
    raise AssertionError(f"card {number}: ticket_status {c['ticket_status']!r}, not {status!r}")


async def post_event(ws: WebStack, body: dict[str, Any], secret: str = SECRET) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    return await ws.call("POST", "/api/v1/helpdesk/events", data=raw,
                         headers={SIG: sign(secret, raw), "Content-Type": "application/json"})


async def test_ticket_from_card_gives_id_and_url(tmp_path: Path, desk: Any) -> None:
    hd, url = desk
    async with web_stack(tmp_path, settings(url), features=[helpdesk]) as ws:
        number = await add_card(ws)
        status, t = await ws.call("POST", f"/api/v1/cards/{number}/tickets", "op1",
                                  json={"summary": "unblock the card"})  # fmt: skip
        assert status == 202, t
        assert t["status"] == "pending" and t["card"] == number
        c = await until_status(ws, number, "open")
        assert (c["ticket_id"], c["ticket_url"]) == ("HD-1", "https://hd.example/t/HD-1")
        [req] = hd.requests
        assert req["headers"]["X-Tenant"] == "acme"
        assert req["body"]["card"]["number"] == number
        assert req["body"]["summary"] == "unblock the card"
        assert req["body"]["requested_by"] == "op1"
        _, found = await ws.call("GET", f"/api/v1/cards/{number}/tickets", "op1")
        [ticket] = found["tickets"]
        assert [h["event"] for h in ticket["history"]] == ["requested", "created"]
        # the card search filters by ticket status
        _, hits = await ws.call("GET", "/api/v1/cards?ticket_status=open", "sup")
        assert [x["number"] for x in hits["items"]] == [number]
        _, none = await ws.call("GET", "/api/v1/cards?ticket_status=resolved", "sup")
        assert none["total"] == 0
        status, err = await ws.call("GET", "/api/v1/cards?ticket_status=lost", "sup")
        assert status == 400 and err["field"] == "ticket_status"


async def test_another_operators_card_is_refused(tmp_path: Path, desk: Any) -> None:
    hd, url = desk
    async with web_stack(tmp_path, settings(url), features=[helpdesk]) as ws:
        number = await add_card(ws)
        status, body = await ws.call("POST", f"/api/v1/cards/{number}/tickets", "op2", json={})
        assert status == 403, body
        status, body = await ws.call("POST", "/api/v1/cards/99999999/tickets", "sup", json={})
        assert status == 404, body
    assert hd.requests == []


async def test_helpdesk_down_pending_survives_restart_one_ticket(tmp_path: Path,
                                                                  desk: Any) -> None:
    hd, url = desk
    hd.fail = True
    async with web_stack(tmp_path, settings(url), features=[helpdesk]) as ws:
        number = await add_card(ws)
        status, _ = await ws.call("POST", f"/api/v1/cards/{number}/tickets", "sup", json={})
        assert status == 202
        await wait_until(lambda: len(hd.requests) >= 3, what="three failed attempts")
        c = await card(ws, number)
        assert c["ticket_status"] == "pending" and c["ticket_id"] is None
        _, found = await ws.call("GET", f"/api/v1/cards/{number}/tickets", "sup")
        [t] = found["tickets"]
        assert t["attempts"] >= 2 and "HTTP 500" in t["last_error"]
    tried = len(hd.requests)
    keys = {r["body"]["idempotency_key"] for r in hd.requests}
    assert len(keys) == 1, "every attempt carries the same idempotency key"
    hd.fail = False
    async with web_stack(tmp_path, settings(url), features=[helpdesk]) as ws:
        c = await until_status(ws, number, "open")
        assert c["ticket_id"] == "HD-1"
    assert len(hd.requests) > tried
    assert {r["body"]["idempotency_key"] for r in hd.requests} == keys
    assert len(hd.tickets) == 1


async def test_timeout_then_retry_makes_one_ticket(tmp_path: Path, desk: Any) -> None:
    hd, url = desk
    hd.stall_once = True  # takes the ticket, answers after the client gave up
    async with web_stack(tmp_path, settings(url), features=[helpdesk]) as ws:
        number = await add_card(ws)
        await ws.call("POST", f"/api/v1/cards/{number}/tickets", "sup", json={})
        c = await until_status(ws, number, "open")
        _, found = await ws.call("GET", f"/api/v1/cards/{number}/tickets", "sup")
        [t] = found["tickets"]
        assert "no answer within 0.5 s" in [h["detail"] for h in t["history"]][1]
    assert len(hd.requests) == 2 and len(hd.tickets) == 1
    assert c["ticket_id"] == "HD-1"


async def test_status_webhook_good_and_bad_signature(tmp_path: Path, desk: Any) -> None:
    _, url = desk
    async with web_stack(tmp_path, settings(url), features=[helpdesk]) as ws:
        number = await add_card(ws)
        await ws.call("POST", f"/api/v1/cards/{number}/tickets", "sup", json={})
        await until_status(ws, number, "open")
        event = {"ticket_id": "HD-1", "status": "in_progress", "comment": "taken"}
        status, body = await post_event(ws, event, secret="wrong")
        assert status == 401 and body["field"] == SIG, body
        raw = json.dumps(event).encode()
        status, body = await ws.call("POST", "/api/v1/helpdesk/events", data=raw)
        assert status == 401 and "missing" in body["message"]
        assert (await card(ws, number))["ticket_status"] == "open"
        status, body = await post_event(ws, event)
        assert status == 200 and body["status"] == "in_progress", body
        assert (await card(ws, number))["ticket_status"] == "in_progress"
        status, body = await post_event(ws, {"ticket_id": "HD-9", "status": "resolved"})
        assert status == 404 and body["field"] == "ticket_id"
        status, body = await post_event(ws, {"ticket_id": "HD-1", "status": "closed"})
        assert status == 400 and body["field"] == "status" and "resolved" in body["message"]
        _, found = await ws.call("GET", f"/api/v1/cards/{number}/tickets", "sup")
        statuses = [h["status"] for h in found["tickets"][0]["history"]]
        assert statuses == ["pending", "open", "in_progress"]


async def test_caller_mail_in_card_language_on_creation_and_resolution(
    tmp_path: Path, desk: Any, mailbox: Any
) -> None:
    _, url = desk
    box, port = mailbox
    async with web_stack(tmp_path, settings(url, port), features=[helpdesk]) as ws:
        number = await add_card(ws, language="uz")
        status, body = await ws.call("PATCH", f"/api/v1/cards/{number}", "op1",
                                     json={"caller_email": "not-an-address"})  # fmt: skip
        assert status == 400 and body["field"] == "caller_email"
        status, _ = await ws.call("PATCH", f"/api/v1/cards/{number}", "op1",
                                  json={"caller_email": "aziz@example.uz"})  # fmt: skip
        assert status == 200
        await ws.call("POST", f"/api/v1/cards/{number}/tickets", "op1", json={})
        await until_status(ws, number, "open")
        await wait_until(lambda: len(box.messages) == 1, what="the creation mail")
        rcpt, msg = box.messages[0]
        assert rcpt == ["aziz@example.uz"]
        assert msg["Subject"] == "Murojaatingiz HD-1 qabul qilindi"
        assert msg["From"] == "support@ccrouter.test" and msg["Content-Language"] == "uz"
        assert "https://hd.example/t/HD-1" in msg.get_content() and number in msg.get_content()
        for _ in range(2):  # a duplicate delivery mails once
            status, _ = await post_event(ws, {"ticket_id": "HD-1", "status": "resolved"})
            assert status == 200
        await wait_until(lambda: len(box.messages) == 2, what="the resolution mail")
        assert box.messages[1][1]["Subject"] == "Murojaatingiz HD-1 hal qilindi"
        assert (await card(ws, number))["ticket_status"] == "resolved"
        await asyncio.sleep(0.3)  # the second "resolved" must not bring a third mail
        assert len(box.messages) == 2
        _, found = await ws.call("GET", f"/api/v1/cards/{number}/tickets", "op1")
        t = found["tickets"][0]
        assert [(m["kind"], m["state"], m["language"]) for m in t["mails"]] == [
            ("created", "sent", "uz"), ("resolved", "sent", "uz")]
        assert "mail_resolved_sent" in [h["event"] for h in t["history"]]


async def test_mail_server_down_is_retried(tmp_path: Path, desk: Any) -> None:
    _, url = desk
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens there once closed
    box = Mailbox()
    async with web_stack(tmp_path, settings(url, dead), features=[helpdesk]) as ws:
        number = await add_card(ws, language="ru", caller_email="ivan@example.ru")
        await ws.call("POST", f"/api/v1/cards/{number}/tickets", "sup", json={})
        await until_status(ws, number, "open")

        async def retries() -> list[Any]:
            _, found = await ws.call("GET", f"/api/v1/cards/{number}/tickets", "sup")
            return [h for h in found["tickets"][0]["history"] if h["event"] == "mail_created_retry"]

        for _ in range(200):
            if await retries():
                break
            await asyncio.sleep(0.02)
        assert await retries(), "a refused connection is retried"
        ctl = Controller(box, hostname="127.0.0.1", port=dead)
        ctl.start()
        with contextlib.ExitStack() as stop:
            stop.callback(ctl.stop)
            await wait_until(lambda: len(box.messages) == 1, timeout=10, what="the mail")
    assert box.messages[0][1]["Subject"] == "Заявка HD-1 принята"
