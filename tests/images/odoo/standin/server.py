"""Server mode: the HTTP service, the evented service in prefork mode, a clean SIGTERM."""

from __future__ import annotations

import signal
import threading

from . import log
from .options import Options
from .web import OdooHTTPServer

_logger = log.logger("odoo.service.server")


def serve(options: Options) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        _logger.info("Initiating shutdown")
        _logger.info("Hit CTRL-C again or send a second signal to force the shutdown.")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    interface = options.get("http_interface") or "0.0.0.0"
    prefork = options.integer("workers") > 0
    servers: list[OdooHTTPServer] = []
    if options.flag("http_enable"):
        servers.append(
            OdooHTTPServer((interface, options.integer("http_port")), options, evented=False)
        )
    if prefork and servers:
        # Real Odoo forks HTTP workers and a gevent process; one process serves both ports here.
        servers.append(OdooHTTPServer((interface, options.evented_port), options, evented=True))
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}) for s in servers
    ]
    for thread in threads:
        thread.start()
    mode = "prefork" if prefork else "threaded"
    if servers:
        _logger.info(
            "HTTP service (werkzeug) running on %s:%s", interface, options.get("http_port")
        )
    if prefork and servers:
        _logger.info(
            "Evented Service (longpolling) running on %s:%s", interface, options.evented_port
        )
    _logger.info("Server running in %s mode", mode)
    stop.wait()
    for server in servers:
        server.shutdown()
        server.close_websockets()
    for server in servers:
        server.drain(timeout=10)
        server.server_close()
    _logger.info("Stopping gracefully")
    return 0
