"""The dialplan contract: every context, AGI script and channel variable name ccrouter uses.

`dialplan/extensions_ccrouter.conf` mirrors these names (a test checks it). The PBX simulator
imports this module and nothing else of ccrouter, so it stays an honest peer.
"""

from __future__ import annotations

from typing import Final

# --- FastAGI ---------------------------------------------------------------------------
AGI_DEFAULT_PORT: Final = 4573
SCRIPT_CALLBACK_OFFER: Final = "callback_offer"
"""AGI(agi://HOST:4573/callback_offer) — the in-queue offer: request a callback, say goodbye."""
SCRIPT_ROUTE: Final = "route"
"""AGI(agi://HOST:4573/route[,key=value...]) — picks the queue and opens the call card."""
SCRIPT_IVR: Final = "ivr"
"""AGI(agi://HOST:4573/ivr[,did=...,product=...,lang=...]) — the configured menus, then the same
variables as `route` (or CCROUTER_STATUS=hangup / voicemail). Used instead of `route` by
CONTEXT_INBOUND when the config has IVR menus."""
SCRIPT_PING: Final = "ping"
"""AGI(agi://HOST:4573/ping) — sets CCROUTER_PING=pong; `ccrouter doctor`'s test call runs it."""
SCRIPT_SURVEY: Final = "survey"
"""AGI(agi://HOST:4573/survey) after Queue(...,c,...): the 1-5 rating when the operator hung up."""

# --- contexts in dialplan/extensions_ccrouter.conf ---------------------------------------
CONTEXT_INBOUND: Final = "ccrouter-inbound"
"""Send inbound calls here: AGI route -> Queue() -> hang-up."""
CONTEXT_FALLBACK: Final = "ccrouter-fallback"
"""Where a call goes when ccrouter is down or answers CCROUTER_STATUS=error."""
CONTEXT_QUEUE: Final = "ccrouter-queue"
"""Queue() with the variables the route script set; reachable from engineers' dialplans."""
CONTEXT_VOICEMAIL: Final = "ccrouter-voicemail"
"""VoiceMail(${CCROUTER_VOICEMAIL},u): a target whose overflow step is a voicemail box."""
CONTEXT_CALLBACK_OFFER: Final = "ccrouter-callback-offer"
"""queues.conf `context`: a caller who presses the offer key in the queue lands here."""
CONTEXT_CALLBACK_OPERATOR: Final = "ccrouter-callback-operator"
"""callbacks.mode operator_first: ccrouter's Originate rings the free operator with this
context; once they answer they hear CCROUTER_WHISPER, then Dial(${CCROUTER_DIAL}) rings the
customer; the `h` extension reports the outcome as UserEvent(CcrouterCallback)."""
CONTEXT_CALLBACK_OVERFLOW: Final = "ccrouter-callback-overflow"
"""A target whose overflow step is a callback offer: CONTEXT_FALLBACK sends the caller here
(CCROUTER_OVERFLOW_CALLBACK set), the callback_offer script asks and requests it."""
CONTEXT_CALLBACK: Final = "ccrouter-callback"
"""Where an originated callback/outbound leg goes once the customer answers: the prompt in their
language, then CONTEXT_QUEUE (the Originate sets the variables, QUEUE_PRIO puts it first)."""

CONTEXT_RECORD: Final = "ccrouter-record"
"""Gosub'd from CONTEXT_QUEUE for recorded calls (recordings:): the optional announcement, then
MixMonitor(<dir>/ccrouter-<card>.<ext>,b) (b: audio only while bridged, so answered calls)."""
CONTEXT_DOCTOR: Final = "ccrouter-doctor"
CONTEXT_AGI: Final = "ccrouter-agi"
"""With several ccrouter instances: Gosub(ccrouter-agi,s,1(SCRIPT[,ARG...])) runs the FastAGI
script on the first instance that serves it (each is tried while AGISTATUS is FAILURE or the
instance set VAR_AGI_NEXT)."""
VAR_AGI_NEXT: Final = "CCROUTER_AGI_NEXT"
"""Set (to 1) by an instance that answers a node's FastAGI port without serving the node while
the instance that does comes later in the order: the subroutine tries the next one."""
VAR_AGI_ROUND: Final = "CCROUTER_AGI_ROUND"
"""2 while the subroutine tries the instances a second time (none served the script in the
first): an instance that does not serve the node then holds the call until it does."""
"""`ccrouter doctor` originates Local/s@ccrouter-doctor (Application Wait: no phone rings): it
sets CCROUTER_CARD, runs AGI(ping), reports UserEvent(CcrouterDoctor) and hangs up."""
VAR_PING: Final = "CCROUTER_PING"
PING_ANSWER: Final = "pong"
USER_EVENT_DOCTOR: Final = "CcrouterDoctor"
"""UserEvent of the doctor context; body `AgiStatus` (AGISTATUS) and `Ping` (CCROUTER_PING)."""
DOCTOR_CARD: Final = "doctor"
"""The CCROUTER_CARD value the doctor context sets (seen as ChanVariable with channelvars)."""

# --- channel variables set by the route script (read by the dialplan) --------------------
VAR_STATUS: Final = "CCROUTER_STATUS"
VAR_QUEUE: Final = "CCROUTER_QUEUE"
VAR_CARD: Final = "CCROUTER_CARD"
VAR_QUEUE_TIMEOUT: Final = "CCROUTER_QUEUE_TIMEOUT"
VAR_FALLBACK_QUEUE: Final = "CCROUTER_FALLBACK_QUEUE"
VAR_LANGUAGE: Final = "CCROUTER_LANGUAGE"
VAR_PRODUCT: Final = "CCROUTER_PRODUCT"
VAR_PROMPT: Final = "CCROUTER_PROMPT"
"""Callback/outbound leg: the sound played to the customer before the queue (may be empty)."""
VAR_CALLBACK_OF: Final = "CCROUTER_CALLBACK_OF"
"""Callback/outbound leg: the original call's card number (the operator's screen shows it)."""
VAR_FALLBACK_MAX_PENALTY: Final = "CCROUTER_FALLBACK_MAX_PENALTY"
"""QUEUE_MAX_PENALTY for the overflow/fallback queue (the first queue's rule may have raised it)."""
VAR_VOICEMAIL: Final = "CCROUTER_VOICEMAIL"
"""Overflow to voicemail: box@context (the call goes there after TIMEOUT/JOINEMPTY/LEAVEEMPTY,
or at once when CCROUTER_QUEUE is empty)."""
VAR_LAST_AGENT_QUEUE: Final = "CCROUTER_LAST_AGENT_QUEUE"
"""Last-agent routing: the personal queue of the repeat caller's last operator, rung first for
CCROUTER_LAST_AGENT_RING seconds before CCROUTER_QUEUE."""
VAR_LAST_AGENT_RING: Final = "CCROUTER_LAST_AGENT_RING"
PERSONAL_QUEUE_PREFIX: Final = "ccrouter-op-"
"""Personal (last-agent) queues are named ccrouter-op-<operator id> (queues_ccrouter.conf)."""
VAR_OVERFLOW_CALLBACK: Final = "CCROUTER_OVERFLOW_CALLBACK"
"""Overflow to a callback offer: the target whose line calls back (set by the route script;
the call goes to CONTEXT_CALLBACK_OVERFLOW after TIMEOUT/JOINEMPTY/LEAVEEMPTY, or at once when
CCROUTER_QUEUE is empty)."""
VAR_DIAL: Final = "CCROUTER_DIAL"
"""Operator-first callback: the customer's dial string (Dial()'s first argument)."""
VAR_DIAL_TIMEOUT: Final = "CCROUTER_DIAL_TIMEOUT"
"""Operator-first callback: seconds the customer's phone rings (Dial()'s second argument)."""
VAR_WHISPER: Final = "CCROUTER_WHISPER"
"""Operator-first callback: the sound the operator hears before the customer is dialled."""
USER_EVENT_CALLBACK: Final = "CcrouterCallback"
"""UserEvent name of an operator-first callback's outcome; body `Card`, `DialStatus` (Dial's
DIALSTATUS: ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, CANCEL; empty: the operator hung
up before the customer was dialled) and `AnsweredTime` (Dial's ANSWEREDTIME, seconds)."""
VAR_MIXMONITOR_FILENAME: Final = "MIXMONITOR_FILENAME"
"""Set by MixMonitor on the recorded channel (a VarSet event right before MixMonitorStart,
which carries no file name): the recording's full path as Asterisk writes it."""
RECORDING_PREFIX: Final = "ccrouter-"
"""Recordings are named ccrouter-<card number>.<ext> (the card number: digits only)."""
# Asterisk's own variables that app_queue reads before Queue():
VAR_QUEUE_PRIO: Final = "QUEUE_PRIO"
VAR_QUEUE_MAX_PENALTY: Final = "QUEUE_MAX_PENALTY"
VAR_QUEUE_MIN_PENALTY: Final = "QUEUE_MIN_PENALTY"

# Values of CCROUTER_STATUS
STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"
"""ccrouter could not decide: the dialplan goes to CONTEXT_FALLBACK."""
STATUS_HANGUP: Final = "hangup"
"""The IVR is done with the caller (message played, out of hours): the dialplan hangs up."""
STATUS_VOICEMAIL: Final = "voicemail"
"""The IVR sends the caller to VoiceMail(${CCROUTER_VOICEMAIL},u) (via CONTEXT_FALLBACK)."""
VAR_CHANNEL_LANGUAGE: Final = "CHANNEL(language)"
"""Asterisk's prompt language; the IVR sets it when the caller's language is known."""

PAUSE_STATIC_LOGGED_OUT: Final = "ccrouter-logged-out"
"""QueuePause reason of a static fallback-queue member (routing.fallback_static_members) whose
operator is logged out: AMI cannot remove a static member, so ccrouter pauses it."""

# Route script arguments (AGI(agi://host/route,product=wallet,lang=uz,...))
ARG_PRODUCT: Final = "product"
ARG_LANGUAGE: Final = "lang"
ARG_DIALLED: Final = "did"
ARG_PRIORITY: Final = "priority"
ARG_CARD: Final = "card"
ROUTE_ARGS: Final = (ARG_PRODUCT, ARG_LANGUAGE, ARG_DIALLED, ARG_PRIORITY, ARG_CARD)

# --- AMI events ccrouter subscribes to (the Filter action after login, and the eventfilter
# snippet for manager.conf in dialplan/). Everything else is filtered out at the source.
AMI_EVENTS: Final = (
    "FullyBooted",
    "Shutdown",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberStatus",
    "QueueMemberPause",
    "QueueMemberPenalty",
    "Hangup",
    "OriginateResponse",
    "UserEvent",
    "MixMonitorStart",
    "MixMonitorStop",
    "BlindTransfer",
    "AttendedTransfer",
    "ChanSpyStart",
    "ChanSpyStop",
    "VarSet",
)
AMI_VARIABLES: Final = (VAR_MIXMONITOR_FILENAME,)
"""The only VarSet events ccrouter reads (the Filter admits VarSet of these names only: a
queued call sets ~80 variables)."""
