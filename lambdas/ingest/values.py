"""The ingest function's value types: what an event announced, what S3 said about it, and what
one InvokeEndpointAsync call sends and gets back.

Plain frozen dataclasses (standard library only), shared by the payload rules
(``lambdas.ingest.payload``), the preparation of a request (``prepare``), the submission flow
(``logic``) and the data access that fills them (``clients``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class ObjectHead:
    """What HeadObject says about the current version of an object."""

    etag: str
    content_length: int
    content_type: str | None = None
    version_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InlineInput:
    """The announced version's bytes, with the content type and user metadata stored with it."""

    data: bytes
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InvocationRequest:
    """One InvokeEndpointAsync call. Exactly one of ``input_location`` and ``body`` is set; the
    optional members are sent only when set, so ``output_naming = service`` sends neither."""

    endpoint_name: str
    inference_id: str
    content_type: str
    accept: str
    custom_attributes: str
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    input_location: str | None = None
    body: bytes | None = None
    output_path_extension: str | None = None
    filename: str | None = None

    def optional_members(self) -> dict[str, Any]:
        """The payload and output-naming keyword arguments of ``invoke_endpoint_async``."""
        members = {
            "InputLocation": self.input_location,
            "Body": self.body,
            "S3OutputPathExtension": self.output_path_extension,
            "Filename": self.filename,
        }
        return {name: value for name, value in members.items() if value is not None}


@dataclass(frozen=True)
class InvocationResponse:
    inference_id: str
    output_location: str | None
    failure_location: str | None
