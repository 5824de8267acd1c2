"""The aiohttp application and the HTTP server that runs it.

``create_app()`` builds the application; routes for the REST API, the CTI
WebSocket and the pages are added by their own modules.  ``HttpServer`` owns
the listening socket.
"""

from __future__ import annotations

import logging

from aiohttp import web

__all__ = ["NODE_NAME", "HttpServer", "WebError", "create_app"]

log = logging.getLogger(__name__)

NODE_NAME = web.AppKey("node_name", str)
"""The node's name, for handlers that report it."""


class WebError(Exception):
    """Base of every error raised by :mod:`cosmo.web`."""


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 with ``{"status": "ok"}`` while the process serves HTTP."""
    return web.json_response({"status": "ok"})


def create_app(*, node_name: str = "cosmo") -> web.Application:
    """The HTTP application with its base routes (``GET /healthz``).

    :param node_name: reported by handlers that name the node.
    """
    app = web.Application()
    app[NODE_NAME] = node_name
    app.router.add_get("/healthz", healthz, name="healthz")
    return app


class HttpServer:
    """Serves an application on ``host:port``; ``port=0`` takes a free port (see :attr:`port`).

    ``start()`` and ``close()`` are idempotent.
    """

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 8080, *,
                 shutdown_timeout: float = 5.0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    @property
    def app(self) -> web.Application:
        """The application served."""
        return self._app

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose when asked for 0)."""
        if self._bound_port is None:
            raise WebError("HTTP server not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving.  Raises :class:`WebError` when the address cannot be bound."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self._app, access_log=logging.getLogger("cosmo.web.access"),
                               shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise WebError(f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}") from exc
        self._runner = runner
        addresses = runner.addresses
        self._bound_port = int(addresses[0][1]) if addresses else self._port
        log.info("HTTP listening on %s", self.url)

    async def close(self) -> None:
        """Stop listening and finish open requests (up to the shutdown timeout)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("HTTP on %s:%s closed", self._host, self._bound_port)
        self._bound_port = None
