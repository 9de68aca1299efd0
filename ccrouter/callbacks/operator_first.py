"""Operator-first callbacks (`callbacks.mode: operator_first`): the Originate and its outcome.

The free operator the dispatcher counted is rung (Originate, Async, Channel = their queue
member interface, Context `ccrouter-callback-operator`); once they answer they hear the whisper
("a callback for the wallet line, in Russian"), then the dialplan's Dial() rings the customer.
The outcome arrives as `UserEvent: CcrouterCallback` from the context's `h` extension with
Dial()'s DIALSTATUS and ANSWEREDTIME; the Originate's own result (OriginateResponse) only says
whether the operator answered.

Trade-off against customer first: the customer gets a person the moment they pick up, and the
operator knows the call before it starts; the price is operator time spent listening to the
customer's phone ring (and on busy or absent customers), and an operator who steps away
without pausing is rung (they are then left alone for `operator_cooldown_s`).
"""

from __future__ import annotations

from typing import Any

from ccrouter import dialplan as dp
from ccrouter.config import CallbackSettings
from ccrouter.domain import callback as cb


def originate(
    s: CallbackSettings, r: cb.Request, *, interface: str, action_id: str, channel_id: str,
    card: str,
) -> dict[str, Any]:  # fmt: skip
    """The AMI Originate that rings `interface` and then dials the customer of `r`."""
    variables = {
        dp.VAR_CARD: card, dp.VAR_CALLBACK_OF: r.card or "", dp.VAR_LANGUAGE: r.language,
        dp.VAR_PRODUCT: r.product, dp.VAR_WHISPER: s.whisper,
        dp.VAR_DIAL: s.dial.replace("{number}", r.number),
        dp.VAR_DIAL_TIMEOUT: str(s.ring_timeout_s),
    }  # fmt: skip
    action: dict[str, Any] = {
        "Action": "Originate", "ActionID": action_id, "ChannelId": channel_id,
        "Channel": interface, "Context": dp.CONTEXT_CALLBACK_OPERATOR, "Exten": "s",
        "Priority": "1", "Timeout": str(s.operator_ring_s * 1000), "Async": "true",
        "Variable": [f"{k}={v}" for k, v in variables.items()],
    }  # fmt: skip
    if s.caller_id:
        action["CallerID"] = s.caller_id
    return action


def talk_seconds(answered_time: str) -> int | None:
    """ANSWEREDTIME (whole seconds; empty when nobody answered)."""
    try:
        return int(float(answered_time))
    except ValueError:
        return None
