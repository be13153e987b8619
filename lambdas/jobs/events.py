"""What reaches the jobs function, each SQS message body one of:

* an S3 event notification (the jobs notification, or ingest forwarding the manifests its own
  notification covered: the same body) or its ``s3:TestEvent``; keys URL-encoded;
* an EventBridge ``Object Created`` event of the input bucket (``event_source=eventbridge``);
  key not encoded;
* an ``Inference Completed`` / ``Inference Failed`` event of the stack's bus (events_out.py):
  ``detail.inference_id`` names the record that became terminal.

The models read only what the function uses (moto's notifications lack several AWS fields).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from lambdas.common.contract import DETAIL_TYPE_COMPLETED, DETAIL_TYPE_FAILED, EVENTS_SOURCE


class MalformedMessageError(ValueError):
    """Not a message the function can act on: it reaches the dead-letter queue."""


@dataclass(frozen=True)
class ManifestObject:
    bucket: str
    key: str
    version_id: str | None


@dataclass(frozen=True)
class Outcome:
    inference_id: str


Message = ManifestObject | Outcome


def parse_message(body: str) -> list[Message]:
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise MalformedMessageError(f"not JSON: {error.msg}") from error
    if not isinstance(document, dict):
        raise MalformedMessageError("not a JSON object")
    try:
        return _messages(document)
    except (KeyError, TypeError, AttributeError) as error:
        raise MalformedMessageError(f"unexpected shape: missing {error}") from error


def _messages(document: dict[str, Any]) -> list[Message]:
    if document.get("Event") == "s3:TestEvent":
        return []
    if "Records" in document:
        return [
            ManifestObject(
                bucket=record["s3"]["bucket"]["name"],
                key=unquote_plus(record["s3"]["object"]["key"]),
                version_id=record["s3"]["object"].get("versionId"),
            )
            for record in document["Records"]
            if str(record.get("eventName", "")).startswith("ObjectCreated:")
        ]
    source, detail_type = document.get("source"), document.get("detail-type")
    detail = document["detail"]
    if source == "aws.s3" and detail_type == "Object Created":
        return [
            ManifestObject(
                bucket=detail["bucket"]["name"],
                key=detail["object"]["key"],
                version_id=detail["object"].get("version-id"),
            )
        ]
    if source == EVENTS_SOURCE and detail_type in (DETAIL_TYPE_COMPLETED, DETAIL_TYPE_FAILED):
        inference_id = detail["inference_id"]
        if not isinstance(inference_id, str) or not inference_id:
            raise MalformedMessageError("detail.inference_id is not an id")
        return [Outcome(inference_id=inference_id)]
    raise MalformedMessageError(f"not a jobs event: source {source!r}, type {detail_type!r}")


def is_schedule(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"
