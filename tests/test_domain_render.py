"""What the proxy is given for a custom domain: HTTPS with its certificate to the active
colour (/websocket to gevent kept), HTTP redirected except ACME's challenges, HSTS only when
asked for; and the paths built from a domain only from its normal form."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_render import spec

from workers.sagas.domain_server import DomainPaths, follow_active_color, swap_checked
from workers.server.layout import ProxyLayout
from workers.server.remote import StepError
from workers.server.render_proxy import (
    render_domain_route,
    render_proxy_conf,
    render_tls_forwarder_compose,
)


def test_the_https_server_uses_the_domain_s_certificate_and_keeps_websocket() -> None:
    route = render_domain_route(spec(), "green", "shop.example.com", hsts=False)

    https = route.split("listen 443 ssl;")[1]
    assert "server_name shop.example.com;" in https
    assert "ssl_certificate /etc/nginx/odoofleet/routes/tls/shop.example.com.pem;" in https
    assert "ssl_certificate_key /etc/nginx/odoofleet/routes/tls/shop.example.com.key;" in https
    websocket = https.split("location /websocket {")[1].split("}")[0]
    assert "proxy_pass http://$odoo_upstream:8072;" in websocket
    assert "proxy_set_header Upgrade $http_upgrade;" in websocket
    assert "set $odoo_upstream acme-green-odoo-1;" in https
    assert "Strict-Transport-Security" not in route
    assert route.count("{") == route.count("}")


def test_plain_http_redirects_to_https_except_the_acme_challenges() -> None:
    route = render_domain_route(spec(), "blue", "shop.example.com", hsts=False, https_port=8443)

    plain = route.split("listen 443 ssl;")[0]
    assert "location ^~ /.well-known/acme-challenge/ {" in plain
    assert "return 301 https://$host:8443$request_uri;" in plain
    standard = render_domain_route(spec(), "blue", "shop.example.com", hsts=False)
    assert "return 301 https://$host$request_uri;" in standard


def test_hsts_is_sent_only_when_asked_for() -> None:
    route = render_domain_route(spec(), "blue", "shop.example.com", hsts=True)

    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in route


def test_the_default_server_serves_acme_challenges_for_any_name() -> None:
    conf = render_proxy_conf()

    default = conf.split("default_server;")[1]
    assert "location ^~ /.well-known/acme-challenge/ {" in default
    assert "root /etc/nginx/odoofleet/routes/acme;" in default


def test_the_https_forwarder_publishes_the_https_port_to_the_proxy_s_443() -> None:
    assert "8443:443" in render_tls_forwarder_compose(8443)


@pytest.mark.parametrize("name", ["../../etc/passwd", "Shop.Example.com", "a b.example", "x"])
def test_paths_are_only_built_from_a_normal_domain_name(name: str) -> None:
    with pytest.raises(StepError):
        DomainPaths(ProxyLayout("/srv/odoofleet"), name, "acme")


def test_a_swap_checks_nginx_before_reloading_and_restores_what_it_rejects() -> None:
    paths = DomainPaths(ProxyLayout("/srv/odoofleet"), "shop.example.com", "acme")

    script = swap_checked([paths.certificate, paths.key, paths.route], "certificate")

    assert script.index("nginx -t") < script.index("nginx -s reload")
    assert "nginx rejected certificate; the previous ones are back" in script
    assert 'mv -f "$f.prev" "$f"' in script
    assert paths.route.endswith("/_proxy/routes/_domain.acme.shop.example.com.conf")


def test_a_colour_switch_points_the_instance_s_domains_at_the_new_colour_in_one_reload() -> None:
    from workers.sagas.proxy_steps import follow_color_command

    proxy = ProxyLayout("/srv/odoofleet")
    switch = follow_color_command(proxy, "acme", "green")

    assert "/srv/odoofleet/_proxy/routes/_domain.acme.*.conf" in switch
    assert "s/acme-blue-odoo-1/acme-green-odoo-1/g" in switch
    assert switch.count("nginx -t") == 2  # one per branch: with and without domain routes
    assert switch.startswith("flock -w 60 /srv/odoofleet/_proxy/.lock sh -c")
    assert switch.count("flock") == 1  # the lock is taken once (a nested flock would wait)


def test_a_new_domain_route_follows_the_colour_the_server_says_serves(tmp_path: Path) -> None:
    route, active = tmp_path / "route.new", tmp_path / "active_color"
    route.write_text("set $odoo_upstream acme-blue-odoo-1;\n")
    active.write_text("green\n")

    done = subprocess.run(
        ["sh", "-c", follow_active_color(str(route), str(active), "acme")], check=False
    )

    assert done.returncode == 0
    assert route.read_text() == "set $odoo_upstream acme-green-odoo-1;\n"
    active.unlink()
    assert (
        subprocess.run(
            ["sh", "-c", follow_active_color(str(route), str(active), "acme")], check=False
        ).returncode
        == 0
    )
