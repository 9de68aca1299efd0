"""Values that describe the simulated people and the live call handle tests hold on to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["answered", "abandoned", "timeout", "fallback", "ivr_only", "lost"]


@dataclass(frozen=True, slots=True)
class SimTransfer:
    """An operator who transfers the calls they answer, from their phone (SIP REFER, so
    `IsExternal: Yes`), `after_s` simulated seconds into the conversation.

    `blind`: the caller goes to extension `to` of ccrouter-inbound and runs the dialplan from
    there (the route script, another queue). `attended`: the operator puts the caller on hold,
    calls the device `to` (an operator's interface, e.g. `PJSIP/1002`; it answers after that
    operator's `answer_after_s`), talks `consult_s`, then completes: the caller is bridged with
    `to` for that operator's `talk_time_s`. `share`: the part of answered calls transferred
    (drawn per call from the simulator's seeded generator; 1.0 draws nothing).
    """

    kind: Literal["blind", "attended"]
    to: str
    after_s: float = 5.0
    consult_s: float = 3.0
    share: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("blind", "attended"):
            raise ValueError(f"SimTransfer.kind must be blind or attended, got {self.kind!r}")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"SimTransfer.share must be within 0..1, got {self.share!r}")


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
    transfer: SimTransfer | None = None
    """Transfers the calls this operator answers (None: never)."""


@dataclass(frozen=True, slots=True)
class SimPhone:
    """A supervisor's phone (not a queue member): ccrouter's ChanSpy Originate rings it. It
    answers after `answer_after_s` unless `no_answer`; the supervisor hangs up after
    `hangs_up_after_s` (None: stays until ChanSpy ends, option E: when the spied-on channel
    hangs up)."""

    device: str
    answer_after_s: float = 1.0
    no_answer: bool = False
    hangs_up_after_s: float | None = None


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
    transfers: list[str] = field(default_factory=list)
    """`blind:<exten>` / `attended:<interface>` for each transfer of this call, in order."""
    agent_complete: str = ""
    """The channel blocks its AgentComplete carried: "caller" (the caller's, as usual), "dest"
    (only the member's Dest* block) or "none" (see `LostCallerBlock`); "" before it came."""

    def when_finished(self, fn: Callable[[SimCall], object]) -> None:
        """Call `fn(call)` once the call is gone (at once if it is)."""
        self.finished.add_done_callback(lambda _f: fn(self))


@dataclass(frozen=True, slots=True)
class LostCallerBlock:
    """How often `AgentComplete` lacks the caller's channel block, as on a real Asterisk 22.10.1
    (fixture ami-agentcomplete-without-caller.txt): when a call ends within about a second of
    AgentConnect (its TalkTime at most `max_talk_s`) and the caller's channel is gone by then,
    app_queue may find no snapshot of it.

    `caller_ends`: the share of such calls ended by the caller (Reason caller; 2-8 of 100 were
    seen); `agent_ends`: of those ended by the operator (4-12 of 800-1 200 short calls);
    `no_block`: of the events that lack the caller's block, the share with no channel block at
    all (the others carry the member's Dest* block only; 1 of the 3 recorded). The draws come
    from a generator of their own, seeded by the simulator's seed; 1.0 forces a shape, 0.0 never.
    """

    caller_ends: float = 0.05
    agent_ends: float = 0.01
    no_block: float = 1 / 3
    max_talk_s: int = 1

    def __post_init__(self) -> None:
        for name in ("caller_ends", "agent_ends", "no_block"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"LostCallerBlock.{name} must be within 0..1, got {value!r}")
        if self.max_talk_s < 0:
            raise ValueError(f"LostCallerBlock.max_talk_s must be >= 0, got {self.max_talk_s}")


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
