"""The test's settings, allowing servers on loopback (the test sshd listens on 127.0.0.1).
A module that imports `loopback_settings_fixture` gets it as its `settings`, whatever the
conftest's settings allow."""

from __future__ import annotations

import msgspec
import pytest

from odoofleet.settings import Settings
from workers.ssh.network_policy import LOOPBACK_NETWORKS


@pytest.fixture(name="settings")
def loopback_settings_fixture(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, server_allowed_networks=LOOPBACK_NETWORKS)
