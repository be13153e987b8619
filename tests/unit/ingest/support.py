"""Fakes and event builders for the ingest function's tests.

Events are built as the real Lambda event JSON: S3 notification records as S3 sends them (key
URL-encoded, with ``sequencer`` and ``userIdentity``) or as moto sends them (without), wrapped
in SQS records as the event source mapping delivers them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote_plus, unquote

from botocore.exceptions import ClientError

from lambdas.ingest.clients import invocation_error
from lambdas.ingest.values import InvocationRequest, InvocationResponse

REGION = "us-east-1"
ACCOUNT = "123456789012"
START = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def client_error(code: str, status: int, message: str = "", operation: str = "X") -> ClientError:
    """A botocore ClientError exactly as the SDK raises it for a service error."""
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message or f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(cast("Any", response), operation)


def throttling() -> ClientError:
    return client_error("ThrottlingException", 429, "Rate exceeded", "InvokeEndpointAsync")


class ManualClock:
    """Wall clock and the current invocation's time budget, advanced only by ``sleep``."""

    def __init__(self, budget_seconds: float = 300.0) -> None:
        self._lock = threading.Lock()
        self.elapsed = 0.0
        self.invocation_started = 0.0
        self.budget_seconds = budget_seconds
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return START + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.elapsed += seconds

    def next_invocation(self, after_seconds: float) -> None:
        """Time passes, and a new invocation starts with a full budget."""
        with self._lock:
            self.elapsed += after_seconds
            self.invocation_started = self.elapsed

    def remaining(self) -> float:
        with self._lock:
            return self.budget_seconds - (self.elapsed - self.invocation_started)


@dataclass
class FakeLambdaContext:
    clock: ManualClock
    function_name: str = "ingest"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ingest"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/ingest"
    log_stream_name: str = "2026/11/21/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.clock.remaining() * 1000)


Scripted = Exception | Callable[[InvocationRequest], None]


class FakeInvoker:
    """Records every InvokeEndpointAsync call; scripted per key with errors or actions.

    ``script(key, *outcomes)`` makes the next calls for that object key raise the given
    exceptions (or run the given callables) in order, then succeed; ``always(key, error)``
    makes every call for it raise.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[InvocationRequest] = []
        self._scripts: dict[str, deque[Scripted]] = {}
        self._always: dict[str, Exception] = {}
        self.before_each: Callable[[InvocationRequest], None] | None = None
        # A Body request names no object: the key of each uploaded version, by inference id.
        self.keys: dict[str, str] = {}

    def script(self, key: str, *outcomes: Scripted) -> None:
        self._scripts.setdefault(key, deque()).extend(outcomes)

    def always(self, key: str, error: Exception) -> None:
        self._always[key] = error

    def recover(self, key: str) -> None:
        """Calls for ``key`` succeed from now on."""
        with self._lock:
            self._always.pop(key, None)
            self._scripts.pop(key, None)

    def key_of(self, request: InvocationRequest) -> str:
        if request.input_location is not None:
            return request.input_location.split("/", 3)[3]
        return self.keys.get(request.inference_id, request.inference_id)

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        key = self.key_of(request)
        with self._lock:
            self.calls.append(request)
            queued = self._scripts.get(key)
            outcome = queued.popleft() if queued else self._always.get(key)
        if self.before_each is not None:
            self.before_each(request)
        if isinstance(outcome, Exception):
            # Translated as SageMakerAsyncInvoker translates botocore's errors.
            translated = invocation_error(outcome)
            if translated is None:
                raise outcome
            raise translated from outcome
        if outcome is not None:
            outcome(request)
        name = uuid.uuid4()
        return InvocationResponse(
            inference_id=request.inference_id,
            output_location=f"s3://output-bucket/results/{name}.out",
            failure_location=f"s3://output-bucket/failures/{name}-error.out",
        )


def decode_custom_attributes(encoded: str) -> list[tuple[str, str]]:
    """The inverse of ``encode_custom_attributes`` (what a model container does)."""
    if not encoded:
        return []
    pairs = []
    for item in encoded.split(","):
        name, _, value = item.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def encode_key(key: str) -> str:
    """How S3 writes a key into an event notification."""
    return quote_plus(key, safe="/")


def s3_record(
    bucket: str,
    key: str,
    *,
    size: int | None = 10,
    etag: str | None = "0123456789abcdef0123456789abcdef",
    version_id: str | None = None,
    event_name: str = "ObjectCreated:Put",
    as_moto: bool = False,
) -> dict[str, Any]:
    """One S3 notification record. ``as_moto`` drops what moto's notifications lack."""
    obj: dict[str, Any] = {"key": encode_key(key)}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag
    if version_id is not None:
        obj["versionId"] = version_id
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-21T11:59:59.123Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ingest",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    if not as_moto:
        obj["sequencer"] = "0066A8D0E77DE42BC5"
        record["userIdentity"] = {"principalId": "AWS:AIDAJEXAMPLE"}
        record["requestParameters"] = {"sourceIPAddress": "203.0.113.7"}
        record["responseElements"] = {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "id2"}
        record["s3"]["bucket"]["ownerIdentity"] = {"principalId": "A3NL1KOZZKExample"}
    return record


def object_record(
    put_response: dict[str, Any], bucket: str, key: str, size: int, **kwargs: Any
) -> dict[str, Any]:
    """The notification record S3 sends for an object just written with put_object."""
    return s3_record(
        bucket,
        key,
        size=size,
        etag=put_response["ETag"].strip('"'),
        version_id=put_response.get("VersionId"),
        **kwargs,
    )


def notification(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_test_event(bucket: str) -> dict[str, Any]:
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-21T11:00:00.000Z",
        "Bucket": bucket,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }


def sqs_record(body: str | dict[str, Any], *, message_id: str | None = None) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795262399000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795262399100",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ingest",
        "awsRegion": REGION,
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def failed_ids(response: dict[str, Any] | None) -> set[str]:
    assert response is not None
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def emf_documents(output: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents printed among the log lines."""
    documents = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_values(documents: Iterable[dict[str, Any]], name: str) -> list[float]:
    """Every value of a metric (EMF holds one value or a list of values per document)."""
    values: list[float] = []
    for document in documents:
        value = document.get(name)
        if isinstance(value, list):
            values.extend(value)
        elif value is not None:
            values.append(value)
    return values
