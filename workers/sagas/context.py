"""What the steps of an instance operation work with; each part is built when a step first
needs it, so a resumed operation that skips a step never builds what only it needed."""

from __future__ import annotations

from commands.instance_state import InstanceFacts
from commands.server_state import ServerProfile
from workers.runtime.slots import OperationLocks
from workers.sagas.deps import SagaConfig, SagaDeps, Trigger
from workers.sagas.instance_spec import InstanceSecrets, spec_of
from workers.sagas.operation_log import OperationLog
from workers.server.credentials import ServerSecrets, connection_info
from workers.server.layout import InstanceLayout, ProxyLayout
from workers.server.remote import Remote, StepError
from workers.server.spec import InstanceSpec


class InstanceContext:
    def __init__(
        self,
        deps: SagaDeps,
        trigger: Trigger,
        log: OperationLog,
        locks: OperationLocks,
        facts: InstanceFacts,
        secrets: InstanceSecrets,
        server: ServerProfile,
        server_secrets: ServerSecrets,
    ) -> None:
        self.deps = deps
        self.trigger = trigger
        self.log = log
        self.locks = locks
        self.facts = facts
        self.secrets = secrets
        self.server = server
        self.server_secrets = server_secrets
        self._spec: InstanceSpec | None = None
        self._remote: Remote | None = None

    @property
    def config(self) -> SagaConfig:
        return self.deps.config

    @property
    def server_id(self) -> str:
        return self.facts.server_id

    def spec(self) -> InstanceSpec:
        if self._spec is None:
            try:
                self._spec = spec_of(self.facts, self.secrets)
            except ValueError as e:
                raise StepError(f"refused to use the instance's settings: {e}") from e
        return self._spec

    @property
    def layout(self) -> InstanceLayout:
        try:
            return InstanceLayout(self.facts.slug, self.config.root)
        except ValueError as e:
            raise StepError(f"refused to use the instance's settings: {e}") from e

    @property
    def proxy(self) -> ProxyLayout:
        return ProxyLayout(self.config.root)

    @property
    def remote(self) -> Remote:
        if self._remote is None:
            try:
                info = connection_info(
                    self.server, self.server_secrets, self.config.connect_timeout
                )
            except ValueError as e:
                raise StepError(str(e)) from e
            self._remote = Remote(
                self.deps.runner, info, self.locks, slot_timeout=self.config.lock_timeout
            )
        return self._remote

    def use_server(self, server: ServerProfile) -> None:
        """A newer profile of the server (e.g. its host key pinned meanwhile)."""
        self.server, self._remote = server, None

    async def cancelled(self) -> bool:
        return (await self.log.load()).cancelled
