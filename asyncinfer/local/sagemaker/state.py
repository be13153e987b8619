"""The runtime's state: the endpoint's request queue, its workers, the fault settings in force
and the counters the admin API reports."""

from __future__ import annotations

import functools
import logging
import queue
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from asyncinfer.local.constants import ACCOUNT_ID
from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.http_service import LoopbackHTTPService
from asyncinfer.local.provision.spec import EndpointSpec
from asyncinfer.local.sagemaker import publisher, wire
from asyncinfer.local.sagemaker.model_client import ModelClient
from asyncinfer.local.sagemaker.processing import Abandoned, InferenceProcessor, Outcome
from asyncinfer.local.sagemaker.routes import ADMIN_PREFIX, RuntimeRequestHandler
from asyncinfer.local.sagemaker.wire import AcceptedInvocation, ApiError
from lambdas.common.clock import Clock, format_timestamp, utc_now
from lambdas.common.s3uri import split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

THREAD_PREFIX = "sagemaker-runtime"


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
    # fault knobs acting after acceptance: which inferences they hit
    notifications_dropped: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


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
        clock: Clock = utc_now,
        aws_access_key_id: str = "local",
        aws_secret_access_key: str = "local",  # noqa: S107 (the local admin's key)
        aws_session_token: str | None = None,
    ) -> None:
        for path in (endpoint.output_path, endpoint.failure_path):
            split_s3_uri(path, key_optional=True)  # a ValueError now, not a lost request later
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
        self._model = ModelClient(endpoint.model_url)
        self._s3, self._sns = _aws_clients(
            aws_endpoint_url,
            region,
            aws_access_key_id,
            aws_secret_access_key,
            aws_session_token,
            max_pool_connections=self.worker_count + 4,
        )
        self._http = LoopbackHTTPService(RuntimeRequestHandler, self, host, port, THREAD_PREFIX)
        self.account_id = _account_of(endpoint.success_topic_arn or endpoint.error_topic_arn)
        self._inference = InferenceProcessor(
            endpoint,
            region,
            s3=self._s3,
            sns=self._sns,
            model=self._model,
            clock=clock,
            stopping=self._stopping,
            model_fails=lambda: self._draw(self.faults.model_failure_rate),
            count_publish=self._count_publish,
            expires=lambda: self._draw(self.faults.expire_rate),
            notification_lost=self._notification_lost,
        )

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
                "expired_inference_ids": list(stats.expired),
                "abandoned": stats.outcomes["abandoned"],
                "in_flight": stats.in_flight,
                "max_in_flight": stats.max_in_flight,
                "queue_depth": self._queue.qsize(),
                "notifications_published": stats.notifications_published,
                "notification_errors": stats.notification_errors,
                "notifications_dropped": len(stats.notifications_dropped),
                "dropped_notification_ids": list(stats.notifications_dropped),
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
            request = wire.parse_invocation(endpoint_name, headers, body)
            if request.endpoint_name != self.endpoint.name:
                raise wire.endpoint_not_found(request.endpoint_name, self.account_id)
            invocation = wire.accept_invocation(
                request, self.endpoint.output_path, self.endpoint.failure_path, self._clock()
            )
            with self._lock:
                if self._stopping.is_set():
                    raise ApiError(wire.SERVICE_UNAVAILABLE, "The endpoint is stopping.")
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
            raise ApiError(wire.THROTTLING_EXCEPTION, "Rate exceeded")
        if self._draw(faults.error_rate):
            with self._lock:
                code = self._random.choice((wire.SERVICE_UNAVAILABLE, wire.INTERNAL_FAILURE))
            message = {
                wire.SERVICE_UNAVAILABLE: "The service is unavailable. Try again later.",
                wire.INTERNAL_FAILURE: "An internal failure occurred.",
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
        message = publisher.endpoint_test_notification()
        for topic_arn in {self.endpoint.success_topic_arn, self.endpoint.error_topic_arn}:
            if topic_arn:
                self._inference.publish(topic_arn, message)

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
                outcome = self._inference.process(invocation)
            except Abandoned:
                outcome = "abandoned"
                logger.info("abandoned %s: the runtime is stopping", invocation.inference_id)
            except Exception as error:
                logger.exception("processing %s failed", invocation.inference_id)
                self._report_internal_failure(invocation, error)
            finally:
                with self._lock:
                    self._stats.in_flight -= 1
                    if outcome == "expired":
                        self._stats.expired.append(invocation.inference_id)
                self._finish_one(outcome)

    def _report_internal_failure(self, invocation: AcceptedInvocation, error: Exception) -> None:
        """A bug or an outage must not lose the request: the error topic still hears of it."""
        try:
            self._inference.fail(
                invocation, f"InternalFailure: {type(error).__name__}: {error}", None
            )
        except Exception:
            logger.exception("could not report the failure of %s", invocation.inference_id)

    def _finish_one(self, outcome: Outcome) -> None:
        with self._lock:
            self._stats.outcomes[outcome] += 1
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def _notification_lost(self, inference_id: str) -> bool:
        if not self._draw(self.faults.drop_notification_rate):
            return False
        with self._lock:
            self._stats.notifications_dropped.append(inference_id)
        return True

    def _count_publish(self, published: bool) -> None:
        with self._lock:
            if published:
                self._stats.notifications_published += 1
            else:
                self._stats.notification_errors += 1


_SESSION_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    """One session per process: its loader parses the S3 and SNS models once, not per runtime."""
    return boto3.session.Session()


def _aws_clients(
    aws_endpoint_url: str,
    region: str,
    aws_access_key_id: str,
    aws_secret_access_key: str,
    aws_session_token: str | None,
    *,
    max_pool_connections: int,
) -> tuple[S3Client, SNSClient]:
    config = Config(
        max_pool_connections=max_pool_connections,
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
    )
    options: dict[str, Any] = {
        "endpoint_url": aws_endpoint_url,
        "region_name": region,
        "aws_access_key_id": aws_access_key_id,
        "aws_secret_access_key": aws_secret_access_key,
        "aws_session_token": aws_session_token,
        "config": config,
    }
    with _SESSION_LOCK:
        session = _shared_session()
        s3: S3Client = session.client("s3", **options)
        sns: SNSClient = session.client("sns", **options)
    return s3, sns


def _account_of(topic_arn: str | None) -> str:
    parts = (topic_arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4] else ACCOUNT_ID
