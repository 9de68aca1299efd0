"""The engineer's routing hook: a Python function that may override the built-in decision.

Configure `routing.hook: package.module:function` (importable by the daemon). The function is
called for every routed call with a `HookCall` and returns a `RouteDecision` (take it, e.g.
`dataclasses.replace(call.builtin, queue="vip", priority=50)`) or None (keep the built-in one).
It may be `async def` (preferred: it runs on the event loop and must not block) or a plain
function (it then runs in a worker thread, since it may block). It gets
`routing.hook_timeout_ms`; on a timeout, an exception or a result that is not a RouteDecision
the built-in decision is used and the error is logged (`route_hook_timeout`/`route_hook_failed`
/`route_hook_bad_result`). A decision naming an unknown queue is refused the same way.

    # mycompany/routing.py
    from dataclasses import replace
    from ccrouter.routing.hook import HookCall
    from ccrouter.routing.model.decide import RouteDecision

    async def route(call: HookCall) -> RouteDecision | None:
        if call.caller_num.startswith("99890"):
            return replace(call.builtin, priority=max(call.builtin.priority, 30))
        return None
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

import structlog

from ccrouter.routing.model.decide import Requirements, RouteDecision

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HookCall:
    """What the hook is told about the call."""

    uniqueid: str
    channel: str
    caller_num: str
    caller_name: str
    dialled: str
    requirements: Requirements
    builtin: RouteDecision
    """ccrouter's own decision (used when the hook returns None)."""
    staffed: frozenset[str] | None
    """Queues with a logged-in member now (None: not known)."""


HookFn = Callable[[HookCall], "RouteDecision | Awaitable[RouteDecision | None] | None"]


class HookLoadError(ValueError):
    pass


def load_hook(path: str, key: str = "routing.hook") -> HookFn:
    """`package.module:function` -> the function (HookLoadError says what is wrong; `key` is
    the setting named in the message)."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise HookLoadError(f"{key} {path!r}: cannot import {module_name}: {e}") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise HookLoadError(f"{key} {path!r}: {module_name} has no function {attr!r}")
    return fn  # type: ignore[no-any-return]


async def run_hook(fn: Callable[..., Any], *args: Any, timeout_s: float) -> Any:
    """Call an engineer's hook within `timeout_s`: an `async def` on the loop, a plain function
    in a worker thread (it may block). Raises TimeoutError or whatever the hook raised."""
    async with asyncio.timeout(timeout_s):
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        result = await asyncio.to_thread(fn, *args)
        if inspect.isawaitable(result):
            result = await result
        return result


class RouteHook:
    def __init__(self, fn: HookFn, timeout_s: float, queues: Collection[str]) -> None:
        self._fn = fn
        self._timeout_s = timeout_s
        self._queues = set(queues)
        self.failures = 0

    async def decide(self, call: HookCall) -> RouteDecision:
        try:
            result = await run_hook(self._fn, call, timeout_s=self._timeout_s)
        except TimeoutError:
            self.failures += 1
            log.error("route_hook_timeout", timeout_ms=round(self._timeout_s * 1000))
            return call.builtin
        except Exception as e:  # any hook error: the built-in decision
            self.failures += 1
            log.error("route_hook_failed", error=repr(e))
            return call.builtin
        if result is None:
            return call.builtin
        if not isinstance(result, RouteDecision) or (
            result.queue and result.queue not in self._queues
        ):
            self.failures += 1
            log.error("route_hook_bad_result", result=repr(result)[:200])
            return call.builtin
        return replace(result, source="hook")
