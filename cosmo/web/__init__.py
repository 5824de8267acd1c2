"""The HTTP side: REST API, CTI WebSocket hub, agent desktop and admin pages."""

from cosmo.web.app import NODE_NAME, HttpServer, WebError, create_app

__all__ = ["NODE_NAME", "HttpServer", "WebError", "create_app"]
