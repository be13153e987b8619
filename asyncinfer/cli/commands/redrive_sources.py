"""Where ``redrive``'s dead letters come from and what each becomes on its way back.

Sources and where their messages go:

* the ingest DLQ (S3 event messages) and the jobs DLQ (manifests' S3 events, records' outcome
  events): back to the ingest or jobs queue, body and attributes as-is;
* the success/error subscription DLQs hold the SNS envelopes SNS could not deliver to the
  results function: each becomes the SNS event SNS sends a subscribed function and goes to
  the results function (stack output ``ResultsFunctionName``) as an asynchronous ``Invoke``
  (``InvocationType=Event``), the way SNS invokes it (Lambda developer guide, "Invoking Lambda
  functions with Amazon SNS notifications": "Lambda processes SNS messages asynchronously by
  queuing the messages and handling retries", and its example event);
* the results function's async-failure destination holds Lambda invocation records whose
  ``requestPayload`` is the SNS event the function failed on: each of its records is invoked
  again the same way.

Not through the topic: its policy (``OnlyTheEndpointPublishes``) lets only the endpoint's role
publish, and a publish would reach every subscriber while only the results function missed it.
An asynchronous invocation gets the function's own retries and on-failure destination again.
Local mode's AWS server hands such an invocation to its event runner
(``asyncinfer.local.aws.server``): one code path. Duplicates this may cause are harmless:
ingest, results and jobs writes are idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from asyncinfer.cli.access.messaging import QueueMessage
from lambdas.common.contract import StackOutput
from lambdas.common.records import inference_id_for

QUEUE_NAMES = ("ingest", "success", "error", "results", "jobs")  # what `--queue` accepts


class SourceKind(StrEnum):
    INGEST = "ingest"
    JOBS = "jobs"
    TOPIC_DLQ = "topic-dlq"
    LAMBDA_FAILURES = "lambda-failures"


@dataclass(frozen=True)
class RedriveSource:
    name: str
    queue_url: str
    kind: SourceKind
    destination: str  # shown to the user
    destination_queue: str | None = None  # the ingest or jobs queue
    function_name: str | None = None  # the results function (topic DLQs, its failures)


@dataclass(frozen=True)
class Copy:
    """One message sent to ``queue_url``, or one SNS ``event`` invoked on ``function_name``."""

    body: str = ""
    queue_url: str | None = None
    queue_attributes: Mapping[str, Any] = field(default_factory=dict)
    function_name: str | None = None
    event: Mapping[str, Any] = field(default_factory=dict)
    inference_id: str | None = None


class UnroutableMessage(ValueError):
    """A dead letter whose destination cannot be told: it stays where it is."""


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise UnroutableMessage(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise UnroutableMessage("not a JSON object")
    return value


def _notification_inference_id(message: str) -> str | None:
    try:
        value = json.loads(message)
    except ValueError:
        return None
    inference_id = value.get("inferenceId") if isinstance(value, dict) else None
    return inference_id if isinstance(inference_id, str) else None


def _s3_event_inference_ids(body: str) -> Iterator[str]:
    try:
        event = json.loads(body)
    except ValueError:
        return
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records if isinstance(records, list) else []:
        s3 = record.get("s3", {}) if isinstance(record, dict) else {}
        bucket = s3.get("bucket", {}).get("name")
        target = s3.get("object", {})
        if not bucket or "key" not in target:
            continue
        try:
            yield inference_id_for(
                bucket, unquote_plus(target["key"]), target.get("versionId"), target.get("eTag")
            )
        except ValueError:
            continue


_SNS_RECORD_FIELDS = (  # an SNS record's ``Sns`` object, envelope name -> record name
    ("Type", "Type"),
    ("MessageId", "MessageId"),
    ("TopicArn", "TopicArn"),
    ("Subject", "Subject"),
    ("Message", "Message"),
    ("Timestamp", "Timestamp"),
    ("SignatureVersion", "SignatureVersion"),
    ("Signature", "Signature"),
    ("SigningCertURL", "SigningCertUrl"),
    ("UnsubscribeURL", "UnsubscribeUrl"),
)


def _subscription_arn(envelope: Mapping[str, Any]) -> str:
    """The subscription the envelope was sent for, from its ``UnsubscribeURL``
    (``...?Action=Unsubscribe&SubscriptionArn=...``); the topic's ARN if it names none."""
    query = parse_qs(urlsplit(str(envelope.get("UnsubscribeURL") or "")).query)
    arns = query.get("SubscriptionArn") or [str(envelope["TopicArn"])]
    return arns[0]


def sns_event_for(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The event SNS invokes a subscribed function with, for the envelope it holds in a
    subscription DLQ (Lambda developer guide, "Invoking Lambda functions with Amazon SNS
    notifications", example event: the envelope's fields, ``SigningCertURL`` and
    ``UnsubscribeURL`` spelt ``SigningCertUrl``/``UnsubscribeUrl``)."""
    sns: dict[str, Any] = {
        record_name: envelope.get(envelope_name)
        for envelope_name, record_name in _SNS_RECORD_FIELDS
    }
    sns["MessageAttributes"] = envelope.get("MessageAttributes") or {}
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": _subscription_arn(envelope),
                "Sns": sns,
            }
        ]
    }


def copies_for(source: RedriveSource, message: QueueMessage) -> list[Copy]:
    if source.kind is SourceKind.INGEST:
        ids = list(_s3_event_inference_ids(message.body))
        return [_queue_copy(source, message, ids[0] if len(ids) == 1 else None)]
    if source.kind is SourceKind.JOBS:
        # manifests' S3 events and records' outcome events: no inference of their own
        return [_queue_copy(source, message, None)]
    if source.kind is SourceKind.TOPIC_DLQ:
        return [_topic_dlq_copy(source, message)]
    return _lambda_failure_copies(source, message)


def _queue_copy(source: RedriveSource, message: QueueMessage, inference_id: str | None) -> Copy:
    """The message back on the queue it failed from, body and attributes as they were."""
    if source.destination_queue is None:
        raise UnroutableMessage(f"no queue to send the {source.name}'s messages back to")
    return Copy(
        body=message.body,
        queue_url=source.destination_queue,
        queue_attributes=message.attributes,
        inference_id=inference_id,
    )


def _results_function(source: RedriveSource) -> str:
    if source.function_name is None:
        raise UnroutableMessage(
            f"the target names no results function (output {StackOutput.RESULTS_FUNCTION_NAME})"
        )
    return source.function_name


def _topic_dlq_copy(source: RedriveSource, message: QueueMessage) -> Copy:
    document = _json_object(message.body)
    if document.get("Type") != "Notification" or not all(
        isinstance(document.get(name), str) for name in ("MessageId", "TopicArn", "Message")
    ):
        raise UnroutableMessage(
            "not an SNS notification envelope (Type, MessageId, TopicArn, Message)"
        )
    return Copy(
        function_name=_results_function(source),
        event=sns_event_for(document),
        inference_id=_notification_inference_id(document["Message"]),
    )


def _lambda_failure_copies(source: RedriveSource, message: QueueMessage) -> list[Copy]:
    """Each SNS record of the failed invocation, invoked again as it was (SNS sends one)."""
    document = _json_object(message.body)
    payload = document.get("requestPayload")
    records = payload.get("Records") if isinstance(payload, dict) else None
    if not isinstance(records, list) or not records:
        raise UnroutableMessage("no requestPayload.Records (not a Lambda failure record)")
    function_name = _results_function(source)
    copies: list[Copy] = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, dict) else None
        if (
            not isinstance(sns, dict)
            or not isinstance(sns.get("Message"), str)
            or not isinstance(sns.get("TopicArn"), str)
        ):
            raise UnroutableMessage("a record without Sns.Message and Sns.TopicArn")
        copies.append(
            Copy(
                function_name=function_name,
                event={"Records": [record]},
                inference_id=_notification_inference_id(sns["Message"]),
            )
        )
    return copies


# Per topic: its ``--queue`` name and the output naming its subscription's dead-letter queue.
TOPIC_DLQ_OUTPUTS = (
    ("success", StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL),
    ("error", StackOutput.ERROR_DEAD_LETTER_QUEUE_URL),
)


def sources_from_outputs(outputs: Mapping[str, str]) -> dict[str, RedriveSource]:
    """The dead-letter queues a target lists, keyed by the names ``--queue`` accepts.

    Local mode lists the same outputs as a deployed stack, and redrives the same way."""
    sources: dict[str, RedriveSource] = {}
    ingest_dlq = outputs.get(StackOutput.INGEST_DEAD_LETTER_QUEUE_URL)
    ingest_queue = outputs.get(StackOutput.INGEST_QUEUE_URL)
    if ingest_dlq and ingest_queue:
        sources["ingest"] = RedriveSource(
            name="ingest DLQ",
            queue_url=ingest_dlq,
            kind=SourceKind.INGEST,
            destination="ingest queue",
            destination_queue=ingest_queue,
        )
    function_name = outputs.get(StackOutput.RESULTS_FUNCTION_NAME) or None
    for name, dlq_output in TOPIC_DLQ_OUTPUTS:
        dlq = outputs.get(dlq_output)
        if dlq:
            sources[name] = RedriveSource(
                name=f"{name} DLQ",
                queue_url=dlq,
                kind=SourceKind.TOPIC_DLQ,
                destination="results function",
                function_name=function_name,
            )
    jobs_dlq = outputs.get(StackOutput.JOBS_DEAD_LETTER_QUEUE_URL)
    jobs_queue = outputs.get(StackOutput.JOBS_QUEUE_URL)
    if jobs_dlq and jobs_queue:
        sources["jobs"] = RedriveSource(
            name="jobs DLQ",
            queue_url=jobs_dlq,
            kind=SourceKind.JOBS,
            destination="jobs queue",
            destination_queue=jobs_queue,
        )
    failures = outputs.get(StackOutput.RESULTS_FAILURE_QUEUE_URL)
    if failures:
        sources["results"] = RedriveSource(
            name="results failures",
            queue_url=failures,
            kind=SourceKind.LAMBDA_FAILURES,
            destination="results function",
            function_name=function_name,
        )
    return sources
