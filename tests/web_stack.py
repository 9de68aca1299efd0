"""ccrouter with the web feature + the simulator, and an HTTP client with a token per role."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from ccrouter.config import Settings
from ccrouter.web.auth import Role, TokenStore
from ccrouter.web.feature import WebFeature
from tests.stack import EXAMPLE, Stack, example_settings, stack


def web_settings(**update: Any) -> Settings:
    s = example_settings()
    alerts = s.alerts.model_copy(update={"rules": [], **update.pop("alerts", {})})
    http = s.http.model_copy(update={"port": 0, **update.pop("http", {})})
    return s.model_copy(update={"http": http, "alerts": alerts, **update})


class WebStack:
    def __init__(self, st: Stack, web: WebFeature, client: aiohttp.ClientSession) -> None:
        self.st, self.web, self.client = st, web, client
        self.tokens: dict[str, str] = {}
        host, port = web.address
        self.base = f"http://{host}:{port}"

    async def add_token(self, name: str, role: Role, operator: str | None = None) -> str:
        token, _ = await TokenStore(self.st.app.engine).create(name, role, operator)
        self.tokens[name] = token
        return token

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}

    async def call(self, method: str, path: str, who: str | None = None, *,
                   json: Any = None, data: Any = None, headers: Any = None) -> tuple[int, Any]:
        h = {**self.headers(who), **(headers or {})}
        async with self.client.request(method, self.base + path, headers=h, json=json,
                                       data=data) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()


@contextlib.asynccontextmanager
async def web_stack(tmp_path: Path, settings: Settings | None = None,
                    **kw: Any) -> AsyncIterator[WebStack]:
    web = WebFeature(config_path=kw.pop("config_path", EXAMPLE))
    before = list(kw.pop("features", []))  # other features, installed before the web one
    async with (
        stack(tmp_path, settings=settings or web_settings(), features=[*before, web],
              **kw) as st,
        aiohttp.ClientSession() as client,
    ):
        ws = WebStack(st, web, client)
        await ws.add_token("op1", Role.OPERATOR, "op1001")
        await ws.add_token("op2", Role.OPERATOR, "op1002")
        await ws.add_token("sup", Role.SUPERVISOR)
        await ws.add_token("admin", Role.ADMIN)
        yield ws
