"""Every fault knob of local mode, for tests, the reliability suite and the benchmarks.

* ``FaultSettings``: what the SageMaker runtime injects into ``InvokeEndpointAsync`` calls and
  into inferences (set at construction or through its admin API, ``/_local/faults``).
* ``DuplicateDelivery``: the event runner's at-least-once knob (``duplicate_delivery_rate``).
* ``DynamoDBFaultProxy``: a DynamoDB front that throttles one function's writes.

The proxy: point one function at it with ``AWS_ENDPOINT_URL_DYNAMODB`` in that function's
environment (``LocalOptions.function_environment``); botocore then sends that function's
DynamoDB calls here and every other service still goes to ``AWS_ENDPOINT_URL``. While writes
are rejected (``reject_writes``), every write operation (PutItem, UpdateItem, DeleteItem,
BatchWriteItem, TransactWriteItems) is answered as DynamoDB answers an overloaded table,
alternating ``ProvisionedThroughputExceededException`` and ``ThrottlingException`` (HTTP 400,
the JSON 1.0 error shape); reads pass through, so the function sees a table that reads but
cannot write.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import sys
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from asyncinfer.local.lambda_runner.event_shapes import receive_count, sendable_attribute

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)


class FaultSettings(BaseModel):
    """Faults the runtime injects into ``InvokeEndpointAsync`` calls and into inferences.

    Rates are fractions of calls (0 to 1). While ``down_until`` is in the future every call is
    answered ``down_error``. ``seed`` makes the random draws reproducible.

    Two knobs act after a request was accepted:

    * ``expire_rate``: the share of requests that wait in the endpoint's queue past their
      ``RequestTTLSeconds`` (the API reference: "Maximum age in seconds a request can be in the
      queue before it is marked as expired"). The runtime treats them as it treats a request
      that really waited that long: no model call, no output or failure object, and the
      failure notification it sends for an expired request (``inference.py``, step 1).
    * ``drop_notification_rate``: the share of ``InferenceResult`` notifications lost: the
      output or failure object is written as usual, the SNS publish is not made (counted as
      ``notifications_dropped`` in the runtime's stats). Nothing bounds SNS delivery on AWS
      short of its retries, so a notification that never arrives is what the reconciler is for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    added_latency_ms: int = Field(default=0, ge=0, le=600_000)
    throttle_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    down_until: AwareDatetime | None = None
    down_error: Literal["ServiceUnavailable", "ModelNotReadyException"] = "ServiceUnavailable"
    model_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    expire_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    drop_notification_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None

    def updated(self, changes: Mapping[str, Any], now: datetime) -> FaultSettings:
        """Applies an admin update; ``down_for_seconds`` sets ``down_until`` relative to now."""
        values = {**self.model_dump(), **changes}
        down_for = values.pop("down_for_seconds", None)
        if down_for is not None:
            if not isinstance(down_for, int | float) or isinstance(down_for, bool) or down_for < 0:
                raise ValueError("down_for_seconds must be a number of seconds >= 0")
            values["down_until"] = now + timedelta(seconds=down_for)
        return FaultSettings.model_validate(values)


class DuplicateDelivery:
    """The at-least-once fault knob: sends a copy of a received message back to its queue.

    Only a message's first receive is considered, and copies are never copied again, so each
    original is delivered at most twice by this knob (plus any redelivery after a failure).
    For a topic's delivery queue the copy carries the same SNS envelope (same ``MessageId``),
    which is what a duplicate SNS delivery looks like.
    """

    def __init__(self, sqs: SQSClient, rate: float, seed: int | None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"duplicate_delivery_rate must be 0-1, got {rate}")
        self._sqs = sqs
        self._rate = rate
        self._random = random.Random(seed)  # noqa: S311 (fault draws, not secrets)
        self._lock = threading.Lock()
        self._copies: set[str] = set()

    def maybe_duplicate(self, queue_url: str, message: MessageTypeDef) -> bool:
        """Sends a copy of a first-received original at the configured rate; True if it did."""
        if self._rate <= 0 or receive_count(message) > 1:
            return False
        with self._lock:
            if message["MessageId"] in self._copies or self._random.random() >= self._rate:
                return False
        attributes = {
            name: sendable_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        }
        try:
            copy = self._sqs.send_message(
                QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes
            )
        except (BotoCoreError, ClientError):
            logger.exception("sending a duplicate to %s failed", queue_url)
            return False
        with self._lock:
            self._copies.add(copy["MessageId"])
        return True


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
# ``host`` is forwarded: SigV4 signs it, and the local AWS server checks signatures under IAM.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding"})


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A caller that hung up (its read timeout, or a worker killed as a fault) is the
        caller's business: no traceback on stderr for it."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


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
        self._server = _ProxyServer((host, port), _handler_for(self))
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
