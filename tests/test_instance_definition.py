"""An instance's settings are written once (events.instance): the create request at the edge,
the create command and InstanceCreated share InstanceChoices/InstanceDefinition, and what a
PATCH may change is InstanceChanges (CHANGEABLE). These tests hold the edges to it and the
stored shapes to what the code before the change wrote."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import msgspec
from fixture_log import FIXTURE_LOG

from api.drafts import instance_changes, instance_draft
from api.wire_instances import CreateInstanceBody, Instance, UpdateInstanceBody
from commands.create_instance import InstanceDraft
from commands.defaults import settings_for
from commands.instance import CreateInstance, UpdateInstance
from events.catalog import build_registry
from events.instance import (
    CHANGEABLE,
    InstanceChanges,
    InstanceChoices,
    InstanceCreated,
    InstanceDefinition,
    InstanceSettings,
    InstanceUpdated,
)
from events.registry import encode_event
from events.secrets import Sealed
from odoofleet.settings import load_settings

OLD_LOG: Final = Path(__file__).parent / "fixtures" / FIXTURE_LOG
# Never shown: the secrets, and the database name (an internal of the server's files).
NOT_SHOWN: Final = {"admin_password", "db_password", "admin_user_password", "db_name"}


def _names(struct: type[msgspec.Struct]) -> set[str]:
    return {field.name for field in msgspec.structs.fields(struct)}


def _types(struct: type[msgspec.Struct]) -> dict[str, Any]:
    return {field.name: field.type for field in msgspec.structs.fields(struct)}


def test_the_create_body_names_only_choices_of_an_instance() -> None:
    assert _names(CreateInstanceBody) - {"slug"} <= _names(InstanceChoices)
    assert "slug" in _names(InstanceDefinition) - _names(InstanceChoices)


def test_a_patch_body_names_exactly_what_an_update_may_change() -> None:
    assert _names(UpdateInstanceBody) == set(CHANGEABLE)


def test_what_an_update_may_change_is_one_list() -> None:
    assert CHANGEABLE == (
        "name",
        "addons_path",
        "env_vars",
        "mcp_write_enabled",
        "mcp_model_access",
    )
    assert _names(InstanceUpdated) == {*CHANGEABLE, "instance_id", "updated_at"}
    assert _names(UpdateInstance) == {*CHANGEABLE, "operation_id"}


def test_the_draft_is_the_choices_in_plaintext_with_its_operation_and_domain() -> None:
    assert _names(InstanceDraft) == _names(InstanceChoices) | {"operation_id", "base_domain"}
    assert _types(InstanceDraft)["env_vars"] == dict[str, str]
    assert _types(InstanceDraft)["admin_password"] is str


def test_the_create_command_is_the_definition_sealed_with_its_operation() -> None:
    assert _names(CreateInstance) == _names(InstanceDefinition) | {"operation_id"}
    assert _types(CreateInstance)["env_vars"] == dict[str, Sealed]


def test_instance_created_is_the_definition_sealed_with_its_time() -> None:
    assert _names(InstanceCreated) == _names(InstanceDefinition) | {"created_at"}
    assert _types(InstanceCreated)["env_vars"] == dict[str, Sealed]
    assert _types(InstanceCreated)["db_password"] is Sealed


def test_every_setting_but_the_secrets_is_shown_on_the_api_instance() -> None:
    settings = _names(InstanceSettings)
    shown = (_names(InstanceDefinition) - NOT_SHOWN - {"instance_id", "settings"}) | settings

    assert shown <= _names(Instance)


def test_every_event_the_code_before_the_change_wrote_encodes_again_as_it_was() -> None:
    """No stored shape changed: decoding an old event and encoding it gives its JSON back,
    plus only the optional fields added since, at their defaults (publicIpv4, finalBackup…)."""
    registry = build_registry()
    rows = [json.loads(line) for line in OLD_LOG.read_text().splitlines()]

    for row in rows:
        event = registry.decode(row["event_type"], row["schema_version"], json.dumps(row["data"]))
        encoded = json.loads(encode_event(event))
        added = {name: encoded.pop(name) for name in set(encoded) - set(row["data"])}
        assert encoded == row["data"], row["event_type"]
        assert added == _defaults_of(type(event), added), row["event_type"]
        assert type(event).schema_version == row["schema_version"]
    assert {"InstanceCreated", "InstanceUpdated"} <= {row["event_type"] for row in rows}


def test_the_draft_takes_each_choice_of_the_client_by_its_name() -> None:
    server_id = uuid.uuid4()
    body = CreateInstanceBody(
        name="Shop",
        server_id=server_id,
        slug="shop",
        odoo_version="17.0",
        odoo_edition="enterprise",
        environment_type="production",
        project_id="proj-1",
        branch="main",
        template_id="tpl-1",
        addons_path="/mnt/extra-addons",
        env_vars={"MODE": "live"},
    )

    draft = instance_draft(body, load_settings({}))

    chosen = msgspec.structs.asdict(body)
    del chosen["slug"]
    assert {name: getattr(draft, name) for name in chosen} == chosen | {"server_id": str(server_id)}
    assert draft.settings == settings_for("production")
    assert draft.mcp_write_enabled is False


def test_the_changes_are_the_patch_body_field_by_field() -> None:
    body = UpdateInstanceBody(addons_path=None, env_vars={"MODE": "test"})

    changes = instance_changes(body)

    assert changes == InstanceChanges[str](addons_path=None, env_vars={"MODE": "test"})
    assert changes.name is msgspec.UNSET


def _defaults_of(event_type: type[msgspec.Struct], names: Iterable[str]) -> dict[str, object]:
    fields = {field.encode_name: field for field in msgspec.structs.fields(event_type)}
    return {name: msgspec.to_builtins(fields[name].default) for name in names}
