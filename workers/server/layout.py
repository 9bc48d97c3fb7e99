"""Where an instance lives on its server: the paths under the base directory and the names of
its Docker projects, containers, volumes and networks (ODOO-HOSTING.md §2.2)."""

from __future__ import annotations

import msgspec

from workers.server.fields import check_color, check_root, check_slug

DEFAULT_ROOT = "/srv/odoofleet"
EDGE_NETWORK = "odoofleet-edge"
PROXY_PROJECT = "odoofleet-proxy"
PROXY_CONTAINER = "odoofleet-proxy"


class InstanceLayout(msgspec.Struct, frozen=True):
    """Paths and Docker names of one instance. Every name starts with the slug, so two
    instances on one server never clash."""

    slug: str
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        check_slug(self.slug)
        check_root(self.root)

    # ---- files ----
    @property
    def dir(self) -> str:
        return f"{self.root}/{self.slug}"

    @property
    def lock(self) -> str:
        return f"{self.dir}/.lock"

    @property
    def db_compose(self) -> str:
        return f"{self.dir}/db/compose.yaml"

    @property
    def app_compose(self) -> str:
        return f"{self.dir}/app/compose.yaml"

    def color_env(self, color: str) -> str:
        return f"{self.dir}/app/.env.{check_color(color)}"

    @property
    def instance_env(self) -> str:
        return f"{self.dir}/app/instance.env"

    @property
    def odoo_conf(self) -> str:
        return f"{self.dir}/odoo.conf"

    @property
    def secrets_dir(self) -> str:
        return f"{self.dir}/secrets"

    @property
    def active_color(self) -> str:
        return f"{self.dir}/active_color"

    @property
    def ports_compose(self) -> str:
        return f"{self.dir}/ports/compose.yaml"

    @property
    def ports_conf(self) -> str:
        return f"{self.dir}/ports/nginx.conf"

    @property
    def admin_password_script(self) -> str:
        """The admin password's `odoo shell` script, there only while the shell reads it."""
        return f"{self.secrets_dir}/admin_password.py"

    # ---- Docker names ----
    @property
    def db_project(self) -> str:
        return f"{self.slug}-db"

    @property
    def db_container(self) -> str:
        return f"{self.slug}-db-db-1"

    def app_project(self, color: str) -> str:
        return f"{self.slug}-{check_color(color)}"

    def app_container(self, color: str) -> str:
        return f"{self.app_project(color)}-odoo-1"

    @property
    def ports_project(self) -> str:
        """The forwarder that publishes the instance's host ports
        (workers/server/render_proxy.py)."""
        return f"{self.slug}-ports"

    @property
    def ports_container(self) -> str:
        return self.ports_project

    @property
    def containers(self) -> tuple[str, ...]:
        """Every container the instance may have on its server."""
        colors = tuple(self.app_container(color) for color in ("blue", "green"))
        return (self.db_container, *colors, self.ports_container)

    @property
    def volumes(self) -> tuple[str, ...]:
        return (self.pgdata_volume, self.filestore_volume, self.extra_addons_volume)

    @property
    def pgdata_volume(self) -> str:
        return f"{self.slug}_pgdata"

    @property
    def filestore_volume(self) -> str:
        return f"{self.slug}_filestore"

    @property
    def extra_addons_volume(self) -> str:
        return f"{self.slug}_extra_addons"

    @property
    def backend_network(self) -> str:
        return f"{self.slug}_backend"


class ProxyLayout(msgspec.Struct, frozen=True):
    """The per-server nginx proxy. `_proxy` cannot clash with a slug, which starts with
    [a-z0-9]."""

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        check_root(self.root)

    @property
    def dir(self) -> str:
        return f"{self.root}/_proxy"

    @property
    def lock(self) -> str:
        return f"{self.dir}/.lock"

    @property
    def compose(self) -> str:
        return f"{self.dir}/compose.yaml"

    @property
    def conf_file(self) -> str:
        return f"{self.conf_dir}/odoofleet.conf"

    @property
    def conf_dir(self) -> str:
        return f"{self.dir}/conf.d"

    @property
    def routes_dir(self) -> str:
        return f"{self.dir}/routes"

    def route(self, slug: str) -> str:
        return f"{self.routes_dir}/{check_slug(slug)}.conf"

    def staged_route(self, slug: str) -> str:
        """Where a new route is uploaded before the switch; nginx includes only `*.conf`."""
        return f"{self.route(slug)}.new"

    def previous_route(self, slug: str) -> str:
        """The route a switch replaced, kept to restore it if nginx rejects the new one."""
        return f"{self.route(slug)}.prev"
