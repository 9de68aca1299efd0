"""A PBX simulator that ccrouter cannot tell from Asterisk 22.

It speaks real AMI (server side, byte format of the recorded transcripts in
`../shared/fixtures/asterisk/`) and real FastAGI (client side: it connects to ccrouter's AGI
port like Asterisk does), and models queues (app_queue strategies ringall, rrmemory,
rrordered, leastrecent, fewestcalls, random, linear; penalties; QUEUE_PRIO; QUEUE_MIN/
MAX_PENALTY; ring timeout, retry, wrap-up), operators and callers. It imports nothing of
ccrouter but `ccrouter.dialplan`.

    sim = PbxSimulator(agi_host="127.0.0.1", agi_port=4573, username="ccrouter",
                       secret="lab-secret", time_scale=20.0, noise=False, seed=0)
    await sim.start(host="127.0.0.1", port=0)          # AMI; sim.ami_port is the bound port
    sim.add_queue("wallet-ru", strategy="rrmemory", timeout=15, retry=1)
    sim.add_operator(SimOperator("PJSIP/1001", answer_after_s=1.0, talk_time_s=30.0))
    sim.add_member("wallet-ru", "PJSIP/1001", name="Anna")
    call = sim.place_call(SimCaller(number="79001234567", name="Ivan", dialled="2000",
                                    dtmf=["1", "1234#"]))
    await call.finished        # -> call.outcome
    await sim.close()

Each inbound call runs the ccrouter dialplan (`calls.py`): Answer, Set(CCROUTER_STATUS=),
AGI(agi://host:port/route,did=<dialled>), then Queue(CCROUTER_QUEUE) or the fallback.
Outcomes: "answered", "abandoned" (caller gave up waiting), "timeout" (queue timeout or
joinempty refused), "fallback" (CCROUTER_STATUS was not ok), "ivr_only" (ended before a
queue: hung up in the IVR, AGI HANGUP, unknown queue), "lost" (vanished in `restart()`).

Times (`answer_after_s`, `talk_time_s`, `patience_s`, queue timeouts, `prompt_s`) are simulated
seconds, divided by `time_scale` in real time. `noise=False` sends only queue/member events,
Hangup, OriginateResponse, FullyBooted and Shutdown.

DTMF: `SimCaller.dtmf` has one entry per prompt that listens for digits (STREAM FILE/GET
OPTION/SAY with escape digits, GET DATA, WAIT FOR DIGIT); "" means "presses nothing"
(timeout). A digit that interrupts a prompt leaves the rest of its entry for the next prompt.
AMI PlayDTMF adds digits too.

Originate: `Local/<exten>@ccrouter-inbound` places a Local inbound call (caller side runs the
given Context/Exten, or Application Wait(N) = hangs up after N s; variables SIM_PATIENCE,
SIM_HANGUP_AFTER, SIM_DTMF (";"-separated) shape the caller); an operator interface rings
that operator; a supervisor's phone (`add_phone(SimPhone("PJSIP/100"))`) runs an Originate of
Application ChanSpy on it (ChanSpyStart/ChanSpyStop as recorded); anything else fails
(OriginateResponse Reason 0 / "Originate failed").

Transfers: `SimOperator(..., transfer=SimTransfer("blind", "712000300"))` sends the callers
that operator answers to `712000300@ccrouter-inbound` (the dialplan runs again on the same
channel); `SimTransfer("attended", "PJSIP/1002")` consults that operator, then bridges the
caller with them (`transfer.py`: BlindTransfer / AttendedTransfer and AgentComplete Reason
transfer in Asterisk's order, shapes from its source).

Faults: `drop_ami()`, `set_half_open(True/False)`, `restart(down_s=0.0)`.
Tests: `members(queue)`, `live_channels()`, `sent_bytes(conn_index)` (first 4 MiB per
connection), `missing_sounds` (names STREAM FILE cannot find; "no-such*" never exist).
"""

from .model import Member, SimCall, SimCaller, SimCustomer, SimOperator, SimPhone, SimTransfer
from .pbx import PbxSimulator

__all__ = ["Member", "PbxSimulator", "SimCall", "SimCaller", "SimCustomer", "SimOperator",
           "SimPhone", "SimTransfer"]
