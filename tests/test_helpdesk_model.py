"""The helpdesk's pure rules and its config: signatures, retries, answers, mails."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ccrouter.config.helpdesk import HelpdeskSettings, MailSettings, MailTemplate
from ccrouter.helpdesk.model import (
    BadAnswer,
    Status,
    backoff,
    parse_created,
    parse_event,
    pick_language,
    render_mail,
    sign,
    verify,
)  # fmt: skip


def test_signature_is_hmac_of_the_exact_body() -> None:
    # echo -n '{"a":1}' | openssl dgst -sha256 -hmac k
    mac = "c3a92ff9e274cdcce27a58c15a78ec6dcbbdbd0038a87e7a11baef2028fd8bff"
    assert sign("k", b'{"a":1}') == f"sha256={mac}"
    assert verify("k", b"body", sign("k", b"body"))
    assert not verify("k", b"body ", sign("k", b"body"))
    assert not verify("other", b"body", sign("k", b"body"))
    assert not verify("", b"body", sign("", b"body")), "no secret: nothing is trusted"
    assert not verify("k", b"body", None)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 1.0, 5.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_created_answer() -> None:
    c = parse_created({"id": 42, "url": "https://hd/t/42"})
    assert (c.ticket_id, c.url) == ("42", "https://hd/t/42")
    with pytest.raises(BadAnswer, match="no ticket id"):
        parse_created({"url": "https://hd/t/42"})
    with pytest.raises(BadAnswer, match="not an http"):
        parse_created({"id": "x", "url": "javascript:alert(1)"})
    with pytest.raises(BadAnswer, match="not a JSON object"):
        parse_created([1])


def test_status_event() -> None:
    ev = parse_event({"ticket_id": "HD-1", "status": "resolved"})
    assert (ev.ticket_id, ev.status, ev.comment) == ("HD-1", Status.RESOLVED, "")
    with pytest.raises(BadAnswer, match="status: one of in_progress, open, resolved"):
        parse_event({"ticket_id": "HD-1", "status": "pending"})
    with pytest.raises(BadAnswer, match="ticket_id"):
        parse_event({"status": "resolved"})


def test_mail_in_the_cards_language_or_the_default() -> None:
    t = {"uz": {"created": MailTemplate(subject="$ticket_id  qabul", body="$card $x")},
         "ru": {"created": MailTemplate(subject="$ticket_id принята", body="-")}}
    assert pick_language(t, "uz", None) == "uz"
    assert pick_language(t, "en", "ru") == "ru"
    assert pick_language(t, None, None) == "uz"
    m = render_mail(t, "created", "uz", {"ticket_id": "HD-1", "card": "0000013"})
    assert (m.subject, m.body) == ("HD-1 qabul", "0000013 $x")


def test_config_errors_name_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="CCROUTER_HELPDESK_SECRET"):
        HelpdeskSettings(url="https://hd.example/api")
    with pytest.raises(ValidationError, match="not an environment variable name"):
        HelpdeskSettings(headers_env={"Authorization": "a-b"})
    with pytest.raises(ValidationError, match=r"templates\.uz: missing resolved"):
        MailSettings(host="smtp", templates={"uz": {"created": {"subject": "s", "body": "b"}}})
