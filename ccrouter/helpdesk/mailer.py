"""Mail over SMTP (aiosmtplib): one message per call, STARTTLS/TLS and login as configured —
the caller's ticket mails (`send`) and the scheduled reports (`deliver`, `ccrouter.digest`).
Raises `MailError` with the server's reason when it cannot be sent."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid

import aiosmtplib

from ccrouter.config.helpdesk import MailSettings
from ccrouter.helpdesk.model import Mail


class MailError(Exception):
    pass


def message(m: Mail, *, sender: str, recipient: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, recipient, m.subject
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(m.body)  # utf-8, as the templates are; it resets Content-* headers
    msg["Content-Language"] = m.language
    return msg


async def send(s: MailSettings, m: Mail, recipient: str) -> str:
    """Send it; the Message-ID."""
    return await deliver(s, message(m, sender=s.sender, recipient=recipient))


async def deliver(s: MailSettings, msg: EmailMessage) -> str:
    """Send a message built elsewhere (a scheduled report's) to its To/Cc recipients through
    the configured server; its Message-ID (one is added when it has none)."""
    assert s.host is not None
    if msg["Message-ID"] is None:
        msg["Message-ID"] = make_msgid(domain=s.sender.rpartition("@")[2] or None)
    login = {"username": s.username, "password": s.password} if s.username else {}
    try:
        await aiosmtplib.send(msg, hostname=s.host, port=s.port, timeout=s.timeout_s,
                              start_tls=s.tls == "starttls", use_tls=s.tls == "tls",
                              **login)  # type: ignore[arg-type]  # fmt: skip
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc
    return str(msg["Message-ID"])
