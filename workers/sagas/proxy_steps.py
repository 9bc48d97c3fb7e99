"""The per-server proxy and an instance's port forwarder, from a saga: the proxy running with
its settings checked by `nginx -t`, an instance's route pointed at a colour (atomically,
checked, then reloaded), and the forwarder that publishes the instance's host ports."""

from __future__ import annotations

from workers.server.commands import (
    ports_up_command,
    proxy_layout_command,
    proxy_up_command,
    staged,
    switch_route_command,
    write_active_color_command,
)
from workers.server.layout import InstanceLayout, ProxyLayout
from workers.server.remote import Remote
from workers.server.render_proxy import (
    render_ports_compose,
    render_ports_conf,
    render_proxy_compose,
    render_proxy_conf,
    render_route,
)
from workers.server.shell import script
from workers.server.spec import InstanceSpec

PUBLIC = 0o644


async def ensure_proxy(remote: Remote, proxy: ProxyLayout, time_limit: float) -> str:
    """`odoofleet-proxy` running on `odoofleet-edge`: created or started only when it is not
    running, never recreated under the instances it routes."""
    await remote.check(proxy_layout_command(proxy))
    await remote.upload(proxy.compose, render_proxy_compose().encode(), PUBLIC)
    await remote.upload(staged(proxy.conf_file), render_proxy_conf().encode(), PUBLIC)
    return await remote.check(proxy_up_command(proxy), time_limit=time_limit)


async def ensure_ports(
    remote: Remote, layout: InstanceLayout, spec: InstanceSpec, *, public: bool, time_limit: float
) -> str:
    """The instance's forwarder, publishing its host ports on 127.0.0.1 (or every interface
    when the server's publicHostPorts is set)."""
    compose = render_ports_compose(spec, public=public)
    await remote.upload(layout.ports_compose, compose.encode(), PUBLIC)
    await remote.upload(layout.ports_conf, render_ports_conf(spec).encode(), PUBLIC)
    started = await remote.check(ports_up_command(layout), time_limit=time_limit)
    where = "every interface" if public else "127.0.0.1"
    ports = f"{spec.http_port_host} and {spec.longpolling_port_host}"
    return f"{started}\nhost ports {ports} published on {where} by {layout.ports_container}"


async def switch_route(
    remote: Remote, proxy: ProxyLayout, layout: InstanceLayout, spec: InstanceSpec, color: str
) -> str:
    """Route the instance to `color`, then record it as the active colour (written last)."""
    await remote.upload(proxy.staged_route(spec.slug), render_route(spec, color).encode(), PUBLIC)
    switched = await remote.check(
        script(switch_route_command(proxy, spec.slug), write_active_color_command(layout, color))
    )
    return f"{switched}\nroute of {spec.auto_subdomain} points at {layout.app_container(color)}"
