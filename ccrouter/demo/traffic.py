"""The demo's callers: Poisson arrivals at the day's rate (or a flat rate), IVR keys as callers
press them, and a few repeat callers who quote the card number of an earlier answered call.
Every caller's number can be called back (a customer behind the simulator's trunk)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ccrouter.config import Settings
from ccrouter.demo.day import DayClock, rate_at
from ccrouter.sim import PbxSimulator, SimCall, SimCaller, SimCustomer

REPEAT_SHARE = 0.08
"""Of the callers, this share (once answered calls exist) call again quoting their card."""


def ivr_answers(settings: Settings, rng: random.Random, card: str = "") -> tuple[str, ...]:
    """A demo caller's keys for the example IVR: language, main menu, request number prompt
    (with `card`: 1, then the card number), then a survey rating. Some press nothing or a
    wrong key, as callers do."""
    if not settings.ivr.enabled:
        return ()
    language = rng.choice(["1", "1", "2", "3", "", "7"])
    main = rng.choice(["1", "1", "2", "2", "0", "4", "3"]) if not card else rng.choice("12")
    after = {"3": rng.choice(["40123456#", "77123456#", "99999#"])}.get(main, "")
    request = "1" if card else rng.choice(["2", "", "1"])
    quoted = f"{card}#" if card else ("1234567#" if request == "1" else "")  # a mistyped one
    rating = rng.choice(["5", "5", "4", "3", "1", ""])
    return tuple(k for k in (language, main, after, request, quoted, rating) if k) or ("",)


@dataclass
class Traffic:
    sim: PbxSimulator
    settings: Settings
    rng: random.Random
    mean_rate: float
    clock: DayClock | None = None
    calls: list[SimCall] = field(default_factory=list)
    answered: list[tuple[str, str]] = field(default_factory=list)
    """(number, card) of answered calls: who may call again quoting the card."""
    repeats: int = 0

    def caller(self) -> SimCaller:
        dids = list(self.settings.routing.did) or ["2000"]
        card = ""
        if self.answered and self.rng.random() < REPEAT_SHARE:
            number, card = self.rng.choice(self.answered)
            self.repeats += 1
        else:
            number = "7" + "".join(self.rng.choice("0123456789") for _ in range(10))
            self.sim.add_customer(SimCustomer(
                number, answer=self.rng.choice(["answer", "answer", "answer", "busy",
                                                "no_answer"]),
                answer_after_s=self.rng.uniform(2, 8), patience_s=600))  # fmt: skip
        return SimCaller(number=number, name="Demo caller", dialled=self.rng.choice(dids),
                         patience_s=self.rng.uniform(5, 120),
                         dtmf=ivr_answers(self.settings, self.rng, card))  # fmt: skip

    def place(self) -> SimCall:
        call = self.sim.place_call(self.caller())
        self.calls.append(call)
        call.when_finished(self._finished)
        return call

    def _finished(self, call: SimCall) -> None:
        card = call.variables.get("CCROUTER_CARD", "")
        if call.outcome == "answered" and card:
            self.answered.append((call.caller.number, card))

    def rate(self, now: float) -> float:
        return self.mean_rate if self.clock is None else rate_at(self.mean_rate, self.clock, now)

    async def run(self, until: float | None, stop: asyncio.Event,
                  now: Callable[[], float]) -> None:  # fmt: skip
        """Place calls until real time `until` (None: until `stop`)."""
        while not stop.is_set() and (until is None or now() < until):
            gap = self.rng.expovariate(self.rate(now()))
            if until is not None:
                gap = min(gap, max(0.0, until - now()))
            try:
                await asyncio.wait_for(stop.wait(), gap)
                return
            except TimeoutError:
                pass
            if until is None or now() < until:
                self.place()
