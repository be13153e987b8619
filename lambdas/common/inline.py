"""How a small inference output is kept in the record's ``result`` attribute.

``result_encoding`` says what ``result`` holds:

* ``utf-8``: the output is text (valid UTF-8) and ``result`` is that text, unchanged;
* ``base64``: the output is binary and ``result`` is its standard base64 encoding;
* ``omitted:too-large``: the output (text, or of unknown kind because it was not read) is
  larger than the inline limit; ``result`` is absent, read ``output_location``;
* ``omitted:binary``: the output is binary and its base64 form would exceed the inline limit;
  ``result`` is absent, read ``output_location``.

No ``result_encoding`` means no inline result was attempted (inline reads disabled, a failure
without a response body) or the output object could not be read.

Whatever the configuration, the stored form never exceeds ``INLINE_RESULT_CAP_BYTES`` (64 KiB),
which keeps an item far below DynamoDB's 400 KB limit next to the other attributes (each at
most a few KiB).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from enum import StrEnum

from lambdas.common.contract import INLINE_RESULT_CAP_BYTES

_TEXT_SUBTYPES = frozenset({"json", "csv", "xml", "x-ndjson", "jsonlines", "x-jsonlines"})
_TEXT_SUFFIXES = ("+json", "+xml")
# C0 controls other than tab, newline, form feed and carriage return, and DEL: binary giveaways.
_BINARY_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


class ResultEncoding(StrEnum):
    UTF8 = "utf-8"
    BASE64 = "base64"
    OMITTED_TOO_LARGE = "omitted:too-large"
    OMITTED_BINARY = "omitted:binary"


@dataclass(frozen=True)
class InlineResult:
    encoding: ResultEncoding
    result: str | None = None


TOO_LARGE = InlineResult(ResultEncoding.OMITTED_TOO_LARGE)


def is_text_content_type(content_type: str | None) -> bool:
    """``text/*``, JSON, CSV, XML and their ``+json``/``+xml`` variants."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    main_type, _, subtype = media_type.partition("/")
    return main_type == "text" or subtype in _TEXT_SUBTYPES or subtype.endswith(_TEXT_SUFFIXES)


def _as_text(body: bytes, content_type: str | None) -> str | None:
    """The output as text when it is text: valid UTF-8 that is declared textual, or that holds
    no control characters whatever its declared type (models often label JSON octet-stream)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if is_text_content_type(content_type):
        return text
    return None if _BINARY_CONTROL_CHARACTERS.search(text) else text


def encode_inline(body: bytes, content_type: str | None) -> InlineResult:
    """Text stays text, binary becomes base64, and nothing larger than the cap is kept."""
    text = _as_text(body, content_type)
    if text is not None:
        if len(body) <= INLINE_RESULT_CAP_BYTES:  # DynamoDB counts a string's UTF-8 bytes
            return InlineResult(ResultEncoding.UTF8, text)
        return TOO_LARGE
    encoded = base64.b64encode(body).decode("ascii")
    if len(encoded) <= INLINE_RESULT_CAP_BYTES:
        return InlineResult(ResultEncoding.BASE64, encoded)
    return InlineResult(ResultEncoding.OMITTED_BINARY)
