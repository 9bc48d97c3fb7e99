"""The per-server nginx proxy: its compose file, its shared settings and one route file per
instance; and each instance's port forwarder, which publishes its host ports.

Why a forwarder per instance: a container's published ports are fixed when it is created, so
a proxy that published every instance's host ports had to be recreated whenever an instance
came or went, and every other instance on the server refused connections meanwhile (~300 ms
measured, websockets dropped). Now the proxy publishes only its own fixed port and is changed
only by writing config, `nginx -t` and `nginx -s reload`. It still listens on each
instance's host ports inside its container, from the instance's route file; the instance's
forwarder (`<slug>-ports`) publishes them on the host and passes their TCP streams to the
proxy. The forwarder never changes during the instance's life, a colour switch rewrites only
the route file (ODOO-HOSTING.md §2.9), and adding or removing an instance creates or removes
only its own forwarder."""

from __future__ import annotations

from workers.server.fields import check_color, check_port
from workers.server.layout import EDGE_NETWORK, PROXY_CONTAINER, PROXY_PROJECT, InstanceLayout
from workers.server.render import LOGGING
from workers.server.spec import InstanceSpec, check_spec
from workers.server.yaml_out import Yaml, dump

NGINX_IMAGE = "nginx:1.27-alpine"
ROUTES_MOUNT = "/etc/nginx/odoofleet/routes"
# Inside the routes directory (mounted already, so no proxy is recreated to add them) and not
# `*.conf`: ACME's HTTP-01 challenge files, and the certificates with their keys (0600).
ACME_DIR = "acme"
TLS_DIR = "tls"
TLS_FORWARDER = "odoofleet-tls"

_PROXY_HEADERS = (
    "proxy_set_header Host $host;",
    "proxy_set_header X-Forwarded-Host $host;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header X-Real-IP $remote_addr;",
)


def render_proxy_compose(http_port: int = 80) -> str:
    """The proxy publishes its own port only: nothing an instance does changes this file."""
    port = check_port(http_port)
    document: dict[str, Yaml] = {
        "name": PROXY_PROJECT,
        "services": {
            "proxy": {
                "image": NGINX_IMAGE,
                "container_name": PROXY_CONTAINER,
                "restart": "unless-stopped",
                "ports": [f"{port}:{port}"],
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


def render_ports_compose(spec: InstanceSpec, *, public: bool) -> str:
    """The instance's forwarder: its host ports on 127.0.0.1 (for the health probe and an SSH
    tunnel), or on every interface when the server's publicHostPorts says so."""
    check_spec(spec)
    names = InstanceLayout(spec.slug)
    address = "" if public else "127.0.0.1:"
    ports = (spec.http_port_host, spec.longpolling_port_host)
    document: dict[str, Yaml] = {
        "name": names.ports_project,
        "services": {
            "ports": {
                "image": NGINX_IMAGE,
                "container_name": names.ports_container,
                "restart": "unless-stopped",
                "ports": [f"{address}{port}:{port}" for port in ports],
                "volumes": ["./nginx.conf:/etc/nginx/nginx.conf:ro"],
                "networks": ["edge"],
                "logging": LOGGING,
                "labels": {"odoofleet.instance": spec.instance_id, "odoofleet.role": "ports"},
            }
        },
        "networks": {"edge": {"external": True, "name": EDGE_NETWORK}},
    }
    head = f"# Compose file of the port forwarder of {spec.instance_id} ({spec.slug}); "
    return head + "generated, do not edit\n" + dump(document)


def render_ports_conf(spec: InstanceSpec) -> str:
    """The forwarder's whole nginx.conf: each host port passed, as TCP, to the same port of
    the proxy, whose name Docker's DNS answers per connection (a recreated proxy gets a new
    address). The include loads a packaged nginx's dynamic stream module; the official image
    has it built in and no such directory, and a pattern matching nothing is no error."""
    check_spec(spec)
    servers = "".join(
        f"""\
    server {{
        listen {check_port(port)};
        set $odoofleet_proxy {PROXY_CONTAINER}:{port};
        proxy_pass $odoofleet_proxy;
    }}
"""
        for port in (spec.http_port_host, spec.longpolling_port_host)
    )
    return f"""\
# Port forwarder of odoofleet instance {spec.instance_id} ({spec.slug}); generated, do not edit
include /etc/nginx/modules-enabled/*.conf;
worker_processes 1;
events {{
    worker_connections 1024;
}}
stream {{
    resolver 127.0.0.11 valid=10s ipv6=off;
    proxy_connect_timeout 10s;
    proxy_timeout 720s;
{servers}}}
"""


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
{_indent(acme_challenge_location())}
    location / {{
        return 404;
    }}
}}
include {ROUTES_MOUNT}/*.conf;
"""


def acme_challenge_location() -> str:
    """HTTP-01 (RFC 8555 §8.3): the CA fetches `/.well-known/acme-challenge/<token>` over
    plain HTTP on port 80, whatever host name it validates; the files are written by the
    certificate saga before it answers the challenge."""
    return f"""\
location ^~ /.well-known/acme-challenge/ {{
    root {ROUTES_MOUNT}/{ACME_DIR};
    default_type text/plain;
    try_files $uri =404;
}}
"""


def _indent(block: str) -> str:
    return "\n".join(f"    {line}" for line in block.splitlines())


def render_domain_route(
    spec: InstanceSpec,
    color: str,
    domain: str,
    *,
    hsts: bool,
    http_port: int = 80,
    https_port: int = 443,
    http_redirect: bool = True,
) -> str:
    """A custom domain with its certificate: HTTPS on 443 to the instance's colour (the
    /websocket route kept), plain HTTP redirected to it except ACME's challenges.
    Strict-Transport-Security only when asked for: once a browser saw it, the domain cannot go
    back to plain HTTP for its max-age, so it is the operator's decision (issue 16).
    Without `http_redirect` (the auto subdomain, whose port 80 the instance's own route
    serves: two server blocks of one name on one port conflict), HTTPS only."""
    check_spec(spec)
    upstream = InstanceLayout(spec.slug).app_container(check_color(color))
    port = check_port(https_port)
    target = "https://$host" + ("" if port == 443 else f":{port}") + "$request_uri"
    redirect = f"""\
server {{
    listen {check_port(http_port)};
    server_name {domain};
{_indent(acme_challenge_location())}
    location / {{
        return 301 {target};
    }}
}}
"""
    tls = [
        f"ssl_certificate {ROUTES_MOUNT}/{TLS_DIR}/{domain}.pem;",
        f"ssl_certificate_key {ROUTES_MOUNT}/{TLS_DIR}/{domain}.key;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_session_cache shared:odoofleet:10m;",
    ]
    if hsts:
        tls.append('add_header Strict-Transport-Security "max-age=31536000" always;')
    secure = _server("443 ssl", upstream, domain, both=True, extra=tls)
    head = f"# Domain {domain} of odoofleet instance {spec.instance_id} ({spec.slug}), colour "
    plain = redirect if http_redirect else ""
    return head + f"{color}; generated, replaced atomically\n" + plain + secure


def render_tls_forwarder_compose(https_port: int = 443) -> str:
    """Like an instance's forwarder: the proxy's own published ports are fixed when it is
    created, so HTTPS reaches it through this container (created once, never recreated),
    which passes the TCP streams of `https_port` to the proxy's 443."""
    port = check_port(https_port)
    document: dict[str, Yaml] = {
        "name": TLS_FORWARDER,
        "services": {
            "tls": {
                "image": NGINX_IMAGE,
                "container_name": TLS_FORWARDER,
                "restart": "unless-stopped",
                "ports": [f"{port}:443"],
                "volumes": ["./nginx.conf:/etc/nginx/nginx.conf:ro"],
                "networks": ["edge"],
                "logging": LOGGING,
                "labels": {"odoofleet.role": "tls"},
            }
        },
        "networks": {"edge": {"external": True, "name": EDGE_NETWORK}},
    }
    return "# Compose file of the odoofleet HTTPS forwarder; generated, do not edit\n" + dump(
        document
    )


def render_tls_forwarder_conf() -> str:
    return f"""\
# HTTPS forwarder of the odoofleet proxy; generated, do not edit
include /etc/nginx/modules-enabled/*.conf;
worker_processes 1;
events {{
    worker_connections 1024;
}}
stream {{
    resolver 127.0.0.11 valid=10s ipv6=off;
    proxy_connect_timeout 10s;
    proxy_timeout 720s;
    server {{
        listen 443;
        set $odoofleet_proxy {PROXY_CONTAINER}:443;
        proxy_pass $odoofleet_proxy;
    }}
}}
"""


def render_route(spec: InstanceSpec, color: str, http_port: int = 80) -> str:
    """The instance's route to one colour: its subdomain on port 80, and its own host ports."""
    check_spec(spec)
    upstream = InstanceLayout(spec.slug).app_container(check_color(color))
    head = f"# Route of odoofleet instance {spec.instance_id} ({spec.slug}) to colour {color}; "
    blocks = [
        # ACME's challenges for the auto subdomain's certificate (HTTP-01) come here too.
        _server(
            f"{check_port(http_port)}",
            upstream,
            spec.auto_subdomain,
            both=True,
            extra=acme_challenge_location().splitlines(),
        ),
        _server(str(spec.http_port_host), upstream, None, both=True),
        _server(str(spec.longpolling_port_host), upstream, None, both=False),
    ]
    return head + "generated, replaced atomically on every switch\n" + "".join(blocks)


def _server(
    listen: str,
    upstream: str,
    server_name: str | None,
    *,
    both: bool,
    extra: list[str] | None = None,
) -> str:
    lines = [f"listen {listen};"]
    if server_name is not None:
        lines.append(f"server_name {server_name};")
    lines.extend(extra or ())
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
