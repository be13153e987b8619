"""What a runtime worker does with one accepted request, as SageMaker does (steps 1 to 4 of
the package docstring): expire it, read its input, call the model, write the answer and
publish the notification."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.local.provision.spec import EndpointSpec
from asyncinfer.local.sagemaker import publisher, wire
from asyncinfer.local.sagemaker.model_client import ModelCallError, ModelClient, ModelResponse
from asyncinfer.local.sagemaker.wire import AcceptedInvocation
from lambdas.common.clock import Clock
from lambdas.common.s3uri import split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

Outcome = Literal["completed", "failed", "expired", "abandoned"]


class Abandoned(Exception):
    """The runtime stopped while the request was being processed."""


class InferenceProcessor:
    """Runs accepted requests against the model, S3 and SNS; safe to share between workers."""

    def __init__(
        self,
        endpoint: EndpointSpec,
        region: str,
        *,
        s3: S3Client,
        sns: SNSClient,
        model: ModelClient,
        clock: Clock,
        stopping: threading.Event,
        model_fails: Callable[[], bool],
        count_publish: Callable[[bool], None],
        expires: Callable[[], bool] = lambda: False,
        notification_lost: Callable[[str], bool] = lambda _: False,
    ) -> None:
        """``model_fails`` draws the injected model failure; ``count_publish`` counts each
        notification, published (True) or not; ``expires`` draws the injected expiry of a
        request (``FaultSettings.expire_rate``); ``notification_lost`` draws, for an inference
        id, the loss of its notification (``drop_notification_rate``) and counts it."""
        self.endpoint = endpoint
        self.region = region
        self._s3 = s3
        self._sns = sns
        self._model = model
        self._clock = clock
        self._stopping = stopping
        self._model_fails = model_fails
        self._count_publish = count_publish
        self._expires = expires
        self._notification_lost = notification_lost

    def process(self, invocation: AcceptedInvocation) -> Outcome:
        """Runs one request; returns the counter it ends in (completed, failed, expired)."""
        request = invocation.request
        waited = (self._clock() - invocation.received_at).total_seconds()
        injected = waited <= request.request_ttl_seconds and self._expires()
        if waited > request.request_ttl_seconds or injected:
            waited_text = (
                f"more than {request.request_ttl_seconds} seconds (local fault injection)"
                if injected
                else f"{waited:.0f} seconds"
            )
            self.fail(
                invocation,
                f"Request has expired: it waited {waited_text} in the queue, longer "
                f"than its RequestTTLSeconds ({request.request_ttl_seconds}).",
                failure_body=None,
            )
            return "expired"
        if self._model_fails():
            response = ModelResponse(
                500,
                json.dumps({"error": "injected model failure (local fault injection)"}).encode(),
                "application/json",
            )
        else:
            try:
                payload = self._read_input(invocation)
            except (ClientError, BotoCoreError) as error:
                self.fail(
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
                self.fail(invocation, reason, failure_body=(reason.encode(), "text/plain"))
                return "failed"
        if 200 <= response.status < 300:
            return self._complete(invocation, response)
        kind = "client" if response.status < 500 else "server"
        # SageMaker copies the model's whole answer into failureReason (a 100 KB answer gave a
        # 106 KB reason on AWS); the record bounds it (lambdas/common/reasons.py)
        excerpt = response.body.decode("utf-8", "replace")
        self.fail(
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
        bucket, key = split_s3_uri(request.input_location)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _call_model(self, invocation: AcceptedInvocation, payload: bytes) -> ModelResponse:
        request = invocation.request
        headers = {"Content-Type": invocation.content_type}
        if request.accept is not None:
            headers["Accept"] = request.accept
        if request.custom_attributes is not None:
            headers[wire.CUSTOM_ATTRIBUTES_HEADER] = request.custom_attributes
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
                raise Abandoned from error
            raise ModelCallError(
                f"ServerError: Could not reach the model at {self.endpoint.model_url}: {error}"
            ) from error

    def _complete(self, invocation: AcceptedInvocation, response: ModelResponse) -> Outcome:
        try:
            self._put(invocation.output_location, response.body, response.content_type)
        except (ClientError, BotoCoreError) as error:
            self.fail(
                invocation,
                f"ServerError: Could not write the output to {invocation.output_location}: "
                f"{_describe_aws_error(error)}",
                failure_body=None,
            )
            return "failed"
        body = response.body if self.endpoint.include_response_body else None
        notification = publisher.success_notification(
            invocation,
            region=self.region,
            event_time=self._clock(),
            response_content_type=response.content_type,
            response_body=body,
            response_status=response.status,
        )
        if self.endpoint.success_topic_arn:
            self._notify(self.endpoint.success_topic_arn, invocation, notification)
        return "completed"

    def fail(
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
        notification = publisher.failure_notification(
            invocation,
            region=self.region,
            event_time=self._clock(),
            failure_reason=reason,
            failure_location=failure_location,
        )
        if self.endpoint.error_topic_arn:
            self._notify(self.endpoint.error_topic_arn, invocation, notification)

    def _notify(
        self, topic_arn: str, invocation: AcceptedInvocation, message: Mapping[str, Any]
    ) -> None:
        """Publishes an ``InferenceResult``, unless the fault knob loses it."""
        if self._notification_lost(invocation.inference_id):
            logger.info("notification of %s lost (local fault injection)", invocation.inference_id)
            return
        self.publish(topic_arn, message)

    def _put(self, location: str, body: bytes, content_type: str) -> None:
        bucket, key = split_s3_uri(location)
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def publish(self, topic_arn: str, message: Mapping[str, Any]) -> None:
        try:
            self._sns.publish(TopicArn=topic_arn, Message=json.dumps(message))
        except (ClientError, BotoCoreError):
            logger.exception("could not publish to %s", topic_arn)
            self._count_publish(False)
            return
        self._count_publish(True)


def _describe_aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".rstrip(": ")
    return str(error)
