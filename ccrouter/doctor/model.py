"""The doctor's pure side: a check's result (ok / warn / fail with the fix) and the comparisons
of what Asterisk reports with what ccrouter needs. No I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -- fix: {self.fix}" if self.fix and self.status != "ok" else ""
        return f"{self.status:<4} {self.name}: {self.detail}{fix}"


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check failed, else 0 (warnings do not fail)."""
    return 1 if any(c.status == "fail" for c in checks) else 0


# -- the dialplan ------------------------------------------------------------------------
Step = tuple[str, int, str]
"""(extension, priority, `App(data)`) — one dialplan priority."""

_PRIO = re.compile(r"^(n|\d+)(?:\([^)]*\))?$")


def extension_steps(text: str) -> dict[str, list[Step]]:
    """An extensions.conf text (the generated file) -> context -> its priorities, numbered as
    pbx_config numbers them (`n` = previous + 1, `same =>` continues the last `exten =>`)."""
    out: dict[str, list[Step]] = {}
    ctx, exten, prio = "", "", 0
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            ctx = line[1:line.index("]")]
            out.setdefault(ctx, [])
            continue
        key, sep, value = line.partition("=>")
        key = key.strip()
        if not sep or not ctx or key not in ("exten", "same"):
            continue
        fields = value.strip().split(",", 2) if key == "exten" else ["", *value.strip()
                                                                     .split(",", 1)]
        if len(fields) < 3 or not _PRIO.match(fields[1].strip()):
            continue
        if key == "exten":
            exten = fields[0].strip()
        p = fields[1].strip().split("(", 1)[0]
        prio = prio + 1 if p == "n" else int(p)
        app = fields[2].strip()
        out[ctx].append((exten, prio, app if app.endswith(")") else f"{app}()"))
    return out


_SHOW_LINE = re.compile(r"^  ('(?P<exten>[^']*)' =>|\s*\[[^\]]*\])?\s*(?P<prio>\d+)\. "
                        r"(?P<app>.*\S)\s+\[[^\[\]]*\]$")
NO_CONTEXT = "There is no existence of"


def shown_steps(output: Sequence[str]) -> list[Step] | None:
    """The priorities in a CLI `dialplan show CONTEXT` output (main/pbx.c), None when the
    context does not exist."""
    if any(line.startswith(NO_CONTEXT) for line in output):
        return None
    steps: list[Step] = []
    exten = ""
    for line in output:
        m = _SHOW_LINE.match(line)
        if m is None:
            continue
        if m.group("exten") is not None:
            exten = m.group("exten")
        steps.append((exten, int(m.group("prio")), m.group("app")))
    return steps


def compare_context(name: str, wanted: Sequence[Step], shown: Sequence[Step] | None,
                    regenerate: str) -> Check:
    check = f"dialplan {name}"
    if shown is None:
        return fail(check, "context not loaded in Asterisk",
                    "`#include extensions_ccrouter.conf` in extensions.conf, then "
                    "`dialplan reload`")
    missing = [s for s in wanted if s not in shown]
    extra = [s for s in shown if s not in wanted]
    if not missing and not extra:
        return ok(check, f"loaded, {len(wanted)} priorities as generated")
    first = (missing or extra)[0]
    return fail(check, f"differs from what `ccrouter dialplan` writes now ({len(missing)} "
                f"missing, {len(extra)} other; e.g. {'missing' if missing else 'other'} "
                f"{first[0]},{first[1]},{first[2]})",
                f"{regenerate}, copy the files to /etc/asterisk/, `dialplan reload`")


# -- queues ------------------------------------------------------------------------------
def conf_sections(text: str) -> dict[str, dict[str, str]]:
    """queues.conf-style text -> section -> first value of each key (`general` included)."""
    out: dict[str, dict[str, str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            section = line[1:line.index("]")]
            out.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        if sep and section:
            out[section].setdefault(key.strip(), value.removeprefix(">").strip())
    return out


def compare_queues(generated: str, loaded: Mapping[str, str], regenerate: str) -> Check:
    """`loaded`: queue -> strategy, from QueueStatus's QueueParams."""
    wanted = {q: o.get("strategy", "ringall") for q, o in conf_sections(generated).items()
              if q != "general"}
    missing = sorted(set(wanted) - set(loaded))
    if missing:
        return fail("queues", f"{len(missing)} of {len(wanted)} generated queues not loaded "
                    f"({', '.join(missing[:5])})",
                    "`#include queues_ccrouter.conf` in queues.conf, then "
                    "`module reload app_queue.so`")
    other = sorted(q for q, s in wanted.items() if loaded[q] != s)
    if other:
        q = other[0]
        return fail("queues", f"{len(other)} queues differ from the generated file (e.g. {q}: "
                    f"strategy {loaded[q]}, generated {wanted[q]})",
                    f"{regenerate}, copy queues_ccrouter.conf, `module reload app_queue.so`")
    return ok("queues", f"{len(wanted)} generated queues loaded with their strategies")


def rule_lines(queuerules: str) -> dict[str, list[str]]:
    """The generated queuerules text -> rule -> the lines `queue rules show` prints for it
    (app_queue.c: `\tAfter N seconds, adjust QUEUE_MAX_PENALTY to|by X, ...`; a signed or
    empty value is relative, a missing min/raise is `by 0`)."""
    out: dict[str, list[str]] = {}
    for name, _ in conf_sections(queuerules).items():
        out[name] = []
    section = ""
    for raw in queuerules.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            section = line[1:line.index("]")]
            continue
        key, sep, value = line.partition("=>")
        if not sep or key.strip() != "penaltychange" or section not in out:
            continue
        seconds, *rest = [v.strip() for v in value.split(",")]
        mx, mn, rs = (*rest, "", "", "")[:3]

        def adj(v: str) -> str:
            return f"by {int(v or 0)}" if not v or v[0] in "+-" else f"to {int(v)}"

        out[section].append(f"\tAfter {int(seconds)} seconds, adjust QUEUE_MAX_PENALTY {adj(mx)}, "
                            f"adjust QUEUE_MIN_PENALTY {adj(mn)} and adjust QUEUE_RAISE_PENALTY "
                            f"{adj(rs)}")
    return {k: v for k, v in out.items() if k != "general"}


def shown_rules(output: Sequence[str]) -> dict[str, list[str]]:
    """`queue rules show` output -> rule -> its `After ...` lines."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output:
        if line.startswith("Rule: "):
            current = out.setdefault(line[6:].strip(), [])
        elif current is not None and line.strip().startswith("After "):
            current.append("\t" + line.strip())
    return out


def compare_rules(wanted: Mapping[str, list[str]], shown: Mapping[str, list[str]],
                  regenerate: str) -> Check:
    missing = sorted(set(wanted) - set(shown))
    if missing:
        return fail("queue rules", f"{len(missing)} of {len(wanted)} generated rules not loaded "
                    f"({', '.join(missing[:5])})",
                    "`#include queuerules_ccrouter.conf` in queuerules.conf, then "
                    "`module reload app_queue.so`")
    other = sorted(r for r in wanted if wanted[r] != shown[r])
    if other:
        return fail("queue rules", f"{len(other)} rules differ from the generated file "
                    f"(e.g. {other[0]})",
                    f"{regenerate}, copy queuerules_ccrouter.conf, `module reload app_queue.so`")
    return ok("queue rules", f"{len(wanted)} generated rules loaded as generated")


def persistent_check(general: Mapping[str, str]) -> Check:
    """queues.conf [general] as GetConfig shows it (app_queue's default is `no`)."""
    value = general.get("persistentmembers", "no").lower()
    if value in ("yes", "true", "y", "t", "1", "on"):
        return fail("persistentmembers", "queues.conf says persistentmembers = yes: Asterisk "
                    "would restore members ccrouter removed",
                    "set `persistentmembers = no` in queues.conf [general], then "
                    "`module reload app_queue.so`")
    return ok("persistentmembers", f"persistentmembers = {value}")


# -- devices and clock -------------------------------------------------------------------
BAD_STATES = frozenset({"INVALID", "UNKNOWN"})


def device_checks(interfaces: Mapping[str, str], states: Mapping[str, str]) -> list[Check]:
    """`interfaces`: operator id -> the device app_queue watches; `states`: DeviceStateList."""
    out = []
    for op, iface in interfaces.items():
        state = states.get(iface)
        name = f"operator {op}"
        if state is None or state in BAD_STATES:
            out.append(fail(name, f"{iface} is unknown to Asterisk (device state "
                            f"{state or 'not listed'})",
                            f"create the device {iface} in Asterisk (e.g. the pjsip.conf "
                            f"endpoint), or correct operators[{op}].interface/state_interface"))
        elif state == "UNAVAILABLE":
            out.append(warn(name, f"{iface} is UNAVAILABLE (not registered)",
                            "register the phone before the operator logs in"))
        else:
            out.append(ok(name, f"{iface} {state}"))
    return out


def skew_check(asterisk_epoch: float, local_epoch: float) -> Check:
    skew = asterisk_epoch - local_epoch
    detail = f"Asterisk's clock is {skew:+.1f} s from this host's"
    fix = "run NTP (chrony/systemd-timesyncd) on both hosts"
    if abs(skew) >= 30:
        return fail("clock", detail, fix)
    if abs(skew) >= 2:
        return warn("clock", detail, fix)
    return ok("clock", detail)
