"""The simulator's operator-first callback leg, on the wire, as Asterisk runs the generated
`ccrouter-callback-operator` context (apps/app_dial.c, apps/app_userevent.c and
main/stasis_channels.c `multi_user_event_to_ami`: `Event: UserEvent`, `Privilege: user,all`,
the channel snapshot, `UserEvent: <name>`, then the body's `Key: Value` lines). ccrouter's
translator reads it back as a `UserEventRaised`."""

from __future__ import annotations

from ccrouter import dialplan as dp
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.translate import translate
from ccrouter.sim import PbxSimulator, SimCustomer, SimOperator
from ccrouter.sim.testing import AmiClient

SNAPSHOT = ["Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
            "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context",
            "Exten", "Priority", "Uniqueid", "Linkedid"]  # fmt: skip


async def _run(operator: SimOperator, customer: SimCustomer) -> tuple[list[dict[str, str]],
                                                                        bytes]:  # fmt: skip
    sim = PbxSimulator(agi_port=1, time_scale=50.0, noise=True)
    sim.add_queue("wallet-ru", timeout=10)
    sim.add_operator(operator)
    sim.add_member("wallet-ru", operator.interface, name="Dilnoza")
    sim.add_customer(customer)
    await sim.start()
    ami = await AmiClient.connect(sim.ami_port)
    try:
        await ami.login()
        await ami.until("SuccessfulAuth")
        variables = (f"{dp.VAR_CARD}=0000017,{dp.VAR_WHISPER}=cb-whisper,"
                     f"{dp.VAR_DIAL}=PJSIP/{customer.number}@trunk,{dp.VAR_DIAL_TIMEOUT}=10")
        await ami.send("Originate", ActionID="o-1", ChannelId="cb-o-1",
                       Channel=operator.interface, Context=dp.CONTEXT_CALLBACK_OPERATOR,
                       Exten="s", Priority="1", Timeout="8000", Async="true",
                       Variable=variables)  # fmt: skip
        wanted = "UserEvent" if not operator.no_answer else "OriginateResponse"
        msgs = await ami.until(wanted, timeout=5)
        if wanted == "UserEvent":
            msgs += await ami.until("Hangup", timeout=5, Uniqueid="cb-o-1")
        return [m for m in msgs if "Event" in m], sim.sent_bytes(0)
    finally:
        await ami.close()
        await sim.close()


async def test_answered_callback_reports_answer_in_a_user_event() -> None:
    events, raw = await _run(SimOperator("PJSIP/1001", answer_after_s=1, talk_time_s=3),
                             SimCustomer("79001110000", answer_after_s=1))  # fmt: skip
    names = [m["Event"] for m in events]
    resp = events[names.index("OriginateResponse")]
    assert (resp["Response"], resp["Reason"], resp["Uniqueid"]) == ("Success", "4", "cb-o-1")
    exts = [(m["Application"], m["AppData"]) for m in events if m["Event"] == "Newexten"]
    assert ("ExecIf", "1?Playback(cb-whisper)") in exts
    assert ("Dial", "PJSIP/79001110000@trunk,10") in exts
    dial_end = [m for m in events if m["Event"] == "DialEnd" and m.get("Uniqueid") == "cb-o-1"
                and "DestChannel" in m and m["DestChannel"].startswith("PJSIP/trunk-")]
    assert dial_end and dial_end[-1]["DialStatus"] == "ANSWER"
    user = events[names.index("UserEvent")]
    # the operator's channel reports, before it hangs up
    assert names.index("UserEvent") < max(i for i, m in enumerate(events)
                                         if m["Event"] == "Hangup" and m["Uniqueid"] == "cb-o-1")
    start = raw[raw.index(b"Event: UserEvent\r\n"):]
    block = start[:start.index(b"\r\n\r\n")].decode()
    keys = [line.split(": ", 1)[0] for line in block.split("\r\n")]
    assert keys == ["Event", "Privilege", *SNAPSHOT, "UserEvent", "Card", "DialStatus",
                    "AnsweredTime"]  # fmt: skip
    assert "Privilege: user,all" in block and "Exten: h" in block
    assert (user["UserEvent"], user["Card"], user["DialStatus"], user["AnsweredTime"]) == (
        dp.USER_EVENT_CALLBACK, "0000017", "ANSWER", "3")
    e = translate(user, 1.0)
    assert isinstance(e, ev.UserEventRaised)
    assert (e.name, e.uniqueid, e.get("DialStatus"), e.get("AnsweredTime")) == (
        dp.USER_EVENT_CALLBACK, "cb-o-1", "ANSWER", "3")
    assert dict(e.body) == {"Card": "0000017", "DialStatus": "ANSWER", "AnsweredTime": "3"}


async def test_busy_customer_and_absent_operator() -> None:
    events, _ = await _run(SimOperator("PJSIP/1001", answer_after_s=1),
                           SimCustomer("79001110000", answer="busy", answer_after_s=1))
    user = next(m for m in events if m["Event"] == "UserEvent")
    assert (user["DialStatus"], user["AnsweredTime"]) == ("BUSY", "")
    events, _ = await _run(SimOperator("PJSIP/1001", no_answer=True),
                           SimCustomer("79001110000"))
    names = [m["Event"] for m in events]
    assert "UserEvent" not in names  # the context never ran
    resp = events[-1]
    assert (resp["Event"], resp["Response"], resp["Reason"]) == (
        "OriginateResponse", "Failure", "3")
    assert names.index("Hangup") < names.index("OriginateResponse")
