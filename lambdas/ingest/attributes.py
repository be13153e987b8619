"""What InvokeEndpointAsync is told about an object besides where it is: ContentType and
CustomAttributes.

The content type is the object's own unless generic, else its extension's, else the default.
The custom attributes are the configured static pairs, then allow-listed user metadata of the
object, then the trace id, encoded to fit the API's one header of visible US-ASCII.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.header import decode_header, make_header
from typing import TYPE_CHECKING
from urllib.parse import quote

from lambdas.common.contract import CUSTOM_ATTRIBUTES_MAX_CHARS, TRACE_ID_ATTRIBUTE

if TYPE_CHECKING:
    from lambdas.ingest.config import IngestConfig

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
            f"allows at most {CUSTOM_ATTRIBUTES_MAX_CHARS} visible US-ASCII characters "
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
    if len(encoded) > CUSTOM_ATTRIBUTES_MAX_CHARS:
        raise CustomAttributesTooLongError(len(encoded))
    return encoded


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
