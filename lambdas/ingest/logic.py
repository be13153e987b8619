"""What the ingest function does with one S3 record: decide, describe, claim, submit, record.

Inference id (clients can compute it from an upload's response)::

    sha256("s3://{bucket}/{key}?versionId={version_id}")   # versioned object
    sha256("s3://{bucket}/{key}?etag={etag}")              # no version id, or version "null"

as 64 lower-case hex characters, with the key decoded (as stored in S3) and the ETag without
quotes; see ``lambdas.common.records.inference_id_for``. One object version therefore always
maps to one inference id, however often its event is delivered.

Flow for one object version (``Submitter.submit``):

1. Claim the version in the results table (a ``PENDING`` item with a lease that outlives this
   invocation). A submitted or finished version is a duplicate delivery: skipped. A live claim
   of a concurrent delivery: reported for a later retry. An expired claim (an attempt that
   crashed between claiming and recording its outcome) is taken over with the same id; if
   that attempt had already invoked, the endpoint sees the id twice (at-least-once), and the
   results function still keeps one record.
2. Validate: size (from the event) within ``MAX_INPUT_BYTES``; ``InputLocation`` within 1024
   characters; the object still exists and is still the version the event names (SageMaker
   reads the *current* object, so an overwritten or deleted version cannot be submitted);
   custom attributes within the API's 1024 visible US-ASCII characters. Any failure records
   ``FAILED`` at stage ``ingest`` with a reason, and is never retried.
3. ``InvokeEndpointAsync`` with the inference id. ``ValidationError`` records ``FAILED`` with
   SageMaker's message. Throttling, 5xx, ``ModelNotReady`` and connection errors are retried
   with full-jitter exponential backoff while the invocation's remaining time allows; then
   the version is left ``PENDING`` (its lease expires) and reported for a later retry. (A
   read timeout is retried too: SageMaker may then queue the request twice, both with the
   same inference id, so the results table still holds one record for the version.)
4. Record ``SUBMITTED`` with the output and failure locations from the response.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.contract import TRACE_ID_ATTRIBUTE
from lambdas.common.records import (
    UNVERSIONED,
    InferenceRecord,
    Status,
    expiry_epoch,
    format_timestamp,
)
from lambdas.common.store import ClaimOutcome, RecordStore
from lambdas.ingest.clients import (
    INVOKE_ATTEMPT_MAX_SECONDS,
    AsyncInvoker,
    InvocationRequest,
    ObjectHead,
    ObjectInspector,
    ObjectMissingError,
)
from lambdas.ingest.config import IngestConfig
from lambdas.ingest.events import (
    INPUT_LOCATION_MAX_LENGTH,
    OBJECT_CREATED_PREFIX,
    ObjectVersion,
    S3EventRecord,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

CUSTOM_ATTRIBUTES_MAX_LENGTH = 1024

# Time kept in hand when deciding whether another attempt fits: one attempt at its slowest,
# plus the DynamoDB write that records it and the metrics flush.
RESERVE_SECONDS = INVOKE_ATTEMPT_MAX_SECONDS + 3.0
# A first attempt starts with at least this much time left (a claim, a HeadObject, one call
# and a write usually take well under a second). Even a short function timeout submits; if
# the invocation is cut short anyway, the claim's lease expires and the redelivery takes over.
MINIMUM_START_SECONDS = 2.0
# A claim's lease outlives the invocation by this much, so clock skew between containers
# cannot let a second attempt take over a claim whose owner is still running. The ingest
# queue's visibility timeout (6x the function timeout) is far longer, so a redelivery always
# finds the lease of a crashed attempt expired.
LEASE_MARGIN_SECONDS = 10
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 5.0


# --- which records become submissions -----------------------------------------------------


class IgnoreReason(StrEnum):
    TEST_EVENT = "test_event"
    NOT_OBJECT_CREATED = "not_object_created"
    FOREIGN_BUCKET = "foreign_bucket"
    FOLDER_MARKER = "folder_marker"
    KEY_FILTERED = "key_filtered"


@dataclass(frozen=True)
class Ignored:
    reason: IgnoreReason
    detail: str


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
    if not key_selected(target.key, config.key_prefixes, config.key_suffixes):
        return Ignored(
            IgnoreReason.KEY_FILTERED, f"{target.input_location} is outside KEY_PREFIXES/SUFFIXES"
        )
    return target


def key_selected(key: str, prefixes: Sequence[str], suffixes: Sequence[str]) -> bool:
    """Both filters must pass; an empty filter passes every key (S3's own filter rules)."""
    prefix_ok = not prefixes or key.startswith(tuple(prefixes))
    suffix_ok = not suffixes or key.endswith(tuple(suffixes))
    return prefix_ok and suffix_ok


# --- content type -------------------------------------------------------------------------

DEFAULT_CONTENT_TYPES: Mapping[str, str] = {
    "json": "application/json",
    "jsonl": "application/jsonlines",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "txt": "text/plain",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp4": "video/mp4",
    "pdf": "application/pdf",
    "parquet": "application/x-parquet",
    "npy": "application/x-npy",
    "npz": "application/x-npz",
    "recordio": "application/x-recordio-protobuf",
}
GENERIC_CONTENT_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})


def extension_map(config: IngestConfig) -> dict[str, str]:
    """The built-in extension map with CONTENT_TYPE_MAP merged over it."""
    return {**DEFAULT_CONTENT_TYPES, **config.content_type_map}


def resolve_content_type(
    key: str, object_content_type: str | None, extensions: Mapping[str, str], default: str
) -> str:
    """The object's own Content-Type, unless generic; then its extension; then the default.

    Extensions are matched longest first (``a.tar.gz`` tries ``tar.gz``, then ``gz``),
    case-insensitively.
    """
    own = (object_content_type or "").strip()
    if own.split(";", 1)[0].strip().lower() not in GENERIC_CONTENT_TYPES:
        return own
    name = key.rsplit("/", 1)[-1].lower()
    parts = name.split(".")[1:]
    for start in range(len(parts)):
        mime = extensions.get(".".join(parts[start:]))
        if mime:
            return mime
    return default


# --- custom attributes --------------------------------------------------------------------

# Visible US-ASCII (0x21-0x7E) stays as is, except the characters the format itself uses.
_ATTRIBUTE_SAFE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in "%,=")


class CustomAttributesTooLongError(ValueError):
    def __init__(self, length: int) -> None:
        self.length = length
        super().__init__(
            f"custom attributes are {length} characters once encoded; InvokeEndpointAsync "
            f"allows at most {CUSTOM_ATTRIBUTES_MAX_LENGTH} visible US-ASCII characters "
            "(CustomAttributes)"
        )


def encode_custom_attributes(pairs: Iterable[tuple[str, str]]) -> str:
    """``k1=v1,k2=v2`` with every character outside visible US-ASCII, and ``%``, ``,`` and
    ``=``, percent-encoded (UTF-8). Raises when the result exceeds the API limit: never
    truncates."""
    encoded = ",".join(
        f"{quote(name, safe=_ATTRIBUTE_SAFE)}={quote(value, safe=_ATTRIBUTE_SAFE)}"
        for name, value in pairs
    )
    if len(encoded) > CUSTOM_ATTRIBUTES_MAX_LENGTH:
        raise CustomAttributesTooLongError(len(encoded))
    return encoded


def decode_custom_attributes(encoded: str) -> list[tuple[str, str]]:
    """The inverse of ``encode_custom_attributes``."""
    if not encoded:
        return []
    pairs = []
    for item in encoded.split(","):
        name, _, value = item.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def decode_metadata_value(value: str) -> str:
    """S3 returns non-ASCII user metadata as RFC 2047 encoded words (``=?UTF-8?B?...?=``)."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError):
        return value


def custom_attribute_pairs(
    config: IngestConfig, metadata: Mapping[str, str], trace_id: str
) -> list[tuple[str, str]]:
    """Static pairs, then allow-listed user metadata present on the object, then the trace id,
    each group in configuration order."""
    lowered = {name.lower(): value for name, value in metadata.items()}
    pairs = list(config.custom_attributes.items())
    pairs.extend(
        (name, decode_metadata_value(lowered[name]))
        for name in config.metadata_attributes
        if name in lowered
    )
    pairs.append((TRACE_ID_ATTRIBUTE, trace_id))
    return pairs


def xray_trace_id(header: str | None) -> str | None:
    """``Root`` of an X-Ray trace header such as ``Root=1-5759e988-bd86...;Parent=..``."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "Root" and value:
            return value
    return None


# --- errors from InvokeEndpointAsync ------------------------------------------------------


class SubmitErrorKind(StrEnum):
    RETRY = "retry"
    REJECT = "reject"


RETRYABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ModelNotReadyException",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalDependencyException",
    }
)
REJECTED_ERROR_CODES = frozenset({"ValidationError", "ValidationException"})
RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})


def classify_submit_error(error: Exception) -> SubmitErrorKind | None:
    """Retry, reject (record FAILED), or neither (unexpected: left for the message retry)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in REJECTED_ERROR_CODES:
            return SubmitErrorKind.REJECT
        if code in RETRYABLE_ERROR_CODES or status in RETRYABLE_HTTP_STATUSES:
            return SubmitErrorKind.RETRY
        return None
    if isinstance(error, BotoCoreError):
        # Connection errors and timeouts (EndpointConnectionError, ConnectTimeoutError,
        # ReadTimeoutError, ConnectionClosedError) carry no answer: try again.
        return SubmitErrorKind.RETRY
    return None


def error_message(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        message = details.get("Message", "")
        return f"{code}: {message}" if message else str(code or error)
    return f"{type(error).__name__}: {error}"


@dataclass
class Backoff:
    """Full-jitter exponential backoff: a delay drawn from ``[0, min(cap, base * 2**n)]``."""

    base_seconds: float = BACKOFF_BASE_SECONDS
    cap_seconds: float = BACKOFF_CAP_SECONDS
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int) -> float:
        return self.rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2**retry))


# --- one object version -------------------------------------------------------------------


class Outcome(StrEnum):
    SUBMITTED = "submitted"  # invoked, record SUBMITTED
    REJECTED = "rejected"  # record FAILED at ingest, never retried
    DUPLICATE = "duplicate"  # already submitted or finished: nothing done
    IN_PROGRESS = "in_progress"  # a concurrent delivery holds a live claim: retry later
    DEFERRED = "deferred"  # not submitted in this invocation (retries exhausted the time)


@dataclass(frozen=True)
class SubmitResult:
    outcome: Outcome
    inference_id: str
    retries: int = 0
    reason: str | None = None

    @property
    def needs_retry(self) -> bool:
        return self.outcome in (Outcome.IN_PROGRESS, Outcome.DEFERRED)


@dataclass(frozen=True)
class _Rejection:
    reason: str
    input_size: int | None = None  # when only the object's head told it


@dataclass(frozen=True)
class _Prepared:
    content_type: str
    custom_attributes: str
    input_size: int


def utc_now() -> datetime:
    return datetime.now(UTC)


class Submitter:
    """Submits object versions, one call per version; safe to share between threads."""

    def __init__(
        self,
        *,
        config: IngestConfig,
        store: RecordStore,
        inspector: ObjectInspector,
        invoker: AsyncInvoker,
        logger: Logger,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._inspector = inspector
        self._invoker = invoker
        self._logger = logger
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff or Backoff()
        self._extensions = extension_map(config)

    def submit(
        self, target: ObjectVersion, *, trace_id: str, remaining_seconds: Callable[[], float]
    ) -> SubmitResult:
        """Run the whole flow for one version (see the module docstring).

        ``remaining_seconds`` is the invocation's remaining time; ``trace_id`` goes into the
        custom attributes. Infrastructure errors other than the classified SageMaker ones
        propagate (the caller leaves the message for a retry).
        """
        inference_id = target.inference_id
        if remaining_seconds() < MINIMUM_START_SECONDS:
            return SubmitResult(
                Outcome.DEFERRED, inference_id, reason="too little time left in this invocation"
            )
        now = self._clock()
        stamp = format_timestamp(now)
        record = InferenceRecord(
            inference_id=inference_id,
            status=Status.PENDING,
            input_location=target.input_location,
            input_bucket=target.bucket,
            input_key=target.key,
            input_version=target.version_id,
            input_size=target.size,
            accept=self._config.accept,
            endpoint_name=self._config.endpoint_name,
            created_at=stamp,
            updated_at=stamp,
            expires_at=expiry_epoch(now, self._config.retention_days),
        )
        token = uuid.uuid4().hex
        epoch = int(now.timestamp())
        lease_until = epoch + math.ceil(remaining_seconds()) + LEASE_MARGIN_SECONDS
        claim = self._store.claim(record, token=token, lease_until=lease_until, now=epoch)
        if claim.outcome is ClaimOutcome.ALREADY_DONE:
            status = claim.existing.status if claim.existing else "unknown"
            self._logger.info("duplicate delivery skipped", extra={"stored_status": status})
            return SubmitResult(Outcome.DUPLICATE, inference_id)
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            self._logger.info("another delivery holds a live claim; retrying later")
            return SubmitResult(
                Outcome.IN_PROGRESS, inference_id, reason="claimed by a concurrent delivery"
            )
        if claim.outcome is ClaimOutcome.TAKEN_OVER:
            self._logger.warning("took over the expired claim of an attempt that stopped early")

        prepared = self._prepare(target, trace_id)
        if isinstance(prepared, _Rejection):
            if prepared.input_size is not None:
                record = record.model_copy(update={"input_size": prepared.input_size})
            return self._reject(record, token, prepared.reason)
        record = record.model_copy(
            update={
                "content_type": prepared.content_type,
                "custom_attributes": prepared.custom_attributes,
                "input_size": prepared.input_size,
            }
        )
        request = InvocationRequest(
            endpoint_name=self._config.endpoint_name,
            input_location=target.input_location,
            inference_id=inference_id,
            content_type=prepared.content_type,
            accept=self._config.accept,
            custom_attributes=prepared.custom_attributes,
            request_ttl_seconds=self._config.request_ttl_seconds,
            invocation_timeout_seconds=self._config.invocation_timeout_seconds,
        )
        return self._invoke(request, record, token, remaining_seconds)

    def _prepare(self, target: ObjectVersion, trace_id: str) -> _Prepared | _Rejection:
        rejection = self._check_event(target)
        if rejection:
            return _Rejection(rejection)
        try:
            head = self._inspector.head(target.bucket, target.key)
        except ObjectMissingError as error:
            return _Rejection(f"the object was deleted before it could be submitted: {error}")
        size = target.size if target.size is not None else head.content_length
        rejection = _superseded(target, head) or self._check_size(size)
        if rejection:
            return _Rejection(rejection, input_size=size)
        content_type = resolve_content_type(
            target.key, head.content_type, self._extensions, self._config.default_content_type
        )
        pairs = custom_attribute_pairs(self._config, head.metadata, trace_id)
        try:
            custom_attributes = encode_custom_attributes(pairs)
        except CustomAttributesTooLongError as error:
            return _Rejection(str(error))
        return _Prepared(content_type, custom_attributes, size)

    def _check_event(self, target: ObjectVersion) -> str | None:
        """What the event alone shows to be unsubmittable, before any call."""
        if target.size is not None:
            too_large = self._check_size(target.size)
            if too_large:
                return too_large
        if len(target.input_location) > INPUT_LOCATION_MAX_LENGTH:
            return (
                f"InputLocation is {len(target.input_location)} characters; "
                f"InvokeEndpointAsync allows at most {INPUT_LOCATION_MAX_LENGTH}"
            )
        return None

    def _check_size(self, size: int) -> str | None:
        limit = self._config.max_input_bytes
        if size <= limit:
            return None
        return (
            f"the object is {size} bytes; the limit is {limit} bytes "
            "(MAX_INPUT_BYTES; SageMaker async inference takes payloads up to 1 GB)"
        )

    def _invoke(
        self,
        request: InvocationRequest,
        record: InferenceRecord,
        token: str,
        remaining_seconds: Callable[[], float],
    ) -> SubmitResult:
        retries = 0
        while True:
            try:
                response = self._invoker.invoke(request)
                break
            except (ClientError, BotoCoreError) as error:
                kind = classify_submit_error(error)
                if kind is SubmitErrorKind.REJECT:
                    reason = f"SageMaker rejected the request: {error_message(error)}"
                    return self._reject(record, token, reason, retries=retries)
                if kind is None:
                    raise
                delay = self._backoff.delay(retries)
                if remaining_seconds() - delay < RESERVE_SECONDS:
                    self._logger.warning(
                        "not submitted in this invocation; the message will be retried",
                        extra={"retries": retries, "error": error_message(error)},
                    )
                    return SubmitResult(
                        Outcome.DEFERRED, record.inference_id, retries, error_message(error)
                    )
                self._logger.info(
                    "retrying InvokeEndpointAsync",
                    extra={
                        "retry": retries + 1,
                        "delay_s": round(delay, 3),
                        "error": error_message(error),
                    },
                )
                self._sleep(delay)
                retries += 1
        stamp = format_timestamp(self._clock())
        submitted = record.model_copy(
            update={
                "submitted_at": stamp,
                "updated_at": stamp,
                "output_location": response.output_location,
                "failure_location": response.failure_location,
            }
        )
        if not self._store.mark_submitted(submitted, token=token):
            self._logger.info("the result was recorded first; filled in the ingest fields")
        self._logger.info(
            "submitted",
            extra={"output_location": response.output_location, "retries": retries},
        )
        return SubmitResult(Outcome.SUBMITTED, record.inference_id, retries)

    def _reject(
        self, record: InferenceRecord, token: str, reason: str, *, retries: int = 0
    ) -> SubmitResult:
        failed_at = format_timestamp(self._clock())
        if not self._store.mark_failed(record, token=token, reason=reason, failed_at=failed_at):
            self._logger.info("the result was recorded first; filled in the ingest fields")
        self._logger.warning("rejected at ingest", extra={"failure_reason": reason})
        return SubmitResult(Outcome.REJECTED, record.inference_id, retries, reason)


def _superseded(target: ObjectVersion, head: ObjectHead) -> str | None:
    """Why the current object is not the version the event names, if it is not.

    InputLocation has no version: SageMaker would read whatever is current.
    """
    if target.version_id and target.version_id != UNVERSIONED:
        if head.version_id != target.version_id:
            return (
                f"{target.input_location} was overwritten before submission: the event names "
                f"version {target.version_id}, the current version is {head.version_id}; "
                "SageMaker reads the current object, so this version cannot be submitted"
            )
        return None
    if target.etag and head.etag != target.etag:
        return (
            f"{target.input_location} was overwritten before submission: the event names "
            f"ETag {target.etag}, the current object has ETag {head.etag}; "
            "SageMaker reads the current object, so this version cannot be submitted"
        )
    return None
