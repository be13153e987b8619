"""What one object version's request carries, or why it cannot be sent (step 2 of
``lambdas.ingest.logic``).

Two ways to send the payload (``lambdas.ingest.payload`` says why):

* **inline** (``Body``), for an input of at most ``inline_input_max_bytes``: the announced
  version is read with one ``GetObject`` (by ``VersionId``; unversioned with ``IfMatch`` on the
  announced ETag), which also gives the content type and user metadata *of that version*. An
  overwrite after the event does not matter: the request carries the announced bytes. A
  version that can no longer be read (deleted by version id, or an unversioned object
  overwritten) is rejected like any "deleted / overwritten before submission". In a versioned
  bucket a plain delete only adds a delete marker: the announced version stays readable and is
  submitted, since the record describes that version, not the key's current state.
* **by location** (``InputLocation``, no version in it): ``HeadObject`` of the current object
  must still be the announced version, because SageMaker reads the current object when it
  processes the request (the README's residual window).

With ``output_naming = input`` both carry ``S3OutputPathExtension`` and ``Filename``
(``lambdas.common.output_naming``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdas.common.records import UNVERSIONED
from lambdas.ingest.attributes import (
    CustomAttributesTooLongError,
    custom_attribute_pairs,
    encode_custom_attributes,
    extension_map,
    resolve_content_type,
)
from lambdas.ingest.clients import ObjectChangedError, ObjectInspector, ObjectMissingError
from lambdas.ingest.events import INPUT_LOCATION_MAX_LENGTH, ObjectVersion
from lambdas.ingest.payload import InputReader, naming_members, sends_inline
from lambdas.ingest.values import AnnouncedVersion, ObjectHead

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lambdas.ingest.config import IngestConfig


@dataclass(frozen=True)
class Rejection:
    reason: str
    input_size: int | None = None  # when only the object's head or read told it


@dataclass(frozen=True)
class Prepared:
    """Everything of the request that depends on the object; one of body / location is set."""

    content_type: str
    custom_attributes: str
    input_size: int
    body: bytes | None = None
    input_location: str | None = None
    output_path_extension: str | None = None
    filename: str | None = None


class Preparer:
    """Builds a version's request members; safe to share between threads."""

    def __init__(
        self, *, config: IngestConfig, inspector: ObjectInspector, reader: InputReader
    ) -> None:
        self._config = config
        self._inspector = inspector
        self._reader = reader
        self._extensions = extension_map(config)

    def prepare(self, target: ObjectVersion, trace_id: str) -> Prepared | Rejection:
        if target.size is not None:
            too_large = self.check_size(target.size)
            if too_large:
                return Rejection(too_large)
            if self._inline(target.size):
                return self._prepare_inline(target, target.size, trace_id)
        return self._prepare_by_location(target, trace_id)

    def _prepare_by_location(self, target: ObjectVersion, trace_id: str) -> Prepared | Rejection:
        too_long = _too_long(target) if target.size is not None else None
        if too_long:  # the event alone shows it: no call needed
            return Rejection(too_long)
        try:
            head = self._inspector.head(target.bucket, target.key)
        except ObjectMissingError as error:
            return Rejection(f"the object was deleted before it could be submitted: {error}")
        size = target.size if target.size is not None else head.content_length
        if target.size is None and not self.check_size(size) and self._inline(size):
            # The event did not say the size, the head did: small enough to go inline.
            return self._prepare_inline(target, size, trace_id)
        rejection = _superseded(target, head) or self.check_size(size) or _too_long(target)
        if rejection:
            return Rejection(rejection, input_size=size)
        return self._describe(target, size, head.content_type, head.metadata, trace_id)

    def check_size(self, size: int) -> str | None:
        limit = self._config.max_input_bytes
        if size <= limit:
            return None
        return (
            f"the object is {size} bytes; the limit is {limit} bytes "
            "(MAX_INPUT_BYTES; SageMaker async inference takes payloads up to 1 GB)"
        )

    def _inline(self, size: int) -> bool:
        return sends_inline(size, self._config.inline_input_max_bytes)

    def _prepare_inline(
        self, target: ObjectVersion, size: int, trace_id: str
    ) -> Prepared | Rejection:
        announced = AnnouncedVersion(
            bucket=target.bucket,
            key=target.key,
            size=size,
            etag=target.etag,
            version_id=target.version_id,
        )
        try:
            fetched = self._reader.fetch(announced)
        except ObjectMissingError as error:
            return Rejection(
                f"the object was deleted before it could be submitted: {error}", input_size=size
            )
        except ObjectChangedError as error:
            named = f"version {target.version_id}" if announced.versioned else f"ETag {target.etag}"
            return Rejection(
                f"{target.input_location} was overwritten before submission: the event names "
                f"{named}, which can no longer be read ({error})",
                input_size=size,
            )
        return self._describe(
            target, size, fetched.content_type, fetched.metadata, trace_id, body=fetched.data
        )

    def _describe(
        self,
        target: ObjectVersion,
        size: int,
        stored_content_type: str | None,
        metadata: Mapping[str, str],
        trace_id: str,
        *,
        body: bytes | None = None,
    ) -> Prepared | Rejection:
        content_type = resolve_content_type(
            target.key, stored_content_type, self._extensions, self._config.default_content_type
        )
        pairs = custom_attribute_pairs(self._config, dict(metadata), trace_id)
        try:
            custom_attributes = encode_custom_attributes(pairs)
        except CustomAttributesTooLongError as error:
            return Rejection(str(error), input_size=size)
        extension, filename = naming_members(
            target.key, target.inference_id, self._config.output_naming
        )
        return Prepared(
            content_type=content_type,
            custom_attributes=custom_attributes,
            input_size=size,
            body=body,
            input_location=None if body is not None else target.input_location,
            output_path_extension=extension,
            filename=filename,
        )


def _too_long(target: ObjectVersion) -> str | None:
    """Only a request by location carries the location; an inline one has no such limit."""
    if len(target.input_location) <= INPUT_LOCATION_MAX_LENGTH:
        return None
    return (
        f"InputLocation is {len(target.input_location)} characters; "
        f"InvokeEndpointAsync allows at most {INPUT_LOCATION_MAX_LENGTH}"
    )


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
