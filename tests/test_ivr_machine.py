"""The pure IVR state machine: every transition kind (no event loop, no I/O)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ccrouter.ivr.model import machine as ivr
from ccrouter.ivr.model.machine import (
    Announcement,
    Ask,
    CallStart,
    Check,
    Checked,
    Choice,
    Collect,
    CollectKind,
    Done,
    End,
    Entered,
    Finish,
    IvrError,
    IvrSpec,
    Kind,
    Menu,
    NoInput,
    OutOfHours,
    Play,
    Pressed,
    Read,
    SetLanguage,
)
from ccrouter.schedule import Schedule

NIGHT = Schedule.build("UTC", {})  # never open

CARD = Collect(CollectKind.CARD, "enter-card", max_digits=10, retries=1,
               invalid_prompt="bad-card")
ACCOUNT = Collect(CollectKind.ACCOUNT, "enter-account", retries=1)
SPEC = IvrSpec(
    menus={
        "lang": Menu("lang", ("choose-lang",), {
            "1": Choice(Kind.LANGUAGE, "ru", next="main"),
            "2": Choice(Kind.LANGUAGE, "uz", next="main"),
        }, default=Choice(Kind.LANGUAGE, "ru", next="main"), retries=1,
            invalid_prompt="invalid", timeout_prompt="no-input"),
        "main": Menu("main", ("main-1", "main-2"), {
            "1": Choice(Kind.PRODUCT, "wallet"),
            "2": Choice(Kind.PRODUCT, "terminal", next="terminal"),
            "3": Choice(Kind.COLLECT, next=None, collect=CARD),
            "4": Choice(Kind.COLLECT, collect=ACCOUNT),
            "5": Choice(Kind.MESSAGE, "balance-info"),
            "6": Choice(Kind.VOICEMAIL, "100@default"),
            "7": Choice(Kind.FEATURE, "callback"),  # the callbacks feature's end
            "0": Choice(Kind.TARGET, "general"),
            "9": Choice(Kind.REPEAT),
            "*": Choice(Kind.BACK),
            "#": Choice(Kind.HANGUP),
        }, default=Choice(Kind.TARGET, "general"), retries=2),
        "terminal": Menu("terminal", ("terminal-menu",), {
            "1": Choice(Kind.ROUTE),
            "*": Choice(Kind.BACK),
            "8": Choice(Kind.MENU, "main"),
        }),
    },
    start="lang",
    general_target="general",
    default_product="general",
    greeting=("welcome",),
    language_menu="lang",
    target_products={"general": "general"},
)


def run(spec: IvrSpec, call: CallStart, events: list[ivr.Event]) -> tuple[ivr.IvrState,
                                                                          list[ivr.Step]]:
    state, step = ivr.start(spec, call)
    steps = [step]
    for event in events:
        state, step = ivr.advance(spec, state, event)
        steps.append(step)
    return state, steps


def test_language_then_product_routes_with_both() -> None:
    state, steps = run(SPEC, CallStart(now=0), [Done(), Pressed("2"), Done(), Pressed("1")])
    assert steps == [
        Play(("welcome",)),
        Ask("lang", ("choose-lang",), 5000),
        SetLanguage("uz"),
        Ask("main", ("main-1", "main-2"), 5000),
        Finish(End.ROUTE),
    ]
    assert (state.language, state.product) == ("uz", "wallet")
    assert state.path == ("start", "menu:lang", "key:2", "language:uz", "menu:main", "key:1",
                          "product:wallet", "route")


def test_invalid_key_and_timeout_reprompt_then_default() -> None:
    state, steps = run(SPEC, CallStart(now=0),
                       [Done(), Pressed("7"), Done(), NoInput(), Done()])
    assert steps[1:] == [
        Ask("lang", ("choose-lang",), 5000),
        Play(("invalid",)), Ask("lang", ("choose-lang",), 5000),
        SetLanguage("ru"),  # retries=1 exhausted -> default choice
        Ask("main", ("main-1", "main-2"), 5000),
    ]
    assert state.path[1:6] == ("menu:lang", "invalid:7", "timeout", "default", "language:ru")


def test_timeout_prompt_is_played_on_no_input() -> None:
    _, steps = run(SPEC, CallStart(now=0), [Done(), NoInput()])
    assert steps[2] == Play(("no-input",))


def test_submenu_back_repeat() -> None:
    call = CallStart(now=0, language="ru")  # dialplan gave the language: menu skipped
    state, steps = run(SPEC, call, [Done(), Done(), Pressed("2"), Pressed("*"), Pressed("9"),
                                    Pressed("2"), Pressed("8")])
    assert steps[:2] == [Play(("welcome",)), SetLanguage("ru")]
    assert steps[2:] == [
        Ask("main", ("main-1", "main-2"), 5000),
        Ask("terminal", ("terminal-menu",), 5000),
        Ask("main", ("main-1", "main-2"), 5000),  # back
        Ask("main", ("main-1", "main-2"), 5000),  # repeat
        Ask("terminal", ("terminal-menu",), 5000),
        Ask("main", ("main-1", "main-2"), 5000),  # submenu
    ]
    assert "menu:lang:skipped" in state.path and state.stack == ("lang", "main", "terminal")


def test_remembered_language_skips_the_question_once() -> None:
    spec = replace(SPEC, greeting=())
    state, steps = run(spec, CallStart(now=0, remembered_language="uz"), [Done()])
    assert steps == [SetLanguage("uz"), Ask("main", ("main-1", "main-2"), 5000)]
    assert state.language == "uz"
    assert state.path[:3] == ("start", "menu:lang:skipped", "language:uz")
    # a language the menu does not offer: asked as usual
    _, steps = run(spec, CallStart(now=0, remembered_language="kk"), [])
    assert steps == [Ask("lang", ("choose-lang",), 5000)]


def _at_main(events: list[ivr.Event], **call: object) -> tuple[ivr.IvrState, list[ivr.Step]]:
    spec = replace(SPEC, greeting=())
    return run(spec, CallStart(now=0, language="ru", **call),  # type: ignore[arg-type]
               [Done(), *events])


def test_card_entry_valid() -> None:
    state, steps = _at_main([Pressed("3"), Entered("0000127"), Checked("0000127")])
    assert steps[2:] == [Read(CollectKind.CARD, "enter-card", 10, 7000),
                         Check(CollectKind.CARD, "0000127"), Finish(End.ROUTE)]
    assert state.card == "0000127"
    assert state.path[-4:] == ("collect:card", "entered:0000127", "card:0000127", "route")


def test_card_entry_invalid_then_timeout_goes_on_without_card() -> None:
    state, steps = _at_main([Pressed("3"), Entered("123"), Checked(None), Done(), NoInput()])
    assert steps[3:] == [Check(CollectKind.CARD, "123"), Play(("bad-card",)),
                         Read(CollectKind.CARD, "enter-card", 10, 7000), Finish(End.ROUTE)]
    assert state.card is None
    assert state.path[-4:] == ("invalid_card", "timeout", "collect_failed", "route")


def test_account_entry_sets_the_product_or_goes_to_the_general_target() -> None:
    state, steps = _at_main([Pressed("4"), Entered("4012"), Checked("terminal")])
    assert steps[-1] == Finish(End.ROUTE) and state.product == "terminal"
    assert state.account == "4012"
    state, steps = _at_main([Pressed("4"), Entered("999"), Checked(None), NoInput()])
    assert steps[-1] == Finish(End.ROUTE, target="general") and state.product is None


def test_message_voicemail_callback_target_hangup() -> None:
    _, steps = _at_main([Pressed("5"), Done()])
    assert steps[-2:] == [Play(("balance-info",)), Finish(End.HANGUP)]
    assert _at_main([Pressed("6")])[1][-1] == Finish(End.VOICEMAIL, mailbox="100@default")
    assert _at_main([Pressed("7")])[1][-1] == Finish(End.FEATURE, feature="callback")
    assert _at_main([Pressed("0")])[1][-1] == Finish(End.ROUTE, target="general")
    assert _at_main([Pressed("#")])[1][-1] == Finish(End.HANGUP)


def test_out_of_hours_when_the_product_is_chosen() -> None:
    spec = replace(SPEC, hours={"terminal": NIGHT},
                   out_of_hours=OutOfHours("closed", End.VOICEMAIL, "200@default"))
    state, steps = run(spec, CallStart(now=0, language="ru"),
                       [Done(), Done(), Pressed("2"), Done()])
    assert steps[-2:] == [Play(("closed",)),
                          Finish(End.VOICEMAIL, mailbox="200@default", out_of_hours=True)]
    assert state.path[-1] == "out_of_hours:voicemail:200@default"


def test_out_of_hours_from_the_dialled_number_skips_the_menus() -> None:
    spec = replace(SPEC, greeting=(), hours={"wallet": NIGHT}, language_menu=None)
    _, steps = run(spec, CallStart(now=0, product="wallet"), [])
    assert steps == [Finish(End.HANGUP, out_of_hours=True)]


def test_incidents_play_for_all_lines_at_start_and_per_product_once() -> None:
    incidents = (Announcement(1, "outage-all", "all"),
                 Announcement(2, "outage-wallet", "wallet", frozenset({"wallet"})),
                 Announcement(3, None, "log only", frozenset({"wallet"})),
                 Announcement(4, "outage-terminal", "t", frozenset({"terminal"})))
    spec = replace(SPEC, greeting=())
    state, steps = run(spec, CallStart(now=0, product="wallet", incidents=incidents), [])
    assert steps == [Play(("outage-all",))]
    state, step = ivr.advance(spec, state, Done())
    assert step == Play(("outage-wallet",))
    assert {"incident:1", "incident:2", "incident:3"} <= set(state.path)
    assert "incident:4" not in state.path


def test_route_checks_hours_of_the_target_product() -> None:
    spec = replace(SPEC, hours={"general": NIGHT})
    assert _at_main([Pressed("0")])[1][-1] == Finish(End.ROUTE, target="general")
    _, steps = run(spec, CallStart(now=0, language="ru"), [Done(), Done(), Pressed("0")])
    assert steps[-1] == Finish(End.HANGUP, out_of_hours=True)


def test_runaway_loop_is_routed() -> None:
    _, steps = _at_main([Pressed("9")] * ivr.MAX_INPUTS)
    assert steps[-1] == Finish(End.ROUTE)
    assert sum(isinstance(s, Ask) for s in steps) == ivr.MAX_INPUTS


def test_wrong_event_is_an_error() -> None:
    state, _ = ivr.start(SPEC, CallStart(now=0))
    with pytest.raises(IvrError):
        ivr.advance(SPEC, state, Pressed("1"))  # Play wants Done
