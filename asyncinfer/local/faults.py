"""A fault-injecting DynamoDB front: forwards to the moto server, or answers throttling errors.

Point one function at it with ``AWS_ENDPOINT_URL_DYNAMODB`` in that function's environment
(``LocalOptions.function_environment``); botocore then sends that function's DynamoDB calls here
and every other service still goes to ``AWS_ENDPOINT_URL``. While writes are rejected
(``reject_writes``), every write operation (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
TransactWriteItems) is answered as DynamoDB answers an overloaded table, alternating
``ProvisionedThroughputExceededException`` and ``ThrottlingException`` (HTTP 400, the JSON 1.0
error shape); reads pass through, so the function sees a table that reads but cannot write.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
THROTTLING_ERRORS = (
    (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    ("com.amazon.coral.availability#ThrottlingException", "Rate of requests exceeds the allowed"),
)
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "host"})


class DynamoDBFaultProxy:
    """An HTTP proxy on loopback in front of one DynamoDB endpoint (the moto server)."""

    def __init__(
        self, upstream_url: str | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        """``upstream_url`` may come later (``connect``): the proxy's own URL must be known
        before local mode starts, the moto server's only after; until then it answers 503."""
        self._upstream: tuple[str, int] | None = None
        if upstream_url is not None:
            self.connect(upstream_url)
        self._lock = threading.Lock()
        self._rejecting = False
        self._rejected = 0
        self._forwarded = 0
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dynamodb-fault-proxy", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> DynamoDBFaultProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def connect(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream_url!r}")
        self._upstream = (parts.hostname, parts.port)

    def reject_writes(self, rejecting: bool) -> None:
        with self._lock:
            self._rejecting = rejecting

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"rejected": self._rejected, "forwarded": self._forwarded}

    def _decide(self, operation: str) -> tuple[str, str] | None:
        """The error to answer with, or None to forward."""
        with self._lock:
            if self._rejecting and operation in WRITE_OPERATIONS:
                error = THROTTLING_ERRORS[self._rejected % len(THROTTLING_ERRORS)]
                self._rejected += 1
                return error
            self._forwarded += 1
            return None

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if self._upstream is None:
            unavailable = {"__type": "ServiceUnavailable", "message": "not connected yet"}
            return (
                503,
                [("Content-Type", "application/x-amz-json-1.0")],
                json.dumps(unavailable).encode(),
            )
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


def _handler_for(proxy: DynamoDBFaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the proxy's counters say what happened."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            target = self.headers.get("X-Amz-Target", "")
            error = proxy._decide(target.rsplit(".", 1)[-1])
            if error is not None:
                self._reply(
                    400,
                    [("Content-Type", "application/x-amz-json-1.0")],
                    json.dumps({"__type": error[0], "message": error[1]}).encode(),
                )
                return
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in _HOP_BY_HOP
            }
            status, response_headers, response_body = proxy._forward(
                "POST", self.path, headers, body
            )
            self._reply(status, response_headers, response_body)

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
