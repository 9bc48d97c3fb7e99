"""Secret values of an instance and its server never reach a recorded output."""

from __future__ import annotations

import asyncssh

from events.secrets import MASK
from workers.server.masking import Masker


def test_every_known_secret_is_masked_wherever_it_appears() -> None:
    mask = Masker(["hunter2-admin", "pg-s3cret", None, "sk_live_abc"])

    masked = mask("admin hunter2-admin, db=pg-s3cret\nkey sk_live_abc; again pg-s3cret")

    assert masked == f"admin {MASK}, db={MASK}\nkey {MASK}; again {MASK}"


def test_a_secret_containing_another_is_masked_whole() -> None:
    assert Masker(["abc", "abcdef"])("xabcdefx abc") == f"x{MASK}x {MASK}"


def test_each_line_of_a_private_key_is_masked_on_its_own() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    body = key.splitlines()[1]

    assert body not in Masker([key])(f"partial output: {body}")


def test_values_too_short_to_be_secret_and_forgotten_ones_are_left_alone() -> None:
    mask = Masker(["1", "on", MASK])

    assert mask("exit status 1, switched on") == "exit status 1, switched on"
