"""What one InvokeEndpointAsync request carries: the exact bytes, or where to read them.

SageMaker reads an ``InputLocation`` when it *processes* the request, not when it was
submitted: an object overwritten in between is processed with the newer bytes under the older
version's inference id. For an input of at most ``inline_input_max_bytes`` (128,000, the API's
limit for the inline ``Body``) the ingest function therefore reads the announced version itself
and sends its bytes inline, so the endpoint processes exactly what was uploaded whatever
happens to the key afterwards:

* a versioned bucket: ``GetObject`` with the announced ``VersionId`` (an overwrite creates a
  new version and leaves this one readable; a deleted version raises ``ObjectMissingError``,
  which the submitter records as "deleted before submission");
* no version id (an unversioned bucket, or ``"null"``): ``GetObject`` with ``IfMatch`` = the
  announced ETag; a changed object answers 412 and raises ``ObjectChangedError``, which the
  caller records like any "overwritten before submission" (``failure_stage = ingest``).

Larger inputs (and empty ones: a Body needs at least one byte) go by ``InputLocation``, with
the residual window the README's "Exactly the version that was uploaded" states.

``lambdas.ingest.prepare`` puts it together with the output naming (``output_naming``), the
version's content type and metadata into the members of the ingest function's request. The S3
reads themselves are ``lambdas.ingest.clients.S3InputReader`` (the only module that knows
botocore's errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from lambdas.common.contract import INLINE_INPUT_CAP_BYTES, OutputNaming
from lambdas.common.output_naming import output_name

if TYPE_CHECKING:
    from lambdas.ingest.values import AnnouncedVersion, InlineInput


def sends_inline(size: int, inline_input_max_bytes: int) -> bool:
    """Whether an input of ``size`` bytes goes as Body (0 turns inline sending off)."""
    limit = min(inline_input_max_bytes, INLINE_INPUT_CAP_BYTES)
    return 0 < size <= limit


class InputReader(Protocol):
    """Reads an announced version (``lambdas.ingest.clients.S3InputReader`` on AWS)."""

    def fetch(self, version: AnnouncedVersion) -> InlineInput:
        """The version's bytes, content type and metadata; raises ``InputUnavailableError``."""
        ...

    def read(self, version: AnnouncedVersion) -> bytes:
        """Exactly the announced version's bytes; raises ``InputUnavailableError``."""
        ...


def naming_members(
    key: str, inference_id: str, naming: OutputNaming
) -> tuple[str | None, str | None]:
    """``(S3OutputPathExtension, Filename)`` for a key: both None with ``naming = service``."""
    if naming is not OutputNaming.INPUT:
        return None, None
    name = output_name(key, inference_id)
    return name.extension, name.filename
