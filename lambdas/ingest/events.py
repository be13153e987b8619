"""The events the ingest function accepts, the object versions parsed from them, and which of
those versions the function submits (``select_object``).

Two deliveries reach the handler:

* an SQS batch (``Records[*].eventSource == "aws:sqs"``) whose message bodies are S3 event
  notifications, each body holding one or more S3 records, or S3's ``s3:TestEvent``;
* a direct S3 -> Lambda event (``Records[*].eventSource == "aws:s3"``), or its test event.

An SQS message body may also be an EventBridge ``Object Created`` event (``event_source=
eventbridge``: S3 -> EventBridge -> rule -> queue; S3 user guide, "EventBridge event message
structure"). It names one object version and becomes the same ``S3EventRecord`` (so the same
``ObjectVersion`` and inference id) as the S3 notification of that version. Its key is *not*
URL-encoded (unlike an S3 notification's), its ETag field is ``etag`` (moto writes ``eTag``),
and its ``reason`` (``PutObject``, ``CopyObject``, ``CompleteMultipartUpload``) stands in for
the notification's event name. Powertools' ``S3EventNotificationEventBridgeModel`` describes
the same shape and requires fields (``requester``, ``source-ip-address``, ...) the function
does not read.

The S3 models are deliberately lenient: Powertools' ``S3Model`` requires ``userIdentity``,
``requestParameters``, ``responseElements`` and the bucket's ``ownerIdentity``, which moto
(local mode) omits, and the function needs none of them. Only what the function reads is
required; everything else is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import unquote_plus

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from lambdas.common.keys import key_selected, under_jobs_prefix
from lambdas.common.records import inference_id_for

if TYPE_CHECKING:
    from lambdas.ingest.config import IngestConfig

INPUT_LOCATION_MAX_LENGTH = 1024
OBJECT_CREATED_PREFIX = "ObjectCreated:"
EVENTBRIDGE_OBJECT_CREATED = "Object Created"

Model = TypeVar("Model", bound=BaseModel)


class MalformedEventError(ValueError):
    """A message or event that is not an S3 notification the function can act on."""


class _S3Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True
    )


class S3BucketEntity(_S3Model):
    name: str = Field(min_length=1)


class S3ObjectEntity(_S3Model):
    key: str = Field(min_length=1)  # URL-encoded as S3 sends it
    size: int | None = Field(default=None, ge=0)
    e_tag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None  # absent in moto's notifications


class S3Entity(_S3Model):
    bucket: S3BucketEntity
    object_: S3ObjectEntity = Field(alias="object")


class S3EventRecord(_S3Model):
    event_name: str
    s3: S3Entity
    # False for a record made from an EventBridge event, whose key is the key itself
    key_url_encoded: bool = Field(default=True, exclude=True)


class S3EventNotification(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    records: list[S3EventRecord] = Field(alias="Records", min_length=1)


class S3TestEvent(BaseModel):
    """Sent once when a bucket's notification configuration is saved."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    event: Literal["s3:TestEvent"] = Field(alias="Event")
    bucket: str | None = Field(default=None, alias="Bucket")


class _EventBridgeModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, defer_build=True)


class EventBridgeObject(_EventBridgeModel):
    key: str = Field(min_length=1)  # not URL-encoded
    size: int | None = Field(default=None, ge=0)
    etag: str | None = Field(default=None, validation_alias=AliasChoices("etag", "eTag"))
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class EventBridgeBucket(_EventBridgeModel):
    name: str = Field(min_length=1)


class EventBridgeS3Detail(_EventBridgeModel):
    bucket: EventBridgeBucket
    object_: EventBridgeObject = Field(alias="object")
    reason: str | None = None


class S3EventBridgeEvent(_EventBridgeModel):
    """An S3 event delivered by EventBridge (the ``Object Created`` detail-type and others)."""

    source: Literal["aws.s3"]
    detail_type: str = Field(alias="detail-type")
    detail: EventBridgeS3Detail

    def as_notification(self) -> S3EventNotification:
        """The S3 notification naming the same object version."""
        created = self.detail_type == EVENTBRIDGE_OBJECT_CREATED
        reason = self.detail.reason or "Put"
        entity = self.detail.object_
        record = S3EventRecord(
            event_name=f"{OBJECT_CREATED_PREFIX}{reason}" if created else self.detail_type,
            s3=S3Entity(
                bucket=S3BucketEntity(name=self.detail.bucket.name),
                object_=S3ObjectEntity(
                    key=entity.key,
                    size=entity.size,
                    e_tag=entity.etag,
                    version_id=entity.version_id,
                    sequencer=entity.sequencer,
                ),
            ),
            key_url_encoded=False,
        )
        return S3EventNotification(Records=[record])


def parse_notification(body: str | dict[str, Any]) -> S3EventNotification | S3TestEvent:
    """Parse an S3 notification (an SQS message body, or a direct S3 event), or an S3 event
    EventBridge delivered (as the notification of the same object version)."""
    document: Any = body
    if isinstance(body, str):
        try:
            document = json.loads(body)
        except json.JSONDecodeError as error:
            raise MalformedEventError(f"not JSON: {error.msg}") from error
    if isinstance(document, dict) and "Event" in document and "Records" not in document:
        return _validated(S3TestEvent, document)
    if isinstance(document, dict) and "detail-type" in document:
        return _validated(S3EventBridgeEvent, document).as_notification()
    return _validated(S3EventNotification, document)


def _validated(model: type[Model], document: Any) -> Model:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc']) or 'event'}: {detail['msg']}"
            for detail in error.errors()
        )
        raise MalformedEventError(f"not an S3 event notification: {details}") from error


class EventKind(StrEnum):
    SQS_BATCH = "sqs"
    S3_DIRECT = "s3"


def event_kind(event: dict[str, Any]) -> EventKind:
    """Which delivery an invocation event is. Raises MalformedEventError for anything else."""
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource")
        if source == "aws:sqs":
            return EventKind.SQS_BATCH
        if source == "aws:s3":
            return EventKind.S3_DIRECT
    if event.get("Event") == "s3:TestEvent":
        return EventKind.S3_DIRECT
    raise MalformedEventError(
        "the ingest function takes SQS batches of S3 notifications or direct S3 events"
    )


@dataclass(frozen=True)
class ObjectVersion:
    """One object version named by an S3 record, key decoded."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    sequencer: str | None

    @classmethod
    def from_record(cls, record: S3EventRecord) -> ObjectVersion:
        entity = record.s3.object_
        return cls(
            bucket=record.s3.bucket.name,
            key=unquote_plus(entity.key) if record.key_url_encoded else entity.key,
            version_id=entity.version_id,
            etag=entity.e_tag.strip('"') if entity.e_tag else None,
            size=entity.size,
            sequencer=entity.sequencer,
        )

    @property
    def input_location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def inference_id(self) -> str:
        """See ``lambdas.common.records.inference_id_for`` for the formula."""
        try:
            return inference_id_for(self.bucket, self.key, self.version_id, self.etag)
        except ValueError as error:
            raise MalformedEventError(str(error)) from error


# --- which records become submissions -----------------------------------------------------


class IgnoreReason(StrEnum):
    TEST_EVENT = "test_event"
    NOT_OBJECT_CREATED = "not_object_created"
    FOREIGN_BUCKET = "foreign_bucket"
    FOLDER_MARKER = "folder_marker"
    KEY_FILTERED = "key_filtered"
    JOB_MANIFEST = "job_manifest"


@dataclass(frozen=True)
class Ignored:
    reason: IgnoreReason
    detail: str


def names_manifest(notification: S3EventNotification | S3TestEvent, jobs_prefix: str) -> bool:
    """Whether a notification names an object under ``jobs_prefix`` (a job's manifest)."""
    if isinstance(notification, S3TestEvent):
        return False
    return any(
        under_jobs_prefix(ObjectVersion.from_record(record).key, jobs_prefix)
        for record in notification.records
    )


def select_object(record: S3EventRecord, config: IngestConfig) -> ObjectVersion | Ignored:
    """The object version a record names, or why the function leaves it alone."""
    target = ObjectVersion.from_record(record)
    if not record.event_name.startswith(OBJECT_CREATED_PREFIX):
        return Ignored(IgnoreReason.NOT_OBJECT_CREATED, f"event {record.event_name}")
    if target.bucket != config.input_bucket:
        return Ignored(
            IgnoreReason.FOREIGN_BUCKET,
            f"bucket {target.bucket} is not the input bucket {config.input_bucket}",
        )
    if target.key.endswith("/"):
        return Ignored(IgnoreReason.FOLDER_MARKER, f"{target.input_location} is a folder marker")
    if under_jobs_prefix(target.key, config.jobs_prefix):
        return Ignored(
            IgnoreReason.JOB_MANIFEST, f"{target.input_location} is under JOBS_PREFIX (a job's)"
        )
    if not key_selected(target.key, config.key_prefixes, config.key_suffixes):
        return Ignored(
            IgnoreReason.KEY_FILTERED, f"{target.input_location} is outside KEY_PREFIXES/SUFFIXES"
        )
    return target
