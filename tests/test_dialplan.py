"""The generated Asterisk files: committed output is current, well formed, and uses only the
names in ccrouter.dialplan."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccrouter import dialplan as dp
from ccrouter.asterisk_conf import agi_url, extensions_conf, manager_conf
from ccrouter.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "ccrouter.yaml"
ASTERISK_VARS = {"EXTEN", "AGISTATUS", "QUEUESTATUS", "CALLERID(num)",
                 "DIALSTATUS", "ANSWEREDTIME"}  # Dial() sets these (app_dial.c)
"""Asterisk's own variables/functions the dialplan may read."""


@dataclass(frozen=True)
class Step:
    context: str
    exten: str
    priority: int
    label: str | None
    app: str
    args: str
    lineno: int


def split_args(args: str) -> list[str]:
    """Split application arguments on top-level commas (not inside (), ${} or $[])."""
    out, depth, cur = [], 0, ""
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            assert depth >= 0, f"unbalanced {args!r}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    assert depth == 0, f"unbalanced {args!r}"
    return [*out, cur]


LINE = re.compile(r"^(?:exten => ([^,]+),| same => )(\d+|n)(?:\((\w+)\))?,(\w+)\((.*)\)$")


def parse(text: str) -> dict[str, list[Step]]:
    """A small extensions.conf parser: contexts, exten/same lines, priorities 1/n with labels,
    one application call per line with balanced brackets."""
    contexts: dict[str, list[Step]] = {}
    context: str | None = None
    exten: str | None = None
    priority = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        assert ";" not in line, f"line {lineno}: a ';' would start a comment: {line!r}"
        if m := re.fullmatch(r"\[([\w-]+)\]", line):
            context = m.group(1)
            assert context not in contexts, f"line {lineno}: context {context} twice"
            contexts[context] = []
            exten = None
            continue
        m = LINE.match(line)
        assert m, f"line {lineno}: not an exten/same line: {line!r}"
        assert context is not None, f"line {lineno}: outside a context"
        if m.group(1) is not None:
            exten = m.group(1)
            assert m.group(2) == "1", f"line {lineno}: an extension starts at priority 1"
            assert all(s.exten != exten for s in contexts[context]), f"{exten} twice"
            priority = 1
        else:
            assert exten is not None, f"line {lineno}: `same` before any `exten`"
            assert m.group(2) == "n", f"line {lineno}: use n after the first priority"
            priority += 1
        app, args = m.group(4), m.group(5)
        split_args(args)  # balanced
        contexts[context].append(Step(context, exten, priority, m.group(3), app, args, lineno))
    return contexts


def goto_targets(step: Step) -> list[str]:
    if step.app == "Goto":
        return [step.args]
    if step.app == "GotoIf":
        cond, _, labels = step.args.rpartition("?")
        assert cond.startswith("$[") and cond.endswith("]"), step
        return [x for x in labels.split(":") if x]
    return []


def check_jumps(contexts: dict[str, list[Step]]) -> None:
    for steps in contexts.values():
        for step in steps:
            for target in goto_targets(step):
                parts = target.split(",")
                if len(parts) == 1:  # a label in the same extension
                    assert any(
                        s.label == parts[0] and s.exten == step.exten for s in steps
                    ), f"line {step.lineno}: no label {parts[0]}"
                    continue
                assert len(parts) == 3, f"line {step.lineno}: {target}"
                ctx, ext, prio = parts
                assert ctx in contexts, f"line {step.lineno}: no context {ctx}"
                if ext != "${EXTEN}":
                    assert any(s.exten == ext for s in contexts[ctx]), f"no {ext} in {ctx}"
                assert prio == "1", target


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(EXAMPLE, {})


def with_routing(settings: Settings, **changes: object) -> Settings:
    routing = settings.routing.model_copy(update=changes)
    return settings.model_copy(update={"routing": routing})


def test_committed_files_are_the_generated_output(settings: Settings) -> None:
    committed = ROOT / "dialplan"
    assert (committed / "extensions_ccrouter.conf").read_text() == extensions_conf(settings), (
        "dialplan/ is stale: run `ccrouter dialplan --config config/ccrouter.yaml --out dialplan`"
    )
    assert (committed / "manager_ccrouter.conf").read_text() == manager_conf(
        settings.ami.username
    )


def test_generation_is_deterministic(settings: Settings) -> None:
    assert extensions_conf(settings) == extensions_conf(load_settings(EXAMPLE, {}))


def test_extensions_well_formed_and_jumps_resolve(settings: Settings) -> None:
    contexts = parse(extensions_conf(settings))
    assert set(contexts) == {dp.CONTEXT_INBOUND, dp.CONTEXT_QUEUE, dp.CONTEXT_FALLBACK,
                             dp.CONTEXT_CALLBACK, dp.CONTEXT_VOICEMAIL, dp.CONTEXT_CALLBACK_OFFER,
                             dp.CONTEXT_CALLBACK_OPERATOR, dp.CONTEXT_CALLBACK_OVERFLOW,
                             dp.CONTEXT_DOCTOR}
    check_jumps(contexts)
    inbound = {s.exten for s in contexts[dp.CONTEXT_INBOUND]}
    assert inbound == {"_X.", "_+X.", "s"}
    for steps in contexts.values():  # every extension ends the call or jumps away
        for ext in {s.exten for s in steps}:
            last = [s for s in steps if s.exten == ext][-1]
            assert last.app in {"Hangup", "Goto"}, last


def test_names_are_the_contract_constants(settings: Settings) -> None:
    text = extensions_conf(settings)
    contexts = {v for k, v in vars(dp).items() if k.startswith("CONTEXT_")}
    variables = {v for k, v in vars(dp).items() if k.startswith("VAR_")}
    scripts = {v for k, v in vars(dp).items() if k.startswith("SCRIPT_")}
    assert set(re.findall(r"^\[([\w-]+)\]", text, re.M)) <= contexts
    assert set(re.findall(r"\bccrouter-[\w-]+", text)) <= contexts
    assert set(re.findall(r"\bCCROUTER_\w+", text)) <= variables
    used = set(re.findall(r"\$\{([^}]+)\}", text))
    assert used - variables <= ASTERISK_VARS, used - variables - ASTERISK_VARS
    set_vars = set(re.findall(r"\bSet\((\w+)=", text))
    assert set_vars <= variables
    urls = re.findall(r"AGI\((agi://[^,)]+)([^)]*)\)", text)
    assert urls
    for url, args in urls:
        assert url.rsplit("/", 1)[1] in scripts
        assert url in {agi_url(settings, script) for script in scripts}
        for arg in filter(None, args.split(",")):
            assert arg.split("=", 1)[0] in dp.ROUTE_ARGS
    # every name the dialplan needs is there
    for context in (dp.CONTEXT_INBOUND, dp.CONTEXT_QUEUE, dp.CONTEXT_FALLBACK):
        assert f"[{context}]" in text
    for var in (dp.VAR_STATUS, dp.VAR_QUEUE, dp.VAR_QUEUE_TIMEOUT, dp.VAR_FALLBACK_QUEUE):
        assert "${" + var + "}" in text
    assert f'"${{{dp.VAR_STATUS}}}" != "{dp.STATUS_OK}"' in text
    assert f"{dp.ARG_DIALLED}=${{EXTEN}}" in text


def test_inbound_routes_then_queues_or_falls_back(settings: Settings) -> None:
    steps = [s for s in parse(extensions_conf(settings))[dp.CONTEXT_INBOUND] if s.exten == "_X."]
    apps = [s.app for s in steps]
    assert apps.index("Answer") < apps.index("AGI")
    status_reset = next(s for s in steps if s.app == "Set" and s.args.startswith(dp.VAR_STATUS))
    assert status_reset.args == f"{dp.VAR_STATUS}="
    assert status_reset.priority < steps[apps.index("AGI")].priority
    agi = steps[apps.index("AGI")]
    script = dp.SCRIPT_IVR if settings.ivr.enabled else dp.SCRIPT_ROUTE  # the example: ivr
    assert agi.args == f"agi://127.0.0.1:4573/{script},did=${{EXTEN}}"
    gotoif = steps[apps.index("GotoIf")]
    assert goto_targets(gotoif) == [f"{dp.CONTEXT_FALLBACK},s,1"]
    assert steps[-1].app == "Goto" and steps[-1].args == f"{dp.CONTEXT_QUEUE},s,1"


def test_queue_arguments_follow_app_queue(settings: Settings) -> None:
    steps = parse(extensions_conf(settings))[dp.CONTEXT_QUEUE]
    # (the first Queue() is the short last-agent ring: tests/test_routing_dialplan.py)
    (queue,) = [s for s in steps if s.app == "Queue" and s.label == "queue"]
    # Queue(queuename,options,URL,announceoverride,timeout,...): timeout is the 5th
    args = split_args(queue.args)
    options = "c" if settings.survey.enabled else ""  # c: the caller stays for the survey
    assert args == ["${CCROUTER_QUEUE}", options, "", "", "${CCROUTER_QUEUE_TIMEOUT}"]
    after = [s for s in steps if s.priority > queue.priority and s.app == "GotoIf"]
    statuses = {re.search(r'= "(\w+)"', s.args).group(1) for s in after}  # type: ignore[union-attr]
    assert statuses == {"TIMEOUT", "JOINEMPTY", "LEAVEEMPTY"}


def test_fallback_queue_is_configurable(settings: Settings) -> None:
    text = extensions_conf(with_routing(settings, fallback_queue="overflow"))
    fallback = parse(text)[dp.CONTEXT_FALLBACK]
    assert any(s.app == "ExecIf" and "=overflow)" in s.args for s in fallback)
    assert any(s.app == "Queue" and s.args == "${CCROUTER_FALLBACK_QUEUE}" for s in fallback)


def test_no_fallback_queue(settings: Settings) -> None:
    contexts = parse(extensions_conf(with_routing(settings, fallback_queue=None)))
    check_jumps(contexts)
    assert "QUEUESTATUS}\" =" not in extensions_conf(with_routing(settings, fallback_queue=None))
    apps = [s.app for s in contexts[dp.CONTEXT_FALLBACK]]
    # GotoIf: a voicemail overflow, a callback-offer overflow
    assert apps == ["NoOp", "GotoIf", "GotoIf", "Playback", "Hangup"]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "agi://127.0.0.1:4573/route"),
        ("10.0.0.5", "agi://10.0.0.5:4573/route"),
        ("::1", "agi://[::1]:4573/route"),
    ],
)
def test_agi_url(settings: Settings, host: str, url: str) -> None:
    agi = settings.agi.model_copy(update={"host": host})
    assert agi_url(settings.model_copy(update={"agi": agi}), dp.SCRIPT_ROUTE) == url


def test_agi_port_0_is_refused(settings: Settings) -> None:
    agi = settings.agi.model_copy(update={"port": 0})
    with pytest.raises(ValueError, match=r"agi\.port"):
        extensions_conf(settings.model_copy(update={"agi": agi}))


def test_manager_conf_filters_exactly_the_ami_events() -> None:
    text = manager_conf()
    lines = text.splitlines()
    assert "[ccrouter]" in lines
    advanced = [
        m.group(1)
        for line in lines
        if (m := re.fullmatch(r"eventfilter\(action\(include\),name\((\w+)\)\) =", line))
    ]
    assert advanced == [e for e in dp.AMI_EVENTS if e != "VarSet"]
    assert ("eventfilter(action(include),name(VarSet),header(Variable),method(exact)) = "
            "MIXMONITOR_FILENAME") in lines
    legacy = [line.removeprefix(";eventfilter = Event: ") for line in lines
              if line.startswith(";eventfilter = Event: ")]  # fmt: skip
    assert legacy == [e for e in dp.AMI_EVENTS if e != "VarSet"]
    assert not [line for line in lines if line.startswith("eventfilter =")]  # legacy stays off
    settings = dict(line.split(" = ", 1) for line in lines if re.match(r"^(read|write) = ", line))
    assert set(settings["read"].split(",")) == {"system", "call", "agent", "user", "dialplan"}
    assert {"system", "agent", "originate"} <= set(settings["write"].split(","))
    assert "[pbx-bot]" in manager_conf("pbx-bot").splitlines()


@pytest.mark.parametrize(
    "bad",
    [
        "[c]\nexten => s,1,NoOp(x\n",  # unbalanced
        "[c]\n same => n,NoOp()\n",  # same before exten
        "[c]\nexten => s,2,NoOp()\n",  # does not start at 1
        "exten => s,1,NoOp()\n",  # outside a context
        "[c]\nexten => s,1,Set(A=${B)\n",  # unbalanced ${
        "[c]\nexten => s,1,NoOp(a) ; trailing comment\n",
    ],
)
def test_parser_rejects_malformed_dialplan(bad: str) -> None:
    with pytest.raises(AssertionError):
        parse(bad)


def test_jump_checker_rejects_a_missing_target() -> None:
    with pytest.raises(AssertionError, match="no context"):
        check_jumps(parse("[c]\nexten => s,1,Goto(nowhere,s,1)\n"))
