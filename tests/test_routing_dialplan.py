"""The generated queues_ccrouter.conf / queuerules_ccrouter.conf match the routing config."""

from __future__ import annotations

from ccrouter.asterisk_conf import queuerules_conf, queues_conf
from ccrouter.config import load_settings
from ccrouter.routing.table import all_target_skills
from ccrouter.sim.rules import parse_conf_sections, parse_queuerules
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "ccrouter.yaml"


def test_committed_queue_files_are_the_generated_output() -> None:
    settings = load_settings(EXAMPLE, {})
    assert (ROOT / "dialplan" / "queues_ccrouter.conf").read_text() == queues_conf(settings), (
        "dialplan/ is stale: run `ccrouter dialplan --config config/ccrouter.yaml --out dialplan`"
    )
    assert (ROOT / "dialplan" / "queuerules_ccrouter.conf").read_text() == queuerules_conf(
        settings)  # fmt: skip


def test_one_queue_per_target_and_operator_with_the_rule_of_its_ladder() -> None:
    settings = load_settings(EXAMPLE, {})
    sections = dict(parse_conf_sections(queues_conf(settings)))
    rules = parse_queuerules(queuerules_conf(settings))
    # (`general` is the example's target queue; as a queues.conf section it is app_queue's
    # settings: see the report — the example should rename it.)
    for spec in all_target_skills(settings):
        if spec.queue == "general":
            continue
        queue = sections[spec.queue]
        assert queue["joinempty"] == "unavailable,invalid,unknown"
        assert queue["timeout"] == str(settings.routing.queues.ring_s)
        if spec.rules():
            assert queue["defaultrule"] == spec.rule_name()
            assert [(c.time, c.max_value, c.max_relative) for c in rules[spec.rule_name()]] == [
                (t, m, False) for t, m in spec.rules()]  # fmt: skip
        else:
            assert "defaultrule" not in queue
    for op in settings.operators:
        personal = sections[f"ccrouter-op-{op.id}"]
        assert personal["timeout"] == str(settings.routing.last_agent.ring_s)
        assert "paused" in personal["joinempty"] and "inuse" in personal["joinempty"]
    wallet_uz = rules["ccrouter-wallet-uz"]
    assert [(c.time, c.max_value) for c in wallet_uz] == [(30, 50), (60, 99), (90, 1099)]


def test_no_personal_queues_when_last_agent_is_off() -> None:
    s = load_settings(EXAMPLE, {})
    off = s.routing.model_copy(update={"last_agent": s.routing.last_agent.model_copy(
        update={"enabled": False})})  # fmt: skip
    text = queues_conf(s.model_copy(update={"routing": off}))
    assert "ccrouter-op-" not in text
