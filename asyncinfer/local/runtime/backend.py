"""The local SageMaker async runtime: ``InvokeEndpointAsync`` on loopback, served for real.

Plain boto3 (``boto3.client("sagemaker-runtime", endpoint_url=runtime.url)``) and the AWS CLI
(``aws sagemaker-runtime invoke-endpoint-async --endpoint-url ...``) work against it unchanged:
it answers ``POST /endpoints/{EndpointName}/async-invocations`` with 202, the ``InferenceId``
body and the output and failure locations, and rejects bad requests with the error codes
botocore parses (see ``async_api``). Signatures are accepted without being checked.

An accepted request waits in an in-memory queue for one of
``MaxConcurrentInvocationsPerInstance x instances`` workers, which, as SageMaker does:

1. fail it if it waited longer than its ``RequestTTLSeconds``;
2. read the input object from S3 (the moto server) and POST it to the model server's
   ``/invocations`` with the request's content type, accept and custom attributes, waiting at
   most ``InvocationTimeoutSeconds`` for the model (as a socket timeout: for each read);
3. write a 2xx answer to ``<S3OutputPath>/<uuid>.out`` (with the model's content type), or the
   error answer to ``<S3FailurePath>/<uuid>-error.out``; the locations are the ones the invoke
   call returned;
4. publish the ``InferenceResult`` notification to the success or the error topic.

Faults for tests and benchmarks (``FaultSettings``) are set at construction or at run time
through the admin API: ``GET|POST /_local/faults``, ``GET /_local/stats``,
``POST /_local/reset`` (JSON). ``python -m asyncinfer.local.runtime --help`` runs it alone.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import logging
import queue
import random
import signal
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from asyncinfer.local import async_api
from asyncinfer.local.async_api import AcceptedInvocation, ApiError
from asyncinfer.local.http_service import JSONRequestHandler, LoopbackHTTPService, RequestBodyError
from asyncinfer.local.spec import EndpointSpec
from lambdas.common.records import format_timestamp

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT_ID = "123456789012"
ADMIN_PREFIX = "/_local"
THREAD_PREFIX = "sagemaker-runtime"
MODEL_ERROR_EXCERPT_CHARS = 512
Clock = Callable[[], datetime]
Outcome = Literal["completed", "failed", "expired", "abandoned"]


def system_clock() -> datetime:
    return datetime.now(UTC)


class FaultSettings(BaseModel):
    """Faults the runtime injects into ``InvokeEndpointAsync`` calls and into inferences.

    Rates are fractions of calls (0 to 1). While ``down_until`` is in the future every call is
    answered ``down_error``. ``seed`` makes the random draws reproducible.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    added_latency_ms: int = Field(default=0, ge=0, le=600_000)
    throttle_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    down_until: AwareDatetime | None = None
    down_error: Literal["ServiceUnavailable", "ModelNotReadyException"] = "ServiceUnavailable"
    model_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
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


@dataclass
class _Stats:
    requests: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    notifications_published: int = 0
    notification_errors: int = 0
    accepted_per_inference_id: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class ModelResponse:
    status: int
    body: bytes
    content_type: str


class ModelCallError(Exception):
    """The model server could not be reached or did not answer in time."""


class _Abandoned(Exception):
    """The runtime stopped while the request was being processed."""


class _ModelClient:
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
        content_type = response.getheader("Content-Type") or async_api.DEFAULT_CONTENT_TYPE
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


class LocalRuntime:
    """The async endpoint of one ``EndpointSpec``: HTTP front end, queue and workers."""

    def __init__(
        self,
        endpoint: EndpointSpec,
        aws_endpoint_url: str,
        region: str,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: FaultSettings | None = None,
        clock: Clock = system_clock,
        aws_access_key_id: str = "local",
        aws_secret_access_key: str = "local",  # noqa: S107 (moto accepts any credentials)
    ) -> None:
        for path in (endpoint.output_path, endpoint.failure_path):
            async_api.split_s3_uri(path)  # a ValueError now, not a lost request later
        self.endpoint = endpoint
        self.region = region
        self.worker_count = max(
            1, endpoint.max_concurrent_invocations_per_instance * endpoint.instance_count
        )
        self._clock = clock
        self._faults = faults or FaultSettings()
        self._random = random.Random(self._faults.seed)  # noqa: S311 (fault draws, not secrets)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._stats = _Stats()
        self._stopping = threading.Event()
        self._queue: queue.Queue[AcceptedInvocation | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._model = _ModelClient(endpoint.model_url)
        config = Config(
            max_pool_connections=self.worker_count + 4,
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
        )
        options: dict[str, Any] = {
            "endpoint_url": aws_endpoint_url,
            "region_name": region,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "config": config,
        }
        with _SESSION_LOCK:
            session = _shared_session()
            self._s3: S3Client = session.client("s3", **options)
            self._sns: SNSClient = session.client("sns", **options)
        self._http = LoopbackHTTPService(_RuntimeRequestHandler, self, host, port, THREAD_PREFIX)
        self.account_id = _account_of(endpoint.success_topic_arn or endpoint.error_topic_arn)

    # lifecycle

    def start(self) -> None:
        for number in range(1, self.worker_count + 1):
            worker = threading.Thread(
                target=self._work, name=f"{THREAD_PREFIX}-worker-{number}", daemon=True
            )
            self._workers.append(worker)
            worker.start()
        self._http.start()
        logger.info(
            "endpoint %s on %s: %d workers, model %s",
            self.endpoint.name,
            self.url,
            self.worker_count,
            self.endpoint.model_url,
        )

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def admin_url(self) -> str:
        return self.url + ADMIN_PREFIX

    def stop(self, drain: bool = False, timeout: float = 10.0) -> None:
        """Stops accepting, then finishes queued work (``drain``) or abandons it.

        Draining waits at most ``timeout`` seconds; whatever is left is abandoned: queued
        requests are dropped and calls to the model are cut. No thread survives.
        """
        with self._lock:
            self._stopping.set()
        self._http.stop()
        if drain:
            self.wait_idle(timeout)
        abandoned = 0
        while True:
            try:
                invocation = self._queue.get_nowait()
            except queue.Empty:
                break
            if invocation is not None:
                abandoned += 1
                self._finish_one("abandoned")
        if abandoned:
            logger.warning("abandoned %d queued requests", abandoned)
        self._model.abort_all()
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout)
        self._workers.clear()
        self._model.close_all()
        self._s3.close()
        self._sns.close()

    def wait_idle(self, timeout: float) -> bool:
        """True once no request is queued or in progress (within ``timeout`` seconds)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # faults and stats

    @property
    def faults(self) -> FaultSettings:
        with self._lock:
            return self._faults

    def set_faults(self, faults: FaultSettings) -> None:
        with self._lock:
            if faults.seed is not None and faults.seed != self._faults.seed:
                self._random.seed(faults.seed)
            self._faults = faults

    def update_faults(self, changes: Mapping[str, Any]) -> FaultSettings:
        faults = self.faults.updated(changes, self._clock())
        self.set_faults(faults)
        return faults

    def stats(self) -> dict[str, Any]:
        with self._lock:
            stats = self._stats
            per_id = dict(stats.accepted_per_inference_id)
            return {
                "endpoint_name": self.endpoint.name,
                "workers": self.worker_count,
                "requests": stats.requests,
                "accepted": stats.accepted,
                "rejected": dict(stats.rejected),
                "completed": stats.outcomes["completed"],
                "failed": stats.outcomes["failed"],
                "expired": stats.outcomes["expired"],
                "abandoned": stats.outcomes["abandoned"],
                "in_flight": stats.in_flight,
                "max_in_flight": stats.max_in_flight,
                "queue_depth": self._queue.qsize(),
                "notifications_published": stats.notifications_published,
                "notification_errors": stats.notification_errors,
                "accepted_per_inference_id": per_id,
                "duplicate_inference_ids": sorted(key for key, n in per_id.items() if n > 1),
            }

    def reset_stats(self) -> None:
        """Zeroes the counters; the gauges (in flight, queue depth) keep their live values."""
        with self._lock:
            in_flight = self._stats.in_flight
            self._stats = _Stats(in_flight=in_flight, max_in_flight=in_flight)

    # the API

    def invoke_async(
        self, endpoint_name: str, headers: Mapping[str, str], body: bytes
    ) -> AcceptedInvocation:
        """Handles one ``InvokeEndpointAsync`` call; raises ``ApiError`` to reject it."""
        with self._lock:
            self._stats.requests += 1
            faults = self._faults
        try:
            if faults.added_latency_ms:
                self._stopping.wait(faults.added_latency_ms / 1000)
            self._inject_call_fault(faults)
            request = async_api.parse_invocation(endpoint_name, headers, body)
            if request.endpoint_name != self.endpoint.name:
                raise async_api.endpoint_not_found(request.endpoint_name, self.account_id)
            invocation = async_api.accept_invocation(
                request, self.endpoint.output_path, self.endpoint.failure_path, self._clock()
            )
            with self._lock:
                if self._stopping.is_set():
                    raise ApiError(async_api.SERVICE_UNAVAILABLE, "The endpoint is stopping.")
                self._pending += 1
                self._stats.accepted += 1
                self._stats.accepted_per_inference_id[invocation.inference_id] += 1
                self._queue.put(invocation)
        except ApiError as error:
            with self._lock:
                self._stats.rejected[error.code] += 1
            raise
        return invocation

    def _inject_call_fault(self, faults: FaultSettings) -> None:
        now = self._clock()
        if faults.down_until is not None and now < faults.down_until:
            until = format_timestamp(faults.down_until)
            raise ApiError(
                faults.down_error, f"Endpoint {self.endpoint.name} is unavailable until {until}."
            )
        if self._draw(faults.throttle_rate):
            raise ApiError(async_api.THROTTLING_EXCEPTION, "Rate exceeded")
        if self._draw(faults.error_rate):
            with self._lock:
                code = self._random.choice(
                    (async_api.SERVICE_UNAVAILABLE, async_api.INTERNAL_FAILURE)
                )
            message = {
                async_api.SERVICE_UNAVAILABLE: "The service is unavailable. Try again later.",
                async_api.INTERNAL_FAILURE: "An internal failure occurred.",
            }[code]
            raise ApiError(code, message)

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def publish_test_notifications(self) -> None:
        """Publishes ``TestNotification`` to both topics, as SageMaker does after creating the
        endpoint."""
        message = async_api.endpoint_test_notification()
        for topic_arn in {self.endpoint.success_topic_arn, self.endpoint.error_topic_arn}:
            if topic_arn:
                self._publish(topic_arn, message)

    # the workers

    def _work(self) -> None:
        while True:
            invocation = self._queue.get()
            if invocation is None:
                return
            with self._lock:
                self._stats.in_flight += 1
                self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)
            outcome: Outcome = "failed"
            try:
                outcome = self._process(invocation)
            except _Abandoned:
                outcome = "abandoned"
                logger.info("abandoned %s: the runtime is stopping", invocation.inference_id)
            except Exception as error:
                logger.exception("processing %s failed", invocation.inference_id)
                self._report_internal_failure(invocation, error)
            finally:
                with self._lock:
                    self._stats.in_flight -= 1
                self._finish_one(outcome)

    def _report_internal_failure(self, invocation: AcceptedInvocation, error: Exception) -> None:
        """A bug or an outage must not lose the request: the error topic still hears of it."""
        try:
            self._fail(invocation, f"InternalFailure: {type(error).__name__}: {error}", None)
        except Exception:
            logger.exception("could not report the failure of %s", invocation.inference_id)

    def _finish_one(self, outcome: Outcome) -> None:
        with self._lock:
            self._stats.outcomes[outcome] += 1
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def _process(self, invocation: AcceptedInvocation) -> Outcome:
        """Runs one request; returns the counter it ends in (completed, failed, expired)."""
        request = invocation.request
        waited = (self._clock() - invocation.received_at).total_seconds()
        if waited > request.request_ttl_seconds:
            self._fail(
                invocation,
                f"Request has expired: it waited {waited:.0f} seconds in the queue, longer "
                f"than its RequestTTLSeconds ({request.request_ttl_seconds}).",
                failure_body=None,
            )
            return "expired"
        if self._draw(self.faults.model_failure_rate):
            response = ModelResponse(
                500,
                json.dumps({"error": "injected model failure (local fault injection)"}).encode(),
                "application/json",
            )
        else:
            try:
                payload = self._read_input(invocation)
            except (ClientError, BotoCoreError) as error:
                self._fail(
                    invocation,
                    f"ClientError: Could not read the input at {request.input_location}: "
                    f"{_describe_aws_error(error)}",
                    failure_body=None,
                )
                return "failed"
            try:
                response = self._call_model(invocation, payload)
            except ModelCallError as error:
                reason = str(error)
                self._fail(invocation, reason, failure_body=(reason.encode(), "text/plain"))
                return "failed"
        if 200 <= response.status < 300:
            return self._complete(invocation, response)
        kind = "client" if response.status < 500 else "server"
        excerpt = response.body[:MODEL_ERROR_EXCERPT_CHARS].decode("utf-8", "replace")
        self._fail(
            invocation,
            f"ClientError: Received {kind} error ({response.status}) from model with message "
            f'"{excerpt}". See the SageMaker Endpoint logs in your account for more information.',
            failure_body=(response.body, response.content_type),
        )
        return "failed"

    def _read_input(self, invocation: AcceptedInvocation) -> bytes:
        request = invocation.request
        if request.input_location is None:
            return request.body or b""
        bucket, key = async_api.split_s3_uri(request.input_location)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _call_model(self, invocation: AcceptedInvocation, payload: bytes) -> ModelResponse:
        request = invocation.request
        headers = {"Content-Type": invocation.content_type}
        if request.accept is not None:
            headers["Accept"] = request.accept
        if request.custom_attributes is not None:
            headers[async_api.CUSTOM_ATTRIBUTES_HEADER] = request.custom_attributes
        timeout = request.invocation_timeout_seconds
        try:
            return self._model.invoke(payload, headers, timeout)
        except TimeoutError as error:
            raise ModelCallError(
                f"ModelError: The model did not answer within the invocation timeout "
                f"({timeout} seconds)."
            ) from error
        except (OSError, http.client.HTTPException) as error:
            if self._stopping.is_set():
                raise _Abandoned from error
            raise ModelCallError(
                f"ServerError: Could not reach the model at {self.endpoint.model_url}: {error}"
            ) from error

    def _complete(self, invocation: AcceptedInvocation, response: ModelResponse) -> Outcome:
        try:
            self._put(invocation.output_location, response.body, response.content_type)
        except (ClientError, BotoCoreError) as error:
            self._fail(
                invocation,
                f"ServerError: Could not write the output to {invocation.output_location}: "
                f"{_describe_aws_error(error)}",
                failure_body=None,
            )
            return "failed"
        body = response.body if self.endpoint.include_response_body else None
        notification = async_api.success_notification(
            invocation,
            region=self.region,
            event_time=self._clock(),
            response_content_type=response.content_type,
            response_body=body,
            response_status=response.status,
        )
        if self.endpoint.success_topic_arn:
            self._publish(self.endpoint.success_topic_arn, notification)
        return "completed"

    def _fail(
        self,
        invocation: AcceptedInvocation,
        reason: str,
        failure_body: tuple[bytes, str] | None,
    ) -> None:
        failure_location: str | None = None
        if failure_body is not None:
            try:
                self._put(invocation.failure_location, *failure_body)
                failure_location = invocation.failure_location
            except (ClientError, BotoCoreError):
                logger.exception("could not write %s", invocation.failure_location)
        logger.info("inference %s failed: %s", invocation.inference_id, reason)
        notification = async_api.failure_notification(
            invocation,
            region=self.region,
            event_time=self._clock(),
            failure_reason=reason,
            failure_location=failure_location,
        )
        if self.endpoint.error_topic_arn:
            self._publish(self.endpoint.error_topic_arn, notification)

    def _put(self, location: str, body: bytes, content_type: str) -> None:
        bucket, key = async_api.split_s3_uri(location)
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def _publish(self, topic_arn: str, message: Mapping[str, Any]) -> None:
        try:
            self._sns.publish(TopicArn=topic_arn, Message=json.dumps(message))
        except (ClientError, BotoCoreError):
            logger.exception("could not publish to %s", topic_arn)
            with self._lock:
                self._stats.notification_errors += 1
            return
        with self._lock:
            self._stats.notifications_published += 1


_SESSION_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    """One session per process: its loader parses the S3 and SNS models once, not per runtime."""
    return boto3.session.Session()


def _account_of(topic_arn: str | None) -> str:
    parts = (topic_arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4] else DEFAULT_ACCOUNT_ID


def _describe_aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".rstrip(": ")
    return str(error)


class _RuntimeRequestHandler(JSONRequestHandler):
    max_body_bytes = async_api.MAX_INLINE_BODY_BYTES * 8

    @property
    def runtime(self) -> LocalRuntime:
        runtime: LocalRuntime = self.server.application
        return runtime

    def _request_id_header(self) -> dict[str, str]:
        return {"x-amzn-RequestId": str(uuid.uuid4())}

    def _send_error(self, error: ApiError) -> None:
        headers = {**error.headers(), **self._request_id_header()}
        self.send_json(error.status, error.body(), headers)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == f"{ADMIN_PREFIX}/stats":
            self.send_json(200, self.runtime.stats())
        elif path == f"{ADMIN_PREFIX}/faults":
            self.send_json(200, self.runtime.faults.model_dump(mode="json"))
        else:
            self._send_error(_unknown_operation("GET", path))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            body = self.read_body()
        except RequestBodyError as error:
            self._send_error(ApiError(async_api.VALIDATION_ERROR, str(error), error.status))
            return
        if path.startswith(ADMIN_PREFIX + "/"):
            self._admin(path, body)
            return
        match = async_api.INVOKE_PATH.fullmatch(path)
        if match is None:
            self._send_error(_unknown_operation("POST", path))
            return
        try:
            invocation = self.runtime.invoke_async(
                unquote(match["endpoint"]),
                {name: _utf8_header(value) for name, value in self.headers.items()},
                body,
            )
        except ApiError as error:
            self._send_error(error)
            return
        headers = {
            async_api.OUTPUT_LOCATION_HEADER: invocation.output_location,
            async_api.FAILURE_LOCATION_HEADER: invocation.failure_location,
            **self._request_id_header(),
        }
        self.send_json(202, {"InferenceId": invocation.inference_id}, headers)

    def _admin(self, path: str, body: bytes) -> None:
        runtime = self.runtime
        if path == f"{ADMIN_PREFIX}/reset":
            runtime.reset_stats()
            self.send_json(200, runtime.stats())
        elif path == f"{ADMIN_PREFIX}/faults":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of fault settings")
                faults = runtime.update_faults(changes)
            except (ValueError, ValidationError) as error:
                self.send_json(400, {"error": str(error)})
                return
            self.send_json(200, faults.model_dump(mode="json"))
        else:
            self.send_json(404, {"error": f"no admin resource {path}"})


def _utf8_header(value: str) -> str:
    """http.server reads header bytes as Latin-1; botocore sends non-ASCII values (an S3 key
    such as ``red flower ü.json`` in ``InputLocation``) as UTF-8, which SageMaker honours."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _unknown_operation(method: str, path: str) -> ApiError:
    return ApiError(async_api.UNKNOWN_OPERATION, f"No operation matches {method} {path}.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The local SageMaker async runtime.")
    parser.add_argument("--aws-endpoint-url", required=True, help="the moto server")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--output-path", required=True, help="s3://bucket/prefix")
    parser.add_argument("--failure-path", required=True, help="s3://bucket/prefix")
    parser.add_argument("--success-topic-arn")
    parser.add_argument("--error-topic-arn")
    parser.add_argument("--include-response-body", action="store_true")
    parser.add_argument("--max-concurrent-invocations-per-instance", type=int, default=4)
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--model-url", default="http://127.0.0.1:8080")
    parser.add_argument("--faults", default="{}", help="FaultSettings as JSON")
    parser.add_argument("--test-notification", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    endpoint = EndpointSpec(
        name=args.endpoint_name,
        output_path=args.output_path,
        failure_path=args.failure_path,
        success_topic_arn=args.success_topic_arn,
        error_topic_arn=args.error_topic_arn,
        include_response_body=args.include_response_body,
        max_concurrent_invocations_per_instance=args.max_concurrent_invocations_per_instance,
        instance_count=args.instance_count,
        model_url=args.model_url,
    )
    runtime = LocalRuntime(
        endpoint,
        aws_endpoint_url=args.aws_endpoint_url,
        region=args.region,
        port=args.port,
        host=args.host,
        faults=FaultSettings.model_validate_json(args.faults),
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    runtime.start()
    try:
        if args.test_notification:
            runtime.publish_test_notifications()
        print(f"READY {runtime.port}", flush=True)
        stopped.wait()
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
