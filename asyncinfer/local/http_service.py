"""A threaded HTTP/1.1 server on loopback that stops cleanly, shared by local mode's servers.

``http.server.ThreadingHTTPServer`` cannot stop while a client (boto3's connection pool, for
one) holds an idle keep-alive connection open: the connection's thread waits for the next
request forever. ``LoopbackHTTPServer`` tracks its connections and shuts them down on stop, and
names its threads so that a test can check that none is left behind.
"""

from __future__ import annotations

import itertools
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol

logger = logging.getLogger(__name__)

IDLE_CONNECTION_TIMEOUT_SECONDS = 120.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024 * 1024


class RequestBodyError(Exception):
    """The request body cannot be read: ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LoopbackHTTPServer(HTTPServer):
    """One named thread per connection; ``close_connections`` ends idle keep-alive ones."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: type[BaseHTTPRequestHandler],
        thread_prefix: str,
        application: Any,
    ) -> None:
        self.thread_prefix = thread_prefix
        self.application = application
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._numbers = itertools.count(1)
        super().__init__(address, handler_class)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"{self.thread_prefix}-conn-{next(self._numbers)}",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._threads = [alive for alive in self._threads if alive.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("connection already closed", exc_info=True)

    def join_connection_threads(self, timeout: float) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)


class LoopbackHTTPService:
    """Runs a ``LoopbackHTTPServer`` on its own thread: ``start()``, ``url``, ``stop()``."""

    def __init__(
        self,
        handler_class: type[BaseHTTPRequestHandler],
        application: Any,
        host: str,
        port: int,
        thread_prefix: str,
    ) -> None:
        self._handler_class = handler_class
        self._application = application
        self._host = host
        self._port = port
        self._thread_prefix = thread_prefix
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        server = LoopbackHTTPServer(
            (self._host, self._port), self._handler_class, self._thread_prefix, self._application
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self._thread_prefix}-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join(timeout)
        server.close_connections()
        server.server_close()
        server.join_connection_threads(timeout)
        self._server = None
        self._thread = None


class JSONRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with body reading and JSON answers; logs through logging."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (40 ms per keep-alive request on Linux).
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_TIMEOUT_SECONDS
    max_body_bytes = DEFAULT_MAX_BODY_BYTES
    server: LoopbackHTTPServer

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError as error:
            self.close_connection = True
            raise RequestBodyError(400, f"invalid Content-Length {length_header!r}") from error
        if length < 0:
            self.close_connection = True
            raise RequestBodyError(400, f"invalid Content-Length {length_header!r}")
        if length > self.max_body_bytes:
            self.close_connection = True
            raise RequestBodyError(413, f"the body is larger than {self.max_body_bytes} bytes")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as error:
                self.close_connection = True
                raise RequestBodyError(400, "malformed chunked body") from error
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > self.max_body_bytes:
                self.close_connection = True
                raise RequestBodyError(413, f"the body is larger than {self.max_body_bytes} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(document).encode("utf-8"), "application/json", headers)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class Serving(Protocol):
    """A local-mode server run as its own process (the SageMaker runtime, the model server)."""

    @property
    def port(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def serve_until_signalled(
    server: Serving, *, when_started: Callable[[], None] | None = None
) -> None:
    """A server process's main loop: start, run ``when_started``, print ``READY <port>`` (what
    the process that started it waits for), serve until SIGTERM or SIGINT, then stop."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    server.start()
    try:
        if when_started is not None:
            when_started()
        print(f"READY {server.port}", flush=True)
        stopped.wait()
    finally:
        server.stop()
