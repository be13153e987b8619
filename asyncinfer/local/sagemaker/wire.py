"""The ``InvokeEndpointAsync`` wire protocol as the local runtime speaks it.

Request parsing and validation (the limits of botocore's service model, with SageMaker's
Coral-style messages), the error answers botocore parses into ``ClientError`` codes, and the
result locations of an accepted request. The SNS notifications are in ``publisher``.

botocore parses a rest-json error's code from the ``X-Amzn-ErrorType`` header (the part before
``:``), falling back to the body's ``code``/``__type``, and the message from the body's
``message``/``Message``: ``ApiError.headers``/``ApiError.body`` give it both.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

CONTENT_TYPE_HEADER = "X-Amzn-SageMaker-Content-Type"
ACCEPT_HEADER = "X-Amzn-SageMaker-Accept"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
INPUT_LOCATION_HEADER = "X-Amzn-SageMaker-InputLocation"
OUTPUT_PATH_EXTENSION_HEADER = "X-Amzn-SageMaker-S3OutputPathExtension"
FILENAME_HEADER = "X-Amzn-SageMaker-Filename"
REQUEST_TTL_HEADER = "X-Amzn-SageMaker-RequestTTLSeconds"
INVOCATION_TIMEOUT_HEADER = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
OUTPUT_LOCATION_HEADER = "X-Amzn-SageMaker-OutputLocation"
FAILURE_LOCATION_HEADER = "X-Amzn-SageMaker-FailureLocation"

VALIDATION_ERROR = "ValidationError"
THROTTLING_EXCEPTION = "ThrottlingException"
SERVICE_UNAVAILABLE = "ServiceUnavailable"
INTERNAL_FAILURE = "InternalFailure"
MODEL_NOT_READY = "ModelNotReadyException"
UNKNOWN_OPERATION = "UnknownOperationException"
ERROR_STATUS = {
    VALIDATION_ERROR: 400,
    THROTTLING_EXCEPTION: 429,
    SERVICE_UNAVAILABLE: 503,
    INTERNAL_FAILURE: 500,
    MODEL_NOT_READY: 429,
    UNKNOWN_OPERATION: 404,
}

MIN_REQUEST_TTL_SECONDS = 60
MAX_REQUEST_TTL_SECONDS = 21600
DEFAULT_REQUEST_TTL_SECONDS = MAX_REQUEST_TTL_SECONDS
MIN_INVOCATION_TIMEOUT_SECONDS = 1
MAX_INVOCATION_TIMEOUT_SECONDS = 3600
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 900
MAX_HEADER_LENGTH = 1024
MAX_INFERENCE_ID_LENGTH = 64
MAX_ENDPOINT_NAME_LENGTH = 63
MAX_INLINE_BODY_BYTES = 128_000
MAX_OUTPUT_PATH_EXTENSION_LENGTH = 512
MAX_FILENAME_LENGTH = 32
DEFAULT_CONTENT_TYPE = "application/octet-stream"

INVOKE_PATH = re.compile(r"/endpoints/(?P<endpoint>[^/]+)/async-invocations")
ENDPOINT_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
LOCATION_PATTERN = re.compile(r"(?P<scheme>https|s3)://(?P<bucket>[^/]+)/?(?P<key>.*)", re.DOTALL)
OUTPUT_PATH_EXTENSION_PATTERN = re.compile(r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+")
FILENAME_PATTERN = re.compile(r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9_.-]*")
INTEGER_PATTERN = re.compile(r"[+-]?[0-9]+")


class ApiError(Exception):
    """An error answer of the API: HTTP status, botocore error code, message."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)

    def headers(self) -> dict[str, str]:
        return {
            "X-Amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/com.amazon.coral.service/"
        }

    def body(self) -> dict[str, str]:
        return {"message": self.message}


def endpoint_not_found(endpoint_name: str, account_id: str) -> ApiError:
    return ApiError(
        VALIDATION_ERROR, f"Endpoint {endpoint_name} of account {account_id} not found."
    )


@dataclass(frozen=True)
class InvocationRequest:
    """A validated ``InvokeEndpointAsync`` request (``body`` is the inline payload, if any)."""

    endpoint_name: str
    inference_id: str | None
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    input_location: str | None
    body: bytes | None
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    output_path_extension: str | None
    filename: str | None


@dataclass(frozen=True)
class AcceptedInvocation:
    """A queued request: its id, where its output or failure will land, when it arrived."""

    request: InvocationRequest
    inference_id: str
    output_location: str
    failure_location: str
    received_at: datetime

    @property
    def content_type(self) -> str:
        return self.request.content_type or DEFAULT_CONTENT_TYPE


class _Violations:
    """Collects constraint violations into one Coral-style ValidationError."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, member: str, value: str | None, constraint: str) -> None:
        shown = "" if value is None else f" '{value}'"
        self.messages.append(
            f"Value{shown} at '{member}' failed to satisfy constraint: Member must {constraint}"
        )

    def check(
        self,
        member: str,
        value: str | None,
        *,
        maximum: int,
        minimum: int = 0,
        matches: Callable[[str], bool] | None = None,
        pattern: str = "",
        sensitive: bool = False,
    ) -> str | None:
        """Checks an optional string member's length, then its pattern; returns the value."""
        if value is None:
            return None
        shown = None if sensitive else value
        if len(value) < minimum:
            self.add(member, shown, f"have length greater than or equal to {minimum}")
        elif len(value) > maximum:
            self.add(member, shown, f"have length less than or equal to {maximum}")
        elif matches is not None and not matches(value):
            self.add(member, shown, f"satisfy regular expression pattern: {pattern}")
        return value

    def integer(
        self, member: str, value: str | None, *, minimum: int, maximum: int, default: int
    ) -> int:
        if value is None:
            return default
        if not INTEGER_PATTERN.fullmatch(value.strip()):
            self.add(member, value, "be an integer")
            return default
        number = int(value)
        if number < minimum:
            self.add(member, value, f"have value greater than or equal to {minimum}")
        elif number > maximum:
            self.add(member, value, f"have value less than or equal to {maximum}")
        return number

    def raise_if_any(self) -> None:
        if self.messages:
            count = len(self.messages)
            plural = "s" if count > 1 else ""
            raise ApiError(
                VALIDATION_ERROR,
                f"{count} validation error{plural} detected: " + "; ".join(self.messages),
            )


def _is_visible_ascii(value: str) -> bool:
    """RFC 7230 field-value characters: visible US-ASCII, with spaces and tabs between."""
    return all(character == "\t" or " " <= character <= "~" for character in value)


def _is_inference_id(value: str) -> bool:
    return not value[0].isspace() and all(" " <= character <= "~" for character in value)


def parse_invocation(
    endpoint_name: str, headers: Mapping[str, str], body: bytes
) -> InvocationRequest:
    """Validates a request as SageMaker does; raises ``ApiError`` (ValidationError) if invalid.

    ``headers`` are matched case-insensitively. Both an ``InputLocation`` and an inline body
    (at most 128,000 bytes) are accepted, exactly one of them.
    """
    lowered = {name.lower(): value for name, value in headers.items()}

    def header(name: str) -> str | None:
        return lowered.get(name.lower())

    check = _Violations()
    check.check(
        "endpointName",
        endpoint_name,
        maximum=MAX_ENDPOINT_NAME_LENGTH,
        minimum=1,
        matches=lambda value: ENDPOINT_NAME_PATTERN.fullmatch(value) is not None,
        pattern="^[a-zA-Z0-9](-*[a-zA-Z0-9])*",
    )
    content_type, accept, custom_attributes, inference_id = _check_content_headers(check, header)
    input_location, extension, filename = _check_location_headers(check, header, body)
    ttl = check.integer(
        "requestTTLSeconds",
        header(REQUEST_TTL_HEADER),
        minimum=MIN_REQUEST_TTL_SECONDS,
        maximum=MAX_REQUEST_TTL_SECONDS,
        default=DEFAULT_REQUEST_TTL_SECONDS,
    )
    timeout = check.integer(
        "invocationTimeoutSeconds",
        header(INVOCATION_TIMEOUT_HEADER),
        minimum=MIN_INVOCATION_TIMEOUT_SECONDS,
        maximum=MAX_INVOCATION_TIMEOUT_SECONDS,
        default=DEFAULT_INVOCATION_TIMEOUT_SECONDS,
    )
    check.raise_if_any()
    _check_payload(input_location, body)
    return InvocationRequest(
        endpoint_name=endpoint_name,
        inference_id=inference_id,
        content_type=content_type,
        accept=accept,
        custom_attributes=custom_attributes,
        input_location=input_location,
        body=body or None,
        request_ttl_seconds=ttl,
        invocation_timeout_seconds=timeout,
        output_path_extension=extension,
        filename=filename,
    )


def _check_content_headers(
    check: _Violations, header: Callable[[str], str | None]
) -> tuple[str | None, str | None, str | None, str | None]:
    """The content type, accept, custom attributes and inference id headers, checked."""
    # both members are of the API model's shape ``Header``: at most 1024 ASCII characters
    content_type, accept = (
        check.check(
            member,
            header(name),
            maximum=MAX_HEADER_LENGTH,
            matches=str.isascii,
            pattern=r"\p{ASCII}*",
        )
        for member, name in (("contentType", CONTENT_TYPE_HEADER), ("accept", ACCEPT_HEADER))
    )
    custom_attributes = check.check(
        "customAttributes",
        header(CUSTOM_ATTRIBUTES_HEADER),
        maximum=MAX_HEADER_LENGTH,
        matches=_is_visible_ascii,
        pattern="visible US-ASCII characters (RFC 7230 field-value)",
        sensitive=True,
    )
    inference_id = check.check(
        "inferenceId",
        header(INFERENCE_ID_HEADER),
        maximum=MAX_INFERENCE_ID_LENGTH,
        minimum=1,
        matches=_is_inference_id,
        pattern=r"\A\S[\p{Print}]*\z",
    )
    return content_type, accept, custom_attributes, inference_id


def _check_location_headers(
    check: _Violations, header: Callable[[str], str | None], body: bytes
) -> tuple[str | None, str | None, str | None]:
    """The input location (and the inline body's size), output path extension and filename."""
    input_location = check.check(
        "inputLocation",
        header(INPUT_LOCATION_HEADER),
        maximum=MAX_HEADER_LENGTH,
        minimum=1,
        matches=lambda value: LOCATION_PATTERN.fullmatch(value) is not None,
        pattern="^(https|s3)://([^/]+)/?(.*)$",
    )
    if len(body) > MAX_INLINE_BODY_BYTES:
        check.add("body", None, f"have length less than or equal to {MAX_INLINE_BODY_BYTES}")
    extension = check.check(
        "s3OutputPathExtension",
        header(OUTPUT_PATH_EXTENSION_HEADER),
        maximum=MAX_OUTPUT_PATH_EXTENSION_LENGTH,
        minimum=1,
        matches=lambda value: OUTPUT_PATH_EXTENSION_PATTERN.fullmatch(value) is not None,
        pattern="^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$",
    )
    filename = check.check(
        "filename",
        header(FILENAME_HEADER),
        maximum=MAX_FILENAME_LENGTH,
        minimum=1,
        matches=lambda value: FILENAME_PATTERN.fullmatch(value) is not None,
        pattern=r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$",
    )
    return input_location, extension, filename


def _check_payload(input_location: str | None, body: bytes) -> None:
    """The model's ``Body`` documentation: "``Body`` and ``InputLocation`` are mutually
    exclusive. Provide exactly one of them." (and a location local mode can read)."""
    if input_location is None and not body:
        raise ApiError(
            VALIDATION_ERROR,
            "InputLocation is required: give the Amazon S3 URI of the request payload "
            "(or an inline Body).",
        )
    if input_location is not None and body:
        raise ApiError(
            VALIDATION_ERROR, "Body and InputLocation are mutually exclusive: provide exactly one."
        )
    if input_location is not None:
        _check_input_location(input_location)


def _check_input_location(input_location: str) -> None:
    match = LOCATION_PATTERN.fullmatch(input_location)
    if match is None or match["scheme"] != "s3":
        raise ApiError(
            VALIDATION_ERROR,
            f"Input location {input_location} is not supported: the local runtime reads "
            "s3://bucket/key locations.",
        )
    if not match["key"]:
        raise ApiError(
            VALIDATION_ERROR,
            f"Input location {input_location} does not name an object: use s3://bucket/key.",
        )


def accept_invocation(
    request: InvocationRequest, output_path: str, failure_path: str, received_at: datetime
) -> AcceptedInvocation:
    """Assigns the inference id and the result locations, as the sagemaker-runtime model
    (botocore's ``sagemaker-runtime/2017-05-13/service-2.json``, 2026) documents them:

    * ``S3OutputPathExtension``: "The path extension that is appended to the Amazon S3 output
      path where the inference response payload is stored": joined with one ``/``. Nothing is
      documented for the failure path, which stays ``S3FailurePath``.
    * ``Filename``: "The filename for the inference response payload stored in Amazon S3. If
      not specified, Amazon SageMaker AI generates a filename based on the inference ID": so
      ``<inference id>.out`` (the exact derivation is undocumented; an id that is not a plain
      name becomes a uuid derived from it, ``_generated_name``). The failure is
      ``<that name>-error.out`` (no failure name is documented).
    * ``InferenceId``: generated "if none is specified" (a uuid here).
    The pipeline never relies on these rules: it stores the response's locations.
    """
    inference_id = request.inference_id or str(uuid.uuid4())
    generated = _generated_name(inference_id)
    extension = (request.output_path_extension or "").strip("/")
    output_folder = "/".join(part for part in (output_path.rstrip("/"), extension) if part)
    return AcceptedInvocation(
        request=request,
        inference_id=inference_id,
        output_location=f"{output_folder}/{request.filename or generated + '.out'}",
        failure_location=f"{failure_path.rstrip('/')}/{generated}-error.out",
        received_at=received_at,
    )


_PLAIN_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}")


def _generated_name(inference_id: str) -> str:
    """The name SageMaker's documentation says it bases on the inference id (see above)."""
    if _PLAIN_NAME.fullmatch(inference_id) and ".." not in inference_id:
        return inference_id
    return str(uuid.uuid5(uuid.NAMESPACE_URL, inference_id))
