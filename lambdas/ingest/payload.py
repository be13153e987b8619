"""What one InvokeEndpointAsync request carries: the exact bytes, or where to read them.

SageMaker reads an ``InputLocation`` when it *processes* the request, not when it was
submitted: an object overwritten in between is processed with the newer bytes under the older
version's inference id. For an input of at most ``inline_input_max_bytes`` (128,000, the API's
limit for the inline ``Body``) the ingest function therefore reads the announced version itself
and sends its bytes inline, so the endpoint processes exactly what was uploaded whatever
happens to the key afterwards:

* a versioned bucket: ``GetObject`` with the announced ``VersionId`` (an overwrite creates a
  new version and leaves this one readable; a deleted version raises ``ObjectMissingError``);
* no version id (an unversioned bucket, or ``"null"``): ``GetObject`` with ``IfMatch`` = the
  announced ETag; a changed object answers 412 and raises ``ObjectChangedError``, which the
  caller records like any "overwritten before submission" (``failure_stage = ingest``).

Larger inputs (and empty ones: a Body needs at least one byte) go by ``InputLocation``, with
the residual window the README's "Exactly the version that was uploaded" states.

``request_members`` puts it together with the output naming (``output_naming``) into the
keyword arguments of ``invoke_endpoint_async``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from lambdas.common.contract import INLINE_INPUT_CAP_BYTES
from lambdas.ingest.output_naming import OutputNaming, output_name

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

INLINE_BODY_MAX_BYTES = INLINE_INPUT_CAP_BYTES  # the API's limit for Body
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound", "405"})
_CHANGED_CODES = frozenset({"412", "PreconditionFailed"})


class InputUnavailableError(LookupError):
    """The announced version can no longer be read."""


class ObjectMissingError(InputUnavailableError):
    """The version (or object) was deleted before the function read it."""


class ObjectChangedError(InputUnavailableError):
    """An unversioned object was overwritten: the key no longer holds the announced bytes."""


@dataclass(frozen=True)
class AnnouncedVersion:
    """The object version an event announced (``version_id`` None or "null" when unversioned)."""

    bucket: str
    key: str
    size: int
    etag: str | None = None
    version_id: str | None = None

    @property
    def versioned(self) -> bool:
        return bool(self.version_id) and self.version_id != "null"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def sends_inline(size: int, inline_input_max_bytes: int) -> bool:
    """Whether an input of ``size`` bytes goes as Body (0 turns inline sending off)."""
    limit = min(inline_input_max_bytes, INLINE_BODY_MAX_BYTES)
    return 0 < size <= limit


class InputReader(Protocol):
    def read(self, version: AnnouncedVersion) -> bytes:
        """Exactly the announced version's bytes; raises ``InputUnavailableError``."""
        ...


class S3InputReader:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def read(self, version: AnnouncedVersion) -> bytes:
        arguments: dict[str, Any] = {"Bucket": version.bucket, "Key": version.key}
        if version.versioned:
            arguments["VersionId"] = version.version_id
        elif version.etag:
            arguments["IfMatch"] = f'"{version.etag.strip(chr(34))}"'
        try:
            response = self._client.get_object(**arguments)
            data: bytes = response["Body"].read()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _CHANGED_CODES or status == "412":
                raise ObjectChangedError(f"{version.location} was overwritten ({code})") from error
            if code in _MISSING_CODES or status == "404":
                raise ObjectMissingError(f"{version.location} no longer exists ({code})") from error
            raise
        if len(data) != version.size:
            # An unversioned object replaced by one with the same ETag cannot happen; a size
            # that differs from the event's means the event and the object disagree.
            raise ObjectChangedError(
                f"{version.location} has {len(data)} bytes, the event announced {version.size}"
            )
        return data


def request_members(
    *,
    version: AnnouncedVersion,
    inference_id: str,
    naming: OutputNaming,
    inline_input_max_bytes: int,
    reader: InputReader,
) -> dict[str, Any]:
    """The payload and output-naming members of ``invoke_endpoint_async`` for one version.

    Either ``Body`` (the announced bytes) or ``InputLocation``; with ``naming = input`` also
    ``S3OutputPathExtension`` (when the key has a folder) and ``Filename``. The other members
    (endpoint, inference id, content type, accept, custom attributes, TTL, timeout) are the
    caller's, as before.
    """
    members: dict[str, Any] = {}
    if sends_inline(version.size, inline_input_max_bytes):
        members["Body"] = reader.read(version)
    else:
        members["InputLocation"] = version.location
    if naming is OutputNaming.INPUT:
        name = output_name(version.key, inference_id)
        if name.extension is not None:
            members["S3OutputPathExtension"] = name.extension
        members["Filename"] = name.filename
    return members
