"""Quality control endpoints: listen in on a live call (listen / whisper / barge), the card's
listening sessions, QC grades on a card, an operator's last grades, and the QC report.

Who may listen in and who may grade is decided by `ccrouter.qc.model.may_spy` / `may_grade`
only; the endpoints take every role and ask those. The `qc:` settings are those the daemon
started with (a config reload lists `qc` under restart_required).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import zoneinfo
from typing import TYPE_CHECKING, Any, Final, Literal

from aiohttp import web
from pydantic import Field

from ccrouter.qc.model import (
    MODES,
    GradeError,
    GradeRow,
    SpyRefused,
    grade,
    may_grade,
    may_spy,
    summarise,
)
from ccrouter.qc.spy import SpyService
from ccrouter.qc.store import QcStore
from ccrouter.web.api import (
    ALL_ROLES,
    STAFF,
    ApiError,
    Call,
    Endpoint,
    Input,
    Scoping,
    bad_request,
)
from ccrouter.web.auth import Role
from ccrouter.web.context import WebContext
from ccrouter.web.scope import may_act_on

if TYPE_CHECKING:
    from ccrouter.runtime import Daemon

MAX_PERIOD_S: Final = 366 * 86400
DEFAULT_PERIOD_S: Final = 31 * 86400
CSV_COLUMNS: Final = ("section", "operator", "team", "start", "grades", "average", "lowest",
                      "highest")  # fmt: skip


class SpyBody(Input):
    mode: Literal["listen", "whisper", "barge"] = Field(
        default="listen", description="listen (quiet), whisper (to the operator only) or "
        "barge (both hear the supervisor)")


class GradeBody(Input):
    items: dict[str, bool] = Field(description="checklist item id -> met (every item)")
    comment: str = Field(default="", max_length=4000, pattern=r"^[^\x00]*$")


class QcQuery(Input):
    from_: dt.datetime | None = Field(default=None, alias="from",
                                      description="graded at or after (default: 31 days ago)")
    to: dt.datetime | None = Field(default=None, description="graded before (default: now)")
    operator: str | None = Field(default=None, min_length=1, max_length=100,
                                 description="operator id (config operators[].id)")
    interval: Literal["day", "week", "month"] = "day"
    format: Literal["json", "csv"] | None = None


class LastQuery(Input):
    operator: str | None = Field(default=None, min_length=1, max_length=100,
                                 description="operator id (config operators[].id); default: "
                                 "an operator's own, staff: every operator's")
    limit: int | None = Field(default=None, ge=1, le=50,
                              description="how many (default: qc.last_grades)")


def _number(call: Call) -> str:
    number = call.path["number"]
    if not number.isascii() or not number.isdigit() or len(number) > 20:
        raise bad_request("number", "number: a card number is digits only")
    return number


def _iso(ts: float, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(tz)).isoformat()


def _csv(report: dict[str, Any]) -> web.Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def row(section: str, op: str, team: str, start: str, r: dict[str, Any]) -> None:
        w.writerow([section, op, team, start, *("" if r[k] is None else r[k]
                                                for k in CSV_COLUMNS[4:])])

    row("total", "", "", report["from"], report["total"])
    for r in report["operators"]:
        row("operator", r["operator"], "", report["from"], r)
    for r in report["teams"]:
        row("team", "", r["team"], report["from"], r)
    for r in report["periods"]:
        row(report["interval"], r["operator"], "", r["start"], r)
    return web.Response(text=buf.getvalue(), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="qc.csv"'})


async def site(daemon: Daemon, ctx: WebContext) -> list[Endpoint]:
    store = QcStore(daemon.engine)
    spy: SpyService | None = daemon.qc
    qc_settings = daemon.settings.qc  # as started: a config reload lists `qc` as needing a restart

    async def card_of(number: str) -> dict[str, Any]:
        await daemon.writer.flush()
        card = await daemon.store.get(number)
        if card is None:
            raise ApiError(404, f"no card {number}")
        return card

    def operator_id(interface: str | None, member: str | None) -> str:
        op = ctx.operator_by_interface(interface or "")
        return op.id if op is not None else (member or interface or "")

    async def listen(call: Call) -> Any:
        number, body = _number(call), call.body
        if spy is None:
            raise ApiError(409, "live listening is not running (the qc feature is off)")
        try:
            target = spy.target(number)
        except LookupError as exc:
            raise ApiError(404, str(exc)) from None
        except SpyRefused as exc:
            raise ApiError(409, str(exc)) from None
        why = may_spy(call.who, operator_id(target.interface, target.operator))
        if why is not None:
            raise ApiError(403, why)
        s = qc_settings.spy
        device = s.devices.get(call.who.name)
        if device is None:
            raise ApiError(409, f"no phone to ring for {call.who.name!r}: add it to "
                           f"qc.spy.devices ({call.who.name}: PJSIP/...)")
        try:
            return await spy.start(target, who=call.who.name, role=call.who.role.value,
                                   mode=body.mode, device=device, caller_id=s.caller_id,
                                   timeout_s=s.ring_timeout_s)  # fmt: skip
        except SpyRefused as exc:
            raise ApiError(409, str(exc)) from None

    async def spies(call: Call) -> Any:
        number = _number(call)
        await card_of(number)
        return await store.spies(number)

    async def add_grade(call: Call) -> Any:
        number, body = _number(call), call.body
        card = await card_of(number)
        op = operator_id(card.get("interface"), card.get("operator"))
        why = may_grade(call.who, op)
        if why is not None:
            raise ApiError(403, why)
        if card.get("answered_at") is None:
            raise ApiError(409, f"card {number}: the call was not answered (nothing to grade)")
        try:
            g = grade(qc_settings.checklist, body.items)
        except GradeError as exc:
            raise bad_request(exc.field, str(exc)) from None
        return await store.add_grade(card=number, operator=op, interface=card.get("interface")
                                     or "", queue=card.get("queue") or "", at=time.time(),
                                     by=call.who.name, score=g.score, items=g.items,
                                     comment=body.comment)  # fmt: skip

    async def card_grades(call: Call) -> Any:
        number = _number(call)
        card = await card_of(number)
        if call.who.role is Role.OPERATOR and card.get("interface") != call.who.interface:
            raise ApiError(403, "operators see the grades of their own calls only")
        return {"recorded": await store.recorded(number),
                "grades": await store.grades_of_card(number)}

    async def last_grades(call: Call) -> Any:
        op_id = call.query.operator
        if call.who.role is Role.OPERATOR:
            op_id = op_id or call.who.operator
            if op_id != call.who.operator:
                raise ApiError(403, "operators see their own grades only")
        if op_id is not None and ctx.operator(op_id) is None:
            raise bad_request("operator", f"operator: unknown operator {op_id!r}")
        if op_id is not None and not may_act_on(call.who, operator=op_id):
            raise ApiError(403, f"operator {op_id!r} is outside this token's teams")
        limit = call.query.limit or qc_settings.last_grades
        rows = await store.grades(start=0.0, end=time.time() + 1,
                                  operators=[op_id] if op_id else _team(call), limit=limit,
                                  newest_first=True)  # fmt: skip
        return {"operator": op_id, "grades": rows}

    def _team(call: Call) -> list[str]:
        """A team supervisor's operators (none of another team's grades); [] = everyone."""
        return sorted(call.who.members) if call.who.teams is not None else []

    async def checklist(call: Call) -> Any:
        return {"items": [i.model_dump() for i in qc_settings.checklist], "modes": MODES}

    async def report(call: Call) -> Any:
        q: QcQuery = call.query
        tz = ctx.settings.reports.timezone
        now = time.time()
        end = ctx.to_epoch(q.to) if q.to else now
        start = ctx.to_epoch(q.from_) if q.from_ else end - DEFAULT_PERIOD_S
        if end <= start:
            raise bad_request("to", "to: must be after from")
        if end - start > MAX_PERIOD_S:
            raise bad_request("to", "to: the period is limited to 366 days")
        if q.operator and ctx.operator(q.operator) is None:
            raise bad_request("operator", f"operator: unknown operator {q.operator!r}")
        if q.operator and not may_act_on(call.who, operator=q.operator):
            raise ApiError(403, f"operator {q.operator!r} is outside this token's teams")
        rows = await store.grades(start=start, end=end,
                                  operators=[q.operator] if q.operator else _team(call))
        team_of = {op: t.name for t in reversed(ctx.settings.teams) for op in t.operators}
        out = summarise((GradeRow(r["operator"], team_of.get(r["operator"], ""), r["graded_at"],
                                  r["score"]) for r in rows), q.interval, tz)  # fmt: skip
        report = {"from": _iso(start, tz), "to": _iso(end, tz), "interval": q.interval,
                  "operator": q.operator, **out}  # fmt: skip
        wants_csv = q.format == "csv" or (
            q.format is None and "text/csv" in call.request.headers.get("Accept", ""))
        return _csv(report) if wants_csv else report

    live = {"number": "card number of a call in progress"}
    num = {"number": "card number"}
    return [
        Endpoint("POST", "/api/v1/calls/{number}/spy", "Listen in on a call in progress from the "
                 "supervisor's own phone (qc.spy.devices): listen, whisper or barge (ChanSpy); "
                 "supervisors and admins", listen, STAFF, body=SpyBody, path_params=live),
        Endpoint("GET", "/api/v1/cards/{number}/spy", "Who listened in on the card's call, how "
                 "and how long", spies, STAFF, path_params=num),
        Endpoint("POST", "/api/v1/cards/{number}/grades", "Grade the card's call against "
                 "qc.checklist (score 0-100, comment); supervisors and admins", add_grade,
                 STAFF, body=GradeBody, path_params=num),
        Endpoint("GET", "/api/v1/cards/{number}/grades", "The card's QC grades (operators: "
                 "their own calls)", card_grades, ALL_ROLES, path_params=num),
        Endpoint("GET", "/api/v1/qc/grades", "The latest QC grades of an operator (operators: "
                 "their own; team supervisors: their teams') or of everyone", last_grades,
                 ALL_ROLES, LastQuery, scope=Scoping.FILTERED),
        Endpoint("GET", "/api/v1/qc/checklist", "The QC checklist and the listening modes",
                 checklist, ALL_ROLES),
        Endpoint("GET", "/api/v1/reports/qc", "QC grades per operator and period (day, week, "
                 "month): count, average, lowest, highest (JSON, or CSV with Accept: text/csv "
                 "or ?format=csv); per team when teams are configured", report, STAFF, QcQuery,
                 csv=True, scope=Scoping.FILTERED),
    ]
