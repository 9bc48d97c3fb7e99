"""The per-server nginx proxy: its compose file, its shared settings and one route file per
instance. The proxy container owns the host ports, so they stay put across a blue/green
switch; switching colour rewrites only the instance's route file (ODOO-HOSTING.md §2.9)."""

from __future__ import annotations

from collections.abc import Iterable

from workers.fields import check_color, check_port
from workers.layout import EDGE_NETWORK, PROXY_CONTAINER, PROXY_PROJECT, InstanceLayout
from workers.render import LOGGING
from workers.spec import InstanceSpec, check_spec
from workers.yaml_out import Yaml, dump

NGINX_IMAGE = "nginx:1.27-alpine"
ROUTES_MOUNT = "/etc/nginx/odoofleet/routes"

_PROXY_HEADERS = (
    "proxy_set_header Host $host;",
    "proxy_set_header X-Forwarded-Host $host;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header X-Real-IP $remote_addr;",
)


def render_proxy_compose(host_ports: Iterable[int], http_port: int = 80) -> str:
    """The proxy publishes port 80 plus every instance's httpPortHost and
    longpollingPortHost; a new port set means `up -d` recreates the container."""
    ports = sorted({check_port(http_port), *(check_port(p) for p in host_ports)})
    document: dict[str, Yaml] = {
        "name": PROXY_PROJECT,
        "services": {
            "proxy": {
                "image": NGINX_IMAGE,
                "container_name": PROXY_CONTAINER,
                "restart": "unless-stopped",
                "ports": [f"{port}:{port}" for port in ports],
                # Directories, not single files: a file replaced by rename stays visible
                # inside the container only through a directory mount.
                "volumes": ["./conf.d:/etc/nginx/conf.d:ro", f"./routes:{ROUTES_MOUNT}:ro"],
                "networks": ["edge"],
                "logging": LOGGING,
                "labels": {"odoofleet.role": "proxy"},
            }
        },
        "networks": {"edge": {"external": True, "name": EDGE_NETWORK}},
    }
    return "# Compose file of the odoofleet proxy; generated, do not edit\n" + dump(document)


def render_proxy_conf(http_port: int = 80) -> str:
    """Settings shared by every route (conf.d/odoofleet.conf)."""
    return f"""\
# odoofleet proxy: shared settings; one file per instance in {ROUTES_MOUNT}.
map $http_upgrade $connection_upgrade {{
    default upgrade;
    '' close;
}}
# Docker's embedded DNS, asked per request: a stopped instance answers 502 for itself
# instead of making `nginx -t` (and so every other instance's switch) fail.
resolver 127.0.0.11 valid=10s ipv6=off;
proxy_read_timeout 720s;
proxy_send_timeout 720s;
proxy_connect_timeout 10s;
client_max_body_size 200m;
server {{
    listen {check_port(http_port)} default_server;
    return 404;
}}
include {ROUTES_MOUNT}/*.conf;
"""


def render_route(spec: InstanceSpec, color: str, http_port: int = 80) -> str:
    """The instance's route to one colour: its subdomain on port 80, and its own host ports."""
    check_spec(spec)
    upstream = InstanceLayout(spec.slug).app_container(check_color(color))
    head = f"# Route of odoofleet instance {spec.instance_id} ({spec.slug}) to colour {color}; "
    blocks = [
        _server(f"{check_port(http_port)}", upstream, spec.auto_subdomain, both=True),
        _server(str(spec.http_port_host), upstream, None, both=True),
        _server(str(spec.longpolling_port_host), upstream, None, both=False),
    ]
    return head + "generated, replaced atomically on every switch\n" + "".join(blocks)


def _server(listen: str, upstream: str, server_name: str | None, *, both: bool) -> str:
    lines = [f"listen {listen};"]
    if server_name is not None:
        lines.append(f"server_name {server_name};")
    lines.append(f"set $odoo_upstream {upstream};")
    # Since Odoo 16 the bus is /websocket on the gevent port, with the upgrade headers.
    websocket = ("/websocket" if both else "/", "8072", True)
    locations = [websocket, ("/", "8069", False)] if both else [websocket]
    for path, port, upgrade in locations:
        # proxy_set_header is inherited only by blocks that set none: repeat them all.
        directives = [f"proxy_pass http://$odoo_upstream:{port};", *_PROXY_HEADERS]
        if upgrade:
            directives += [
                "proxy_http_version 1.1;",
                "proxy_set_header Upgrade $http_upgrade;",
                "proxy_set_header Connection $connection_upgrade;",
            ]
        lines.append(f"location {path} {{")
        lines.extend(f"    {directive}" for directive in directives)
        lines.append("}")
    return "server {\n" + "".join(f"    {line}\n" for line in lines) + "}\n"
