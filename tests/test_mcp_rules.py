"""MCP's pure rules (issue 18): tool names, the model allowlist, result caps, and what a
recorded tool call keeps of its arguments."""

from __future__ import annotations

from datetime import UTC, datetime

from api.mcp.naming import normalized, prefixes
from api.mcp.policy import DEFAULT_POLICY, ModelPolicy, allows
from api.mcp.results import fitted, shortened, size
from commands.mcp import RecordToolCall, decide
from events.mcp import McpToolCalled
from events.secrets import MASK

NOW = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
A = "0f1e2d3c-0000-4000-8000-000000000001"
B = "9a8b7c6d-0000-4000-8000-000000000002"


def test_a_slug_becomes_a_prefix_with_underscores() -> None:
    assert normalized("acme-shop-2") == "acme_shop_2"
    assert prefixes([(A, "acme-shop")]) == {A: "acme_shop"}


def test_clashing_prefixes_get_eight_characters_of_the_id() -> None:
    assert prefixes([(A, "acme-shop"), (B, "acme_shop")]) == {
        A: "acme_shop_0f1e2d3c",
        B: "acme_shop_9a8b7c6d",
    }


def test_an_instance_named_like_the_platform_never_shadows_its_tools() -> None:
    assert prefixes([(A, "odoofleet")]) == {A: "odoofleet_0f1e2d3c"}


def test_the_default_policy_reads_business_models_but_not_secrets() -> None:
    assert allows(DEFAULT_POLICY, "res.partner", "read")
    assert not allows(DEFAULT_POLICY, "res.users.apikeys", "read")
    assert not allows(DEFAULT_POLICY, "ir.config_parameter", "read")


def test_the_default_policy_never_writes_ir_models_or_users() -> None:
    assert allows(DEFAULT_POLICY, "sale.order", "write")
    assert not allows(DEFAULT_POLICY, "ir.rule", "write")
    assert not allows(DEFAULT_POLICY, "res.users", "write")


def test_accounting_records_are_never_unlinked_even_if_an_instance_allows_it() -> None:
    assert allows(DEFAULT_POLICY, "res.partner", "unlink")
    assert not allows(DEFAULT_POLICY, "account.move", "unlink")
    assert allows(DEFAULT_POLICY, "account.move", "write")
    assert not allows(ModelPolicy(unlink=("account.*",)), "account.move", "unlink")


def test_an_instance_policy_narrows_reads_to_its_patterns() -> None:
    narrow = ModelPolicy(read=("res.partner", "sale.*"))
    assert allows(narrow, "sale.order", "read")
    assert not allows(narrow, "hr.employee", "read")


def test_a_result_keeps_the_records_that_fit_its_byte_budget() -> None:
    records = [{"id": n, "name": "x" * 100} for n in range(50)]
    kept, cut = fitted(records, 1000)
    assert cut
    assert 0 < len(kept) < 50
    assert size(kept) <= 1000
    assert fitted(records[:2], 1000) == (records[:2], False)


def test_long_texts_are_cut_with_a_marker() -> None:
    assert shortened({"note": "y" * 3000}, 10) == {"note": "y" * 10 + "…[2990 more characters]"}


def test_a_tool_call_is_recorded_with_secret_arguments_masked() -> None:
    command = RecordToolCall(
        session_id="s",
        tool="shop_create",
        instance_id=A,
        instance_slug="shop",
        arguments={"model": "res.users", "values": {"login": "x", "password": "p", "api_key": "k"}},
        outcome="refused",
        message="no",
    )
    [event] = decide(command, 0, NOW)
    assert isinstance(event, McpToolCalled)
    assert event.arguments == {
        "model": "res.users",
        "values": {"login": "x", "password": MASK, "api_key": MASK},
    }
    assert (event.outcome, event.called_at) == ("refused", NOW)


def test_every_call_is_recorded_however_many_came_before() -> None:
    command = RecordToolCall(
        session_id="s", tool="t", instance_id=None, instance_slug=None, arguments={},
        outcome="succeeded", message=None,
    )  # fmt: skip
    assert len(decide(command, 41, NOW)) == 1
