"""The runtime's client of the model server: ``POST /invocations``, as a SageMaker host calls
its container."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from asyncinfer.local.sagemaker import wire

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelResponse:
    status: int
    body: bytes
    content_type: str


class ModelCallError(Exception):
    """The model server could not be reached or did not answer in time."""


class ModelClient:
    """POSTs to the model server's ``/invocations``; one keep-alive connection per worker."""

    def __init__(self, model_url: str) -> None:
        parts = urlsplit(model_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the model URL must be http://host:port, not {model_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._path = parts.path.rstrip("/") + "/invocations"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()
        self._aborted = threading.Event()

    def invoke(
        self,
        body: bytes,
        headers: dict[str, str],
        timeout_seconds: float,
    ) -> ModelResponse:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        reused = connection is not None
        try:
            return self._post(connection, body, headers, timeout_seconds)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # A kept-alive connection the server closed while idle: one fresh attempt.
            self.close_current()
            if not reused or self._aborted.is_set():
                raise
            return self._post(None, body, headers, timeout_seconds)

    def _post(
        self,
        connection: http.client.HTTPConnection | None,
        body: bytes,
        headers: dict[str, str],
        timeout_seconds: float,
    ) -> ModelResponse:
        if self._aborted.is_set():
            raise ConnectionAbortedError("the runtime is stopping")
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout_seconds)
            self._local.connection = connection
            with self._lock:
                self._open.add(connection)
        elif connection.sock is not None:
            connection.sock.settimeout(timeout_seconds)
        connection.timeout = timeout_seconds
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
        except Exception:
            self.close_current()
            raise
        if response.will_close:
            self.close_current()
        content_type = response.getheader("Content-Type") or wire.DEFAULT_CONTENT_TYPE
        return ModelResponse(response.status, content, content_type)

    def close_current(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._open.discard(connection)
            connection.close()

    def abort_all(self) -> None:
        """Interrupts every call in progress and refuses new ones (the runtime is stopping)."""
        self._aborted.set()
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            sock = connection.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    logger.debug("model connection already closed", exc_info=True)

    def close_all(self) -> None:
        with self._lock:
            connections = list(self._open)
            self._open.clear()
        for connection in connections:
            connection.close()
