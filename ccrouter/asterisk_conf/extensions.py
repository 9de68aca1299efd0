"""extensions_ccrouter.conf: the dialplan ccrouter's FastAGI scripts and Originates need.

`extensions_conf(settings)` writes the inbound, queue, fallback and voicemail contexts and the
callback ones (the answered customer, operator first, the in-queue and overflow offers);
`agi_url` is how Asterisk dials a script. Every context, variable and script name comes from
`ccrouter.dialplan`. Pure: settings in, text out.
"""

from __future__ import annotations

from ccrouter import dialplan as dp
from ccrouter.asterisk_conf.recording import record_context, record_step
from ccrouter.callbacks.config import callback_settings
from ccrouter.config import Settings

EXTENSIONS_FILE = "extensions_ccrouter.conf"

QUEUE_FAILURES = ("TIMEOUT", "JOINEMPTY", "LEAVEEMPTY")
"""QUEUESTATUS values after which a caller is offered the fallback queue (app_queue.c)."""

_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def agi_url(settings: Settings, script: str) -> str:
    """agi://HOST:PORT/script as Asterisk must dial it (a wildcard listen address -> loopback);
    with several instances, the first one that may serve this node."""
    host, port = settings.agi.host, settings.agi.port
    if settings.cluster.enabled:
        host, port = _instances(settings)[0]
    return _url(host, port, script)


def _instances(settings: Settings) -> list[tuple[str, int]]:
    node = settings.asterisk.node
    found = settings.cluster.agi_addresses(node, settings.asterisk.names().index(node))
    if not found:
        raise ValueError(f"no instance in cluster.instances may serve node {node!r}")
    return found


def _url(host: str, port: int, script: str) -> str:
    if port == 0:
        raise ValueError("agi.port is 0 (any free port): the dialplan needs a fixed port")
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"agi://{host}:{port}/{script}"


def agi_app(settings: Settings, script: str, args: str = "") -> str:
    """How the dialplan runs a script (`args`: ",key=value,..."): AGI(url,args); with several
    ccrouter instances a Gosub into the failover subroutine (`_agi_context`)."""
    if settings.cluster.enabled:
        return f"Gosub({dp.CONTEXT_AGI},s,1({script}{args}))"
    return f"AGI({agi_url(settings, script)}{args})"


_AGI_ARGS = 4
"""Script arguments the failover subroutine passes on (ARG2..ARG5)."""


def _agi_context(settings: Settings) -> list[str]:
    """The failover subroutine: each instance that may serve this node, in order, until one
    serves the script; then all of them once more (round 2). A dead instance fails at once
    (connection refused: AGISTATUS=FAILURE); a live one that does not hold the node's lease
    holds the call until it takes the lease (nobody holds it, or the holder comes earlier and
    did not answer; in round 2 always), or sets CCROUTER_AGI_NEXT (the holder comes later):
    the next one is tried (see `ccrouter.cluster.standby`)."""
    if not settings.cluster.enabled:
        return []
    node = settings.asterisk.node
    args = "".join(f",${{ARG{i}}}" for i in range(2, 2 + _AGI_ARGS))
    lines = [
        "",
        f"; {dp.CONTEXT_AGI}: FastAGI with failover for node {node}: Gosub({dp.CONTEXT_AGI},s,1(",
        ";   SCRIPT[,ARG...])) tries each ccrouter instance in turn while AGISTATUS=FAILURE or",
        f";   the instance set {dp.VAR_AGI_NEXT} (it does not serve the node, a later one does),",
        f";   then all once more with {dp.VAR_AGI_ROUND}=2 (an instance not serving the node",
        ";   holds the call until it does); when none serves it the caller goes on to",
        f";   {dp.CONTEXT_FALLBACK}.",
        f"[{dp.CONTEXT_AGI}]",
        f"exten => s,1,NoOp(ccrouter AGI ${{ARG1}} node {node})",
    ]
    for round_ in (1, 2):
        lines += [f" same => n,Set({dp.VAR_AGI_ROUND}={round_})"]
        for host, port in _instances(settings):
            lines += [
                f" same => n,Set({dp.VAR_AGI_NEXT}=)",
                f" same => n,AGI({_url(host, port, '${ARG1}')}{args})",
                f' same => n,GotoIf($["${{AGISTATUS}}" != "FAILURE"'
                f' & "{_var(dp.VAR_AGI_NEXT)}" = ""]?done)',
            ]
    lines += [" same => n(done),Return()"]
    return lines


def _var(name: str) -> str:
    return "${" + name + "}"


def _is(name: str, op: str, value: str) -> str:
    return f'$["{_var(name)}" {op} "{value}"]'


def extensions_conf(settings: Settings) -> str:
    own_route = agi_app(settings, dp.SCRIPT_ROUTE, f",{dp.ARG_PRODUCT}=...,{dp.ARG_LANGUAGE}=...")
    # With IVR menus configured the inbound call runs the `ivr` script (same variables at the
    # end); with the survey on, Queue() gets option c (continue when the operator hangs up).
    inbound = dp.SCRIPT_IVR if settings.ivr.enabled else dp.SCRIPT_ROUTE
    survey = agi_app(settings, dp.SCRIPT_SURVEY) if settings.survey.enabled else None
    qopts = "c" if survey else ""
    fallback = settings.routing.fallback_queue
    status, queue = dp.VAR_STATUS, dp.VAR_QUEUE
    fallback_var = dp.VAR_FALLBACK_QUEUE
    to_fallback = f"{dp.CONTEXT_FALLBACK},s,1"
    lines = [
        "; ccrouter dialplan - GENERATED by `ccrouter dialplan`; do not edit, regenerate.",
        ";",
        "; Install: copy this file to /etc/asterisk/ and add to extensions.conf",
        f";     #include {EXTENSIONS_FILE}",
        "; then send inbound calls here from your own context, e.g.",
        f";     exten => _X.,1,Goto({dp.CONTEXT_INBOUND},${{EXTEN}},1)",
        "; and run `dialplan reload` in the Asterisk CLI.",
        ";",
        f"; {dp.CONTEXT_INBOUND}: asks ccrouter's FastAGI `{dp.SCRIPT_ROUTE}` script for the queue",
        f";   (it sets {status}, {queue}, {dp.VAR_QUEUE_TIMEOUT}, {dp.VAR_CARD}, ...),",
        f";   then {dp.CONTEXT_QUEUE}. When ccrouter is down AGISTATUS=FAILURE leaves {status}",
        f";   empty, and any status but `{dp.STATUS_OK}` goes to {dp.CONTEXT_FALLBACK}.",
        f"; {dp.CONTEXT_QUEUE}: Queue() with those variables; reachable from your own dialplan",
        f";   after your own {own_route}.",
        f"; {dp.CONTEXT_FALLBACK}: a plain queue, so no call is lost while ccrouter is down.",
        "",
        f"[{dp.CONTEXT_INBOUND}]",
    ]
    did = f",{dp.ARG_DIALLED}=${{EXTEN}}"
    for exten, args in (("_X.", did), ("_+X.", did), ("s", "")):
        lines += [
            f"exten => {exten},1,NoOp(ccrouter inbound ${{EXTEN}} from ${{CALLERID(num)}})",
            " same => n,Answer()",
            f" same => n,Set({status}=)",
            f" same => n,Set({queue}=)",
            f" same => n,{agi_app(settings, inbound, args)}",
            f" same => n,NoOp(AGISTATUS=${{AGISTATUS}} {status}={_var(status)})",
            *([f" same => n,ExecIf({_is(status, '=', dp.STATUS_HANGUP)}?Hangup())"]
              if settings.ivr.enabled else []),
            f" same => n,GotoIf({_is(status, '!=', dp.STATUS_OK)}?{to_fallback})",
            f" same => n,Goto({dp.CONTEXT_QUEUE},s,1)",
        ]
    lines += [
        "",
        f"[{dp.CONTEXT_QUEUE}]",
        f"exten => s,1,NoOp(ccrouter queue {_var(queue)} card {_var(dp.VAR_CARD)})",
        f" same => n,GotoIf({_is(queue, '=', '')}?{to_fallback})",
        *record_step(settings),
        # Last-agent routing: a short ring in the last operator's personal queue first.
        f" same => n,GotoIf({_is(dp.VAR_LAST_AGENT_QUEUE, '=', '')}?queue)",
        f" same => n,Queue({_var(dp.VAR_LAST_AGENT_QUEUE)},{qopts},,,"
        f"{_var(dp.VAR_LAST_AGENT_RING)})",
        " same => n,NoOp(last agent QUEUESTATUS=${QUEUESTATUS})",
        *([f" same => n,{survey}"] if survey else []),
        # Queue(queuename,options,URL,announceoverride,timeout): timeout is the 5th argument.
        f" same => n(queue),Queue({_var(queue)},{qopts},,,{_var(dp.VAR_QUEUE_TIMEOUT)})",
        " same => n,NoOp(QUEUESTATUS=${QUEUESTATUS})",
    ]
    if survey:  # only an answered call whose operator hung up is asked (the script hangs up)
        lines += [f" same => n,{survey}"]
    if fallback is not None:
        lines += [
            f" same => n,GotoIf({_is('QUEUESTATUS', '=', s)}?{to_fallback})" for s in QUEUE_FAILURES
        ]
    lines += [" same => n,Hangup()", "", *_callback_context(), *_operator_first_context(settings),
              *_offer_context(settings)]
    lines += ["", f"[{dp.CONTEXT_FALLBACK}]"]
    to_offer = f"{dp.CONTEXT_CALLBACK_OVERFLOW},s,1"
    offer_step = f" same => n,GotoIf({_is(dp.VAR_OVERFLOW_CALLBACK, '!=', '')}?{to_offer})"
    if fallback is None:
        lines += [
            "exten => s,1,NoOp(ccrouter fallback: no fallback queue configured)",
            f" same => n,GotoIf({_is(dp.VAR_VOICEMAIL, '!=', '')}?{dp.CONTEXT_VOICEMAIL},s,1)",
            offer_step,
            " same => n,Playback(ss-noservice)",
            " same => n,Hangup()",
        ]
    else:
        lines += [
            f"exten => s,1,NoOp(ccrouter fallback {status}={_var(status)}"
            " AGISTATUS=${AGISTATUS} QUEUESTATUS=${QUEUESTATUS})",
            f" same => n,GotoIf({_is(dp.VAR_VOICEMAIL, '!=', '')}?{dp.CONTEXT_VOICEMAIL},s,1)",
            offer_step,
            f" same => n,ExecIf({_is(fallback_var, '=', '')}?Set({fallback_var}={fallback}))",
            # A caller whose own queue was the fallback queue is not queued there again.
            f" same => n,GotoIf({_is(fallback_var, '=', _var(queue))}?done)",
            # The first queue's rule may have raised QUEUE_MAX_PENALTY: the route script says
            # what the overflow queue starts with (2147483647 = no limit, its rules then idle).
            f" same => n,ExecIf({_is(dp.VAR_FALLBACK_MAX_PENALTY, '!=', '')}"
            f"?Set({dp.VAR_QUEUE_MAX_PENALTY}={_var(dp.VAR_FALLBACK_MAX_PENALTY)}))",
            f" same => n,Queue({_var(fallback_var)})",
            " same => n,NoOp(QUEUESTATUS=${QUEUESTATUS})",
            " same => n(done),Hangup()",
        ]
    lines += _overflow_offer_context(settings)
    vm = dp.VAR_VOICEMAIL
    lines += [
        "",
        f"[{dp.CONTEXT_VOICEMAIL}]",
        f"exten => s,1,NoOp(ccrouter overflow to voicemail {_var(vm)} card {_var(dp.VAR_CARD)})",
        f" same => n,VoiceMail({_var(vm)},u)",
        " same => n,Hangup()",
    ]
    lines += record_context(settings)
    lines += _doctor_context(settings)
    lines += _agi_context(settings)
    return "\n".join(lines) + "\n"


def _doctor_context(settings: Settings) -> list[str]:
    """`ccrouter doctor`'s test call: FastAGI reachable from Asterisk, channelvars carried."""
    return [
        "",
        f"; {dp.CONTEXT_DOCTOR}: `ccrouter doctor` originates Local/s@{dp.CONTEXT_DOCTOR}",
        f";   (no phone rings): the {dp.SCRIPT_PING} script sets {dp.VAR_PING}={dp.PING_ANSWER},",
        ";   the UserEvent tells the doctor AGISTATUS, and the events' ChanVariable",
        f";   {dp.VAR_CARD} shows whether channelvars works.",
        f"[{dp.CONTEXT_DOCTOR}]",
        "exten => s,1,NoOp(ccrouter doctor test call)",
        f" same => n,Set({dp.VAR_CARD}={dp.DOCTOR_CARD})",
        f" same => n,{agi_app(settings, dp.SCRIPT_PING)}",
        f" same => n,UserEvent({dp.USER_EVENT_DOCTOR},AgiStatus: ${{AGISTATUS}},"
        f"Ping: {_var(dp.VAR_PING)})",
        " same => n,Hangup()",
    ]


def _offer_context(settings: Settings) -> list[str]:
    """The in-queue callback offer: the key leaves the queue (queues.conf `context`) to here."""
    callbacks = callback_settings(settings)
    offer = callbacks.offer
    if not (callbacks.enabled and offer.enabled):
        return []
    status, to_queue = dp.VAR_STATUS, f"{dp.CONTEXT_QUEUE},s,1"
    return [
        f"; {dp.CONTEXT_CALLBACK_OFFER}: a caller pressed {offer.key} at the queue's offer; the",
        f";   {dp.SCRIPT_CALLBACK_OFFER} script requests the callback (keeping the caller's place)",
        f";   and says goodbye; if it cannot ({status} != {dp.STATUS_OK}) the caller queues again.",
        f"[{dp.CONTEXT_CALLBACK_OFFER}]",
        f"exten => {offer.key},1,NoOp(ccrouter callback offer {_var(dp.VAR_CARD)})",
        f" same => n,Set({status}=)",
        f" same => n,{agi_app(settings, dp.SCRIPT_CALLBACK_OFFER)}",
        f" same => n,GotoIf({_is(status, '!=', dp.STATUS_OK)}?{to_queue})",
        " same => n,Hangup()",
        "",
    ]


def _overflow_offer_context(settings: Settings) -> list[str]:
    """A target's overflow step offers a callback: the callback_offer script asks for the
    offer key and requests it; a caller who declines (or cannot be called) hears ss-noservice."""
    status = dp.VAR_STATUS
    return [
        "",
        f"; {dp.CONTEXT_CALLBACK_OVERFLOW}: a target's overflow step is a callback offer",
        f";   ({dp.VAR_OVERFLOW_CALLBACK} = the target); the {dp.SCRIPT_CALLBACK_OFFER} script",
        f";   asks for the key and requests the callback ({status}={dp.STATUS_OK}), else",
        ";   ss-noservice.",
        f"[{dp.CONTEXT_CALLBACK_OVERFLOW}]",
        f"exten => s,1,NoOp(ccrouter overflow callback offer {_var(dp.VAR_CARD)})",
        f" same => n,Set({status}=)",
        f" same => n,{agi_app(settings, dp.SCRIPT_CALLBACK_OFFER)}",
        f" same => n,ExecIf({_is(status, '!=', dp.STATUS_OK)}?Playback(ss-noservice))",
        " same => n,Hangup()",
    ]



def _callback_context() -> list[str]:
    """A customer who answered an Originate (callback/outbound): prompt, then the queue."""
    lang, prompt, queue = dp.VAR_LANGUAGE, dp.VAR_PROMPT, dp.VAR_QUEUE
    return [
        f"; {dp.CONTEXT_CALLBACK}: ccrouter's Originate (Async) brings an answered customer here",
        f";   with {queue}, {dp.VAR_QUEUE_PRIO}, {dp.VAR_CARD}, {dp.VAR_CALLBACK_OF}, {lang},",
        f";   {dp.VAR_PRODUCT} and {prompt} set: the prompt in the caller's language, then",
        f";   {dp.CONTEXT_QUEUE} (ahead of live callers); no queue = a message-only call.",
        f"[{dp.CONTEXT_CALLBACK}]",
        f"exten => s,1,NoOp(ccrouter callback {_var(dp.VAR_CARD)} of {_var(dp.VAR_CALLBACK_OF)})",
        f" same => n,ExecIf({_is(lang, '!=', '')}?Set(CHANNEL(language)={_var(lang)}))",
        f" same => n,ExecIf({_is(prompt, '!=', '')}?Playback({_var(prompt)}))",
        f" same => n,GotoIf({_is(queue, '=', '')}?done)",
        f" same => n,Goto({dp.CONTEXT_QUEUE},s,1)",
        " same => n(done),Hangup()",
    ]


def _operator_first_context(settings: Settings) -> list[str]:
    """callbacks.mode operator_first: the operator answered ccrouter's Originate; they hear
    the whisper, then (recordings:) MixMonitor starts on the operator's channel under the
    leg's own card, then Dial() rings the customer. The outcome goes to ccrouter as a UserEvent
    from the `h` extension, which runs whoever hangs up first (and after a failed Dial)."""
    card, whisper = dp.VAR_CARD, dp.VAR_WHISPER
    return [
        "",
        f"; {dp.CONTEXT_CALLBACK_OPERATOR}: (callbacks.mode operator_first) ccrouter's Originate",
        f";   rings the free operator with {card}, {dp.VAR_CALLBACK_OF}, {whisper},",
        f";   {dp.VAR_DIAL} and {dp.VAR_DIAL_TIMEOUT} set: the whisper, then Dial() the customer;",
        f";   UserEvent({dp.USER_EVENT_CALLBACK}) tells ccrouter DIALSTATUS and ANSWEREDTIME.",
        f"[{dp.CONTEXT_CALLBACK_OPERATOR}]",
        f"exten => s,1,NoOp(ccrouter callback {_var(card)} of {_var(dp.VAR_CALLBACK_OF)})",
        f" same => n,ExecIf({_is(whisper, '!=', '')}?Playback({_var(whisper)}))",
        *record_step(settings),
        f" same => n,Dial({_var(dp.VAR_DIAL)},{_var(dp.VAR_DIAL_TIMEOUT)})",
        " same => n,Hangup()",
        f"exten => h,1,UserEvent({dp.USER_EVENT_CALLBACK},Card: {_var(card)},"
        "DialStatus: ${DIALSTATUS},AnsweredTime: ${ANSWEREDTIME})",
        " same => n,Hangup()",
        "",
    ]
