"""Values that describe the simulated people and the live call handle tests hold on to."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["answered", "abandoned", "timeout", "fallback", "ivr_only", "lost"]


@dataclass(frozen=True, slots=True)
class SimOperator:
    """An operator's phone. `interface` is the queue member interface (`PJSIP/1001`, `Local/...`).

    The phone rings `answer_after_s` (simulated seconds) then answers, unless `no_answer`; the
    conversation lasts `talk_time_s`; `hangs_up` says who ends it (operator: Reason agent).
    """

    interface: str
    answer_after_s: float = 1.0
    talk_time_s: float = 30.0
    no_answer: bool = False
    hangs_up: bool = True


CustomerAnswer = Literal["answer", "busy", "no_answer", "congestion", "fail", "on_cue"]


@dataclass(frozen=True, slots=True)
class SimCustomer:
    """A number ccrouter may Originate to (a callback or a reminder), behind the trunk.

    `answer`: what the phone does — picks up after `answer_after_s`, is busy or congested
    (after `answer_after_s`), rings until the Originate timeout, or cannot be reached at all
    (no channel: OriginateResponse Reason 0); "on_cue" rings until the test calls
    `PbxSimulator.pick_up(number)` (or the timeout). Once answered and in a queue the customer waits
    `patience_s` before hanging up.
    """

    number: str
    answer: CustomerAnswer = "answer"
    answer_after_s: float = 2.0
    patience_s: float = 300.0


@dataclass(frozen=True, slots=True)
class SimCaller:
    """A caller. `dtmf` holds one entry per prompt that listens for digits (see the package doc).

    `patience_s`: how long they wait in a queue before hanging up (abandon).
    `hangs_up_after_s`: hang up this long after the call started, wherever the call is.
    `local`: place the call as an AMI-style Local channel pair (`Local/<dialled>@<inbound>;1/;2`)
    instead of a `PJSIP/trunk-...` channel, like the recorded lab.
    """

    number: str
    name: str = ""
    dialled: str = "2000"
    patience_s: float = 60.0
    dtmf: Sequence[str] = ()
    hangs_up_after_s: float | None = None
    local: bool = False


@dataclass(slots=True)
class SimCall:
    """The live handle of one placed call. `finished` resolves (to `outcome`) when it is gone."""

    caller: SimCaller
    uniqueid: str
    linkedid: str
    finished: asyncio.Future[str]
    outcome: Outcome | None = None
    variables: dict[str, str] = field(default_factory=dict)
    agi_commands: list[str] = field(default_factory=list)
    agi_status: str = ""
    queue: str = ""
    operator: str = ""
    hold_time: int = 0
    talk_time: int = 0


@dataclass(slots=True)
class Member:
    """A queue member as app_queue keeps it (field names follow its AMI blob)."""

    interface: str
    name: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    dynamic: bool = False
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    wrapuptime: int = 0
    in_call: bool = False
    busy_until: float = 0.0
    """Loop time until which the member is in wrap-up (not rung)."""

    @property
    def membership(self) -> str:
        return "dynamic" if self.dynamic else "static"
