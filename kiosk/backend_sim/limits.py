"""What one caller may cost the simulator: body size, idle time, connections at once, TLS handshakes.

Anyone who can reach the port can send before being authenticated, so each of these holds
before a request is looked at:

- a request body is at most ``MAX_BODY_BYTES`` (``/identity/face``, which carries a photo,
  ``MAX_FACE_BODY_BYTES``); a declared ``Content-Length`` above it is answered 413 without
  reading a byte of the body, a chunked body is cut off once it passes the limit;
- a connection that sends nothing for ``IDLE_TIMEOUT_S`` (request line, headers, body or the
  TLS handshake) is closed: a half-sent request does not hold a thread;
- at most ``MAX_CONNECTIONS`` are served at once; more are closed as they arrive;
- with TLS the handshake runs in the connection's own thread, under the idle timeout, not in
  the accepting thread, where one silent client stopped the whole listener.

The figures are part of the backend contract (docs/CONTRACTS.md, openapi.yaml).
"""
from __future__ import annotations

import logging
import ssl
import threading
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from kiosk.services.backend import API_PREFIX

if TYPE_CHECKING:  # Flask is imported where a simulator is built, not where its port is bound (server.bind)
    from flask import Flask, Response

log = logging.getLogger("kiosk.backend_sim")

MAX_BODY_BYTES = 256 * 1024
MAX_FACE_BODY_BYTES = 8 * 1024 * 1024 + 64 * 1024  # the schema's 8,000,000-character image plus the JSON around it
IDLE_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64

_BODY_LIMITS = {API_PREFIX + "/identity/face": MAX_FACE_BODY_BYTES}


def body_limit(path: str) -> int:
    """The largest request body accepted on ``path``, in bytes."""
    return _BODY_LIMITS.get(path, MAX_BODY_BYTES)


def _error(status: int, code: str, message_zh: str, message_en: str) -> Response:
    from flask import Response

    from kiosk.backend_sim.db import dumps

    body = {"error": {"code": code, "message_zh": message_zh, "message_en": message_en}}
    # Connection: close, so the server does not wait for the rest of a body it will not read.
    return Response(dumps(body), status=status, headers={"Content-Type": "application/json; charset=utf-8",
                                                         "Connection": "close"})


def too_large(limit: int) -> Response:
    """The 413 answer (unsigned: nobody has been authenticated yet)."""
    return _error(413, "payload_too_large", "请求内容过大。", f"The request body is larger than {limit} bytes.")


def install(app: Flask) -> None:
    """Read every request body up front, within its size limit and the idle timeout, before any view."""
    from flask import request

    @app.before_request
    def read_body_within_limits() -> Response | None:
        limit = body_limit(request.path)
        if request.content_length is not None and request.content_length > limit:
            return too_large(limit)
        # One byte over: werkzeug stops a chunked body quietly at the maximum, so a body cut
        # short there would pass for a whole one.
        request.max_content_length = limit + 1
        try:
            body = request.get_data(cache=True)  # the views take the cached bytes
        except RequestEntityTooLarge:
            return too_large(limit)
        except (ClientDisconnected, OSError):  # the idle timeout struck while the body came in
            return _error(408, "request_timeout", "请求发送超时。", "The request body did not arrive in time.")
        if len(body) > limit:
            return too_large(limit)
        return None

    @app.errorhandler(413)
    def payload_too_large(_: Exception) -> Response:
        return too_large(body_limit(request.path))


class IdleLimitedHandler(WSGIRequestHandler):
    """Werkzeug's handler with a socket timeout: ``StreamRequestHandler.setup`` applies it to every read."""

    timeout = IDLE_TIMEOUT_S


class LimitedServer(ThreadedWSGIServer):
    """Werkzeug's threaded server with the idle timeout, a cap on connections and per-thread TLS handshakes."""

    def __init__(self, host: str, port: int, app: Any, ssl_context: ssl.SSLContext | None = None,
                 fd: int | None = None) -> None:
        super().__init__(host, port, app, IdleLimitedHandler, fd=fd)
        if ssl_context is not None:
            # werkzeug wraps with the handshake on accept(), in the one accepting thread; a client
            # that connects and says nothing would hold it (and every other client) for good.
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
            self.ssl_context = ssl_context
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("refusing a connection from %s: %d already open", client_address, MAX_CONNECTIONS)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()
