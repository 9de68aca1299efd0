"""The callbacks: section: file:line: key errors for what ccrouter cannot use."""

from __future__ import annotations

from pathlib import Path

from ccrouter.config import check_settings, load_settings
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "ccrouter.yaml"


def with_callbacks(tmp_path: Path, block: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("\ncallbacks:\n")
    end = text.index("\n\n", start + 1)
    path = tmp_path / "c.yaml"
    path.write_text(text[:start] + "\ncallbacks:\n" + block + text[end:], encoding="utf-8")
    return path


def test_example_callbacks_section_loads() -> None:
    s = load_settings(EXAMPLE, environ={})
    assert s.callbacks.enabled and s.callbacks.offer.enabled
    assert s.callbacks.fallback == {"wallet-tg": ["wallet-ru"], "terminal-uz": ["terminal-ru"]}


def test_bad_callbacks_section_names_every_problem(tmp_path: Path) -> None:
    path = with_callbacks(tmp_path, "\n".join([
        '  dial: "PJSIP/trunk"',
        '  valid_pattern: "^[0-9"',
        "  max_attempts: 0",
        "  retry_backoff_s: []",
        "  fallback:",
        "    wallet-xx: [wallet-ru, nowhere]",
        "  offer:",
        '    key: "12"',
        "  colour: red",
    ]))  # fmt: skip
    errors = {(e.key, e.line): e.message for e in check_settings(path, environ={})}
    keys = {k for k, _ in errors}
    assert {"callbacks.dial", "callbacks.valid_pattern", "callbacks.max_attempts",
            "callbacks.retry_backoff_s", "callbacks.fallback.wallet-xx",
            "callbacks.fallback.wallet-xx[1]", "callbacks.offer.key",
            "callbacks.colour"} <= keys, errors  # fmt: skip
    text = " | ".join(errors.values())
    assert "not a regular expression" in text and "unknown target 'nowhere'" in text
    assert all(line > 1 for _, line in errors)


def test_routing_priorities_callback_is_gone_with_a_pointer(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "  priorities:               # QUEUE_PRIO: higher is served first\n",
        "  priorities:               # QUEUE_PRIO: higher is served first\n    callback: 7\n", 1)
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    errors = check_settings(path, environ={})
    assert {e.key for e in errors} == {"routing.priorities.callback"}, errors
    assert any("callbacks.queue_priority" in e.message for e in errors)
    assert all(e.line > 1 for e in errors)


def test_callback_leg_priority_comes_from_callbacks_queue_priority() -> None:
    from ccrouter.callbacks import model as cb
    from ccrouter.callbacks.legs import customer_first, leg_fields

    s = load_settings(EXAMPLE, environ={})
    c, t = s.callbacks, s.targets[0]
    r = cb.Request(id=1, number="998901112233", kind=cb.Kind.CALLBACK, state=cb.State.PENDING,
                   target=t.name, place_at=0.0, due_at=0.0, created_at=0.0)
    action = customer_first(c, r, t, action_id="a", channel_id="c", card="0000001")
    assert f"QUEUE_PRIO={c.queue_priority}" in action["Variable"]  # the leg carries its own
    assert leg_fields(c, r, t)["priority"] == str(c.queue_priority)


def test_operator_first_mode_loads_and_needs_a_whisper(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "mode: customer_first" in text  # the example documents both modes
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("mode: customer_first", "mode: operator_first"), "utf-8")
    s = load_settings(path, environ={})
    assert (s.callbacks.mode, s.callbacks.whisper) == ("operator_first",
                                                       "ccrouter-callback-whisper")
    path.write_text(text.replace("mode: customer_first", "mode: operator_first").replace(
        "whisper: ccrouter-callback-whisper", 'whisper: ""'), "utf-8")
    (err,) = check_settings(path, environ={})
    assert err.key == "callbacks.whisper" and "operator_first needs a whisper" in err.message
    path.write_text(text.replace("mode: customer_first", "mode: agent_first"), "utf-8")
    (err,) = check_settings(path, environ={})
    assert err.key == "callbacks.mode" and "customer_first" in err.message


def test_callback_overflow_is_one_step_and_needs_callbacks(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    s = load_settings(EXAMPLE, environ={})
    tg = s.target("wallet-tg")
    assert tg.overflow is not None and tg.overflow.callback  # the example has one
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("overflow: {callback: true}",
                                 "overflow: {callback: true, queue: general-line}"), "utf-8")
    (err,) = check_settings(path, environ={})
    assert err.key == "targets[2].overflow" and "callback" in err.message
    path.write_text(text.replace("callbacks:\n  enabled: true", "callbacks:\n  enabled: false"),
                    "utf-8")  # fmt: skip
    (err,) = check_settings(path, environ={})
    assert err.key == "targets[2].overflow.callback" and "callbacks.enabled" in err.message
