"""The pure IVR machine on closed lines: the closed message in the caller's language, per-line
out-of-hours actions, and accounts the lookup hook sends to a target (no event loop)."""

from __future__ import annotations

from dataclasses import replace

from ccrouter.ivr.model import machine as ivr
from ccrouter.ivr.model.machine import (
    Announcement,
    Ask,
    CallStart,
    Check,
    Checked,
    CollectKind,
    Done,
    End,
    Entered,
    Finish,
    NoInput,
    OutOfHours,
    Play,
    Pressed,
    Read,
    SetLanguage,
)
from ccrouter.schedule import Schedule
from tests.test_ivr_machine import SPEC, run

NIGHT = Schedule.build("UTC", {})  # never open
CLOSED = OutOfHours("closed", End.VOICEMAIL, "100@default")
WALLET_CLOSED = OutOfHours("wallet-closed", End.FEATURE, feature="callback")
CLOSED_CALLBACK = Finish(End.FEATURE, out_of_hours=True, feature="callback")
NIGHT_SPEC = replace(SPEC, hours={"wallet": NIGHT, "terminal": NIGHT}, out_of_hours=CLOSED,
                     line_out_of_hours={"wallet": WALLET_CLOSED})  # fmt: skip


def test_closed_line_asks_the_language_first_then_plays_the_closed_message() -> None:
    state, steps = run(NIGHT_SPEC, CallStart(now=0, product="terminal"),
                       [Done(), Pressed("2"), Done(), Done()])  # fmt: skip
    assert steps == [Play(("welcome",)), Ask("lang", ("choose-lang",), 5000), SetLanguage("uz"),
                     Play(("closed",)), Finish(End.VOICEMAIL, mailbox="100@default",
                                               out_of_hours=True)]  # fmt: skip
    assert state.language == "uz"
    assert state.path == ("start", "product:terminal", "menu:lang", "key:2", "language:uz",
                          "out_of_hours:voicemail:100@default")


def test_closed_line_after_a_silent_language_menu_takes_its_default_language() -> None:
    _, steps = run(NIGHT_SPEC, CallStart(now=0, product="terminal"),
                   [Done(), NoInput(), Done(), NoInput(), Done(), Done()])  # fmt: skip
    end = Finish(End.VOICEMAIL, mailbox="100@default", out_of_hours=True)
    assert steps[-3:] == [SetLanguage("ru"), Play(("closed",)), end]


def test_closed_line_with_a_remembered_language_sets_it_before_the_message() -> None:
    state, steps = run(NIGHT_SPEC, CallStart(now=0, product="terminal", remembered_language="uz"),
                       [Done(), Done(), Done()])  # fmt: skip
    assert steps == [Play(("welcome",)), SetLanguage("uz"), Play(("closed",)),
                     Finish(End.VOICEMAIL, mailbox="100@default", out_of_hours=True)]  # fmt: skip
    assert "menu:lang" not in state.path and state.language == "uz"


def test_closed_line_with_the_language_from_the_dialplan_plays_the_message_at_once() -> None:
    _, steps = run(NIGHT_SPEC, CallStart(now=0, product="terminal", language="tg"),
                   [Done(), Done(), Done()])  # fmt: skip
    assert steps == [Play(("welcome",)), SetLanguage("tg"), Play(("closed",)),
                     Finish(End.VOICEMAIL, mailbox="100@default", out_of_hours=True)]  # fmt: skip


def test_closed_line_without_a_language_menu_plays_the_message_at_once() -> None:
    spec = replace(NIGHT_SPEC, language_menu=None, greeting=())
    _, steps = run(spec, CallStart(now=0, product="terminal"), [Done()])
    assert steps == [Play(("closed",)),
                     Finish(End.VOICEMAIL, mailbox="100@default", out_of_hours=True)]  # fmt: skip


def test_line_incidents_still_play_before_the_language_question() -> None:
    incidents = (Announcement(7, "terminal-outage", "t", frozenset({"terminal"})),)
    _, steps = run(NIGHT_SPEC, CallStart(now=0, product="terminal", incidents=incidents),
                   [Done(), Done(), Pressed("1")])  # fmt: skip
    assert steps[:3] == [Play(("welcome",)), Play(("terminal-outage",)),
                         Ask("lang", ("choose-lang",), 5000)]  # fmt: skip
    assert steps[3] == SetLanguage("ru")


def test_open_line_from_the_dialled_number_is_unchanged() -> None:
    _, steps = run(SPEC, CallStart(now=0, product="terminal"), [Done(), Pressed("1")])
    assert steps == [Play(("welcome",)), Ask("lang", ("choose-lang",), 5000), SetLanguage("ru")]


def test_a_line_with_its_own_out_of_hours_action_overrides_the_global_one() -> None:
    # Dialled: the wallet line's own prompt and callback.
    _, steps = run(NIGHT_SPEC, CallStart(now=0, product="wallet", language="ru"),
                   [Done(), Done(), Done()])  # fmt: skip
    assert steps[-2:] == [Play(("wallet-closed",)), CLOSED_CALLBACK]
    # Chosen in the menu: the same; the terminal line falls back to the global action.
    call = CallStart(now=0, language="ru")
    _, steps = run(NIGHT_SPEC, call, [Done(), Done(), Pressed("1"), Done()])
    assert steps[-2:] == [Play(("wallet-closed",)), CLOSED_CALLBACK]
    _, steps = run(NIGHT_SPEC, call, [Done(), Done(), Pressed("2"), Done()])
    assert steps[-1] == Finish(End.VOICEMAIL, mailbox="100@default", out_of_hours=True)
    assert NIGHT_SPEC.out_of_hours_for("general") == CLOSED


def _account(spec: ivr.IvrSpec, checked: Checked) -> list[ivr.Step]:
    events: list[ivr.Event] = [Done(), Pressed("1"), Done(), Pressed("4"), Entered("4012"),
                               checked]  # fmt: skip
    _, steps = run(spec, CallStart(now=0), events)
    assert steps[4:6] == [Read(CollectKind.ACCOUNT, "enter-account", 12, 7000),
                          Check(CollectKind.ACCOUNT, "4012")]  # fmt: skip
    return steps


def test_an_account_the_hook_sends_to_a_target_routes_there() -> None:
    steps = _account(SPEC, Checked("general", target="vip"))
    assert steps[-1] == Finish(End.ROUTE, target="vip")


def test_an_account_target_on_a_closed_line_gets_that_lines_out_of_hours() -> None:
    spec = replace(NIGHT_SPEC, target_products={"general": "general", "vip": "wallet"})
    steps = _account(spec, Checked("wallet", target="vip"))
    assert steps[-1] == Play(("wallet-closed",))
