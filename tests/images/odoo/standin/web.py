"""The HTTP routes odoofleet and its tests use, on the HTTP port and on the evented port."""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg2

from . import database, log, websocket
from .errors import OdooError
from .options import Options
from .rpc import Dispatcher, environment, error_response

_werkzeug = log.logger("werkzeug")
_http = log.logger("odoo.http")
MAX_BODY = 16 << 20


class OdooHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], options: Options, evented: bool) -> None:
        super().__init__(address, RequestHandler)
        self.options = options
        self.dispatcher = Dispatcher(options)
        # Prefork mode: only the evented (gevent) server can upgrade to a websocket.
        self.websocket_allowed = evented or options.integer("workers") == 0
        self.websockets: set[websocket.Connection] = set()
        self.websockets_lock = threading.Lock()
        self.stopping = False
        self._in_flight = 0
        self._idle = threading.Condition()

    def close_websockets(self) -> None:
        with self.websockets_lock:
            for connection in list(self.websockets):
                connection.close_going_away()

    def request_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def drain(self, timeout: float) -> None:
        """A graceful stop answers the requests it has started (a blue/green switch loses none);
        idle keep-alive connections are not waited for."""
        self.stopping = True
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Werkzeug/3.0.1"
    server: OdooHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        _werkzeug.info(
            "%s - - [%s] %s", self.client_address[0], self.log_date_time_string(), format % args
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        started = getattr(self, "_started", time.monotonic())
        self.log_message(
            '"%s" %s - 1 0.000 %.3f', self.requestline, str(code), time.monotonic() - started
        )

    # --- plumbing -----------------------------------------------------------------------
    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            self.server.request_started()
            self._counted = True
        return parsed

    def handle_one_request(self) -> None:
        self._counted = False
        try:
            super().handle_one_request()
        finally:
            self._uncount()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.server.request_finished()

    def end_headers(self) -> None:
        if self.server.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        super().end_headers()

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def _html(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8", headers)

    def _redirect(self, location: str) -> None:
        self._html(
            303,
            f'<a href="{html.escape(location)}">{html.escape(location)}</a>',
            {"Location": location},
        )

    def _host(self) -> str:
        """The host dbfilter's %h/%d see: X-Forwarded-Host behind a proxy with proxy_mode."""
        forwarded = self.headers.get("X-Forwarded-Host", "")
        if forwarded and self.server.options.flag("proxy_mode"):
            return forwarded.split(",")[0].strip()
        return self.headers.get("Host", "")

    def _read_json(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError):
            return None
        return payload if isinstance(payload, dict) else None

    # --- dispatch -----------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._started = time.monotonic()
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        routes = {
            "/web/health": lambda: self._health(query),
            "/web/login": lambda: self._login(query),
            "/websocket": self._websocket,
            "/web/database/selector": self._database_manager,
            "/web/database/manager": self._database_manager,
            "/": lambda: self._redirect("/web"),
            "/web": lambda: self._redirect("/web/login"),
        }
        route = routes.get(url.path)
        if route is None:
            self._html(
                404, "<h1>Not Found</h1><p>The requested URL was not found on the server.</p>"
            )
            return
        self._guarded(route)

    def do_POST(self) -> None:
        self._started = time.monotonic()
        path = urlsplit(self.path).path
        routes = {
            "/jsonrpc": self._jsonrpc,
            "/web/session/authenticate": self._authenticate,
            "/web/login": self._login_form,
            "/web/database/list": self._database_list,
            "/longpolling/poll": self._longpolling,
        }
        route = routes.get(path)
        if route is None or (path == "/longpolling/poll" and self.server.options.major >= 16):
            self._html(
                404, "<h1>Not Found</h1><p>The requested URL was not found on the server.</p>"
            )
            return
        self._guarded(route)

    def _guarded(self, route: Any) -> None:
        """A database that does not answer is a 500, like an unhandled psycopg2 error in Odoo."""
        try:
            route()
        except psycopg2.Error as exc:
            _http.exception("Exception during request handling.", exc_info=exc)
            self._html(500, "<h1>Internal Server Error</h1>")

    def _json_route(self, handler: Any) -> None:
        request = self._read_json()
        if request is None:
            self._json(
                400,
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": 400, "message": "Invalid JSON data"},
                },
            )
            return
        request_id = request.get("id")
        params = request.get("params") or {}
        try:
            result, headers = handler(params if isinstance(params, dict) else {})
        except (OdooError, psycopg2.Error) as exc:
            if isinstance(exc, psycopg2.Error):
                _http.exception("Exception during JSON request handling.", exc_info=exc)
            self._json(200, error_response(request_id, exc))
            return
        self._json(200, {"jsonrpc": "2.0", "id": request_id, "result": result}, headers)

    # --- routes -------------------------------------------------------------------------
    def _health(self, query: dict[str, str]) -> None:
        headers = {"Cache-Control": "no-store"}
        if query.get("db_server_status"):
            if database.server_answers(self.server.options):
                self._json(200, {"status": "pass", "db_server_status": True}, headers)
            else:
                self._json(500, {"status": "fail", "db_server_status": False}, headers)
            return
        self._json(200, {"status": "pass"}, headers)

    def _login_database(self, requested: str) -> str | None:
        """Odoo's ensure_db: the requested database if dbfilter lets it through, else the only
        one there is."""
        allowed = self.server.dispatcher.allowed_databases(self._host())
        if requested.strip() in allowed:
            return requested.strip()
        return allowed[0] if len(allowed) == 1 else None

    def _login_page(self, db: str, error: str = "") -> None:
        with environment(self.server.options, db, 1) as env:
            env["res.users"].search_count([])
        alert = f'<p class="alert alert-danger">{html.escape(error)}</p>' if error else ""
        page = (
            "<!DOCTYPE html><html><head><title>Odoo</title></head><body>"
            '<form class="oe_login_form" role="form" method="post" action="/web/login">'
            f'<input type="hidden" name="csrf_token" value="{secrets.token_hex(20)}"/>'
            f'<input type="hidden" name="db" value="{html.escape(db)}"/>'
            '<input type="text" name="login" id="login"/>'
            '<input type="password" name="password" id="password"/>'
            f'{alert}<button type="submit">Log in</button></form></body></html>'
        )
        cookie = f"session_id={secrets.token_urlsafe(30)}; HttpOnly; Path=/"
        self._html(200, page, {"Set-Cookie": cookie})

    def _login(self, query: dict[str, str]) -> None:
        db = self._login_database(query.get("db", ""))
        if db is None:
            self._redirect("/web/database/selector")
            return
        self._login_page(db)

    def _login_form(self) -> None:
        """The login form's POST: a session cookie and a redirect to the web client, or the
        page again with Odoo's "Wrong login/password"."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, MAX_BODY)).decode(errors="replace")
        form = {key: values[-1] for key, values in parse_qs(raw).items()}
        db = self._login_database(form.get("db", ""))
        if db is None:
            self._redirect("/web/database/selector")
            return
        credentials = {
            "db": db,
            "login": form.get("login", ""),
            "password": form.get("password", ""),
        }
        try:
            _info, session_id = self.server.dispatcher.authenticate(credentials, self._host())
        except OdooError:
            self._login_page(db, "Wrong login/password")
            return
        target = "/odoo" if self.server.options.major >= 18 else "/web"
        cookie = f"session_id={session_id}; HttpOnly; Path=/"
        self._html(
            303, f'<a href="{target}">{target}</a>', {"Location": target, "Set-Cookie": cookie}
        )

    def _database_manager(self) -> None:
        if not self.server.options.flag("list_db"):
            self._html(
                403,
                "<h1>Forbidden</h1>"
                "<p>The database manager has been disabled by the administrator</p>",
            )
            return
        rows = "".join(
            f"<li>{html.escape(db)}</li>"
            for db in self.server.dispatcher.allowed_databases(self._host())
        )
        self._html(200, f"<!DOCTYPE html><html><body><ul>{rows}</ul></body></html>")

    def _database_list(self) -> None:
        self._json_route(
            lambda _params: (self.server.dispatcher.list_databases(self._host()), None)
        )

    def _jsonrpc(self) -> None:
        self._json_route(lambda params: (self.server.dispatcher.jsonrpc(params), None))

    def _authenticate(self) -> None:
        def handler(params: dict[str, Any]) -> tuple[Any, dict[str, str]]:
            info, session_id = self.server.dispatcher.authenticate(params, self._host())
            return info, {"Set-Cookie": f"session_id={session_id}; HttpOnly; Path=/"}

        self._json_route(handler)

    def _longpolling(self) -> None:
        # Odoo 15.0's bus: long polling on the evented port; nothing is ever published here.
        self._json_route(lambda _params: ([], None))

    def _websocket(self) -> None:
        options = self.server.options
        if options.major < 16:
            self._html(
                404, "<h1>Not Found</h1><p>The requested URL was not found on the server.</p>"
            )
            return
        if not self.server.websocket_allowed:
            # What real Odoo answers on the HTTP port in prefork mode (no gevent socket).
            _http.error("Exception during request handling.\nKeyError: 'socket'")
            self._html(500, "<h1>Internal Server Error</h1>")
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        problem = websocket.handshake_error(headers, self.command)
        if problem:
            self._html(400, f"<h1>Bad Request</h1><p>{html.escape(problem)}</p>")
            return
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket.accept_key(headers["sec-websocket-key"]))
        self.end_headers()
        self.wfile.flush()
        # An open websocket is no request in flight: a stop closes it instead of waiting.
        self._uncount()
        connection = websocket.Connection(self.rfile, self.wfile)  # type: ignore[arg-type]
        with self.server.websockets_lock:
            self.server.websockets.add(connection)
        try:
            connection.serve()
        finally:
            with self.server.websockets_lock:
                self.server.websockets.discard(connection)
            self.close_connection = True
