"""ccrouter with skill-based routing + the simulator loaded with the generated queue files."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ccrouter.app import App
from ccrouter.asterisk_conf import queuerules_conf, queues_conf
from ccrouter.config import Settings
from ccrouter.demo import demo_settings
from ccrouter.routing.feature import install
from ccrouter.routing.membership import MembershipService
from ccrouter.routing.state import OperatorService
from ccrouter.sim import PbxSimulator, SimOperator
from tests.stack import Stack, example_settings, wait_until


def routing_settings(**routing: Any) -> Settings:
    """The worked example with every operator logged out and quick polling. The `general`
    target's queue is renamed `general-line`: `[general]` in queues.conf is app_queue's
    settings section, not a queue (the simulator, like Asterisk, skips it)."""
    s = example_settings()
    ops = [op.model_copy(update={"logged_in": False}) for op in s.operators]
    targets = [t.model_copy(update={"queue": "general-line"}) if t.name == "general" else t
               for t in s.targets]  # fmt: skip
    r = s.routing.model_copy(update={"state_poll_s": 0.05, "fallback_queue": "general-line",
                                     **routing})  # fmt: skip
    # A loaded test machine can starve the loop for a few 100 ms: a tolerant watchdog keeps
    # spurious reconnects out of tests that count the actions sent.
    ami = s.ami.model_copy(update={"ping_interval_s": 1.0, "ping_timeout_s": 3.0,
                                   "action_timeout_s": 5.0})  # fmt: skip
    return s.model_copy(update={"operators": ops, "routing": r, "targets": targets, "ami": ami})


class RoutingStack(Stack):
    @property
    def operators(self) -> OperatorService:
        ops: OperatorService = self.app.operators  # type: ignore[attr-defined]
        return ops

    @property
    def membership(self) -> MembershipService:
        m: MembershipService = self.app.membership  # type: ignore[attr-defined]
        return m

    def members(self, queue: str) -> dict[str, tuple[int, bool]]:
        return {m.interface: (m.penalty, m.paused) for m in self.sim.members(queue)}

    async def settled(self) -> None:
        """The simulator's members equal the desired state for the latest operator changes."""
        latest = await self.operators.store.version()

        def done() -> bool:
            if self.membership.version < latest:
                return False
            want = {(q, i): (m.penalty, m.paused) for (q, i), m in self.membership.desired.items()}
            have = {(q, m.interface): (m.penalty, m.paused)
                    for q in self.membership.managed for m in self.sim.members(q)}  # fmt: skip
            # ... and every action sent has its reply (they are logged as replies come in)
            return want == have and self.membership.synced and not self.membership.applying
        await wait_until(done, what="membership in step")


@contextlib.asynccontextmanager
async def routing_stack(
    tmp_path: Path, settings: Settings | None = None, *, time_scale: float = 40.0,
    operator: dict[str, Any] | None = None,
) -> AsyncIterator[RoutingStack]:  # fmt: skip
    base = settings or routing_settings()
    sim = PbxSimulator(agi_port=0, username=base.ami.username, secret="demo-secret",
                       time_scale=time_scale, noise=False,
                       fallback_queue=base.routing.fallback_queue or "")  # fmt: skip
    await sim.start()
    sim.load_queues(queues_conf(base))
    sim.load_queuerules(queuerules_conf(base))
    for op in base.operators:
        sim.add_operator(SimOperator(op.interface, **(operator or {"answer_after_s": 1,
                                                                  "talk_time_s": 5})))
    s = demo_settings(base, sim.ami_port, f"sqlite+aiosqlite:///{tmp_path / 'cards.db'}")
    app = App(s, features=[install])
    await app.start()
    sim.agi_port = app.agi_address[1]
    st = RoutingStack(sim, app, s)
    try:
        await wait_until(lambda: app.ami.connected and st.membership.synced, what="synced")
        yield st
    finally:
        await app.stop()
        await sim.close()
