"""The per-server proxy from a saga: bring it up with every instance's host ports, and point
an instance's route at a colour (atomically, checked by `nginx -t`, then reloaded)."""

from __future__ import annotations

from collections.abc import Iterable

from workers.layout import InstanceLayout, ProxyLayout
from workers.remote import Remote
from workers.render_proxy import render_proxy_compose, render_proxy_conf, render_route
from workers.server_commands import (
    proxy_layout_command,
    proxy_up_command,
    switch_route_command,
    write_active_color_command,
)
from workers.shell import script
from workers.spec import InstanceSpec

PUBLIC = 0o644


async def ensure_proxy(
    remote: Remote, proxy: ProxyLayout, host_ports: Iterable[int], time_limit: float
) -> str:
    """`odoofleet-proxy` running on `odoofleet-edge`; recreated only when its ports change."""
    await remote.check(proxy_layout_command(proxy))
    await remote.upload(proxy.compose, render_proxy_compose(host_ports).encode(), PUBLIC)
    await remote.upload(proxy.conf_file, render_proxy_conf().encode(), PUBLIC)
    return await remote.check(proxy_up_command(proxy), time_limit=time_limit)


async def switch_route(
    remote: Remote, proxy: ProxyLayout, layout: InstanceLayout, spec: InstanceSpec, color: str
) -> str:
    """Route the instance to `color`, then record it as the active colour (written last)."""
    await remote.upload(proxy.staged_route(spec.slug), render_route(spec, color).encode(), PUBLIC)
    switched = await remote.check(
        script(switch_route_command(proxy, spec.slug), write_active_color_command(layout, color))
    )
    return f"{switched}\nroute of {spec.auto_subdomain} points at {layout.app_container(color)}"
