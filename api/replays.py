"""A replayed write's body: the resource it wrote, folded from its stream up to the version
the write left it at, and presented as a read presents it (secrets opened or masked for the
caller, MASK once forgotten). Nothing of the first reply's body was stored (idempotency.py).
"""

from __future__ import annotations

from api import present
from api.auth import Principal
from api.idempotency import Written
from api.services import Services
from api.wire_instances import Instance
from api.wire_servers import Server
from commands.refusals import InstanceNotFound, ServerNotFound
from projections.instances import INSTANCES
from projections.runtime.fold import fold_stream
from projections.servers import SERVERS


async def instance(services: Services, caller: Principal, written: Written) -> Instance:
    view = await fold_stream(
        services.store, INSTANCES, written.stream_id, up_to_version=written.version
    )
    if view is None or view.org_id != caller.org_id:
        raise InstanceNotFound
    return await present.instance(view, caller, services.vault)


async def server(services: Services, caller: Principal, written: Written) -> Server:
    view = await fold_stream(
        services.store, SERVERS, written.stream_id, up_to_version=written.version
    )
    if view is None or view.org_id != caller.org_id:
        raise ServerNotFound
    return present.server(view)
