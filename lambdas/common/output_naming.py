"""Where SageMaker writes an input's output: ``S3OutputPathExtension`` and ``Filename``.

Since 2026-02-20 ``InvokeEndpointAsync`` takes two optional members that name the output
object: ``S3OutputPathExtension`` (1-512 characters of ``[a-zA-Z0-9!_.*'()/-]``, not starting
with ``s3:`` or ``https:``) is appended to the endpoint's ``S3OutputPath``, and ``Filename``
(1-32 characters, ``[a-zA-Z0-9][a-zA-Z0-9-_.]*``, at most one dot) names the output ("If
not specified, Amazon SageMaker AI generates a filename based on the inference ID", model
documentation). With ``output_naming = input`` (``lambdas.common.contract.OutputNaming``) the
pipeline uses them so that the output of ``s3://<input bucket>/a/b/photo.json`` is written to
``<S3OutputPath>/a/b/<Filename>``: beside the input's own path, where a person looks.

The rule (the README's "Where outputs land" shows it with examples):

* **Extension** = the key's folder (everything before the key's last ``/``), with every
  character outside ``[a-zA-Z0-9_.*'()/-]`` written as ``!XX`` for each byte of its UTF-8 form
  (``XX`` = two upper-case hex digits). ``!`` itself is in the API's pattern but is the escape
  character, so it is always encoded (``!21``). Spaces, ``+``, ``%``, ``:``, ``~``, ``=``,
  ``&``, ``@``, ``,`` and every non-ASCII character are therefore encoded. ``/`` is kept
  between two non-empty segments, so the folder hierarchy is the same; a leading, trailing or
  doubled ``/`` is encoded (``!2F``), and so is the first dot of a ``.`` or ``..`` segment
  (``!2E``), so that no tool normalizes the path into another folder. ``:`` is outside the
  pattern, so an extension can never start with ``s3:`` or ``https:``. A key without a folder
  gets no extension (the output lands directly under ``S3OutputPath``). The encoding is
  reversible: ``decode_extension`` gives the folder back, and every folder maps to a
  different extension.
* **Beyond 512 characters** an encoded folder is cut at the last escape boundary that leaves
  room for ``!!`` and 16 hex digits of the SHA-256 of the full folder's UTF-8 bytes (``!!``
  never occurs in an untruncated extension, so the marker is unambiguous). Such an extension
  still starts with the folder's first ~490 encoded characters, stays distinct per folder (up
  to 64-bit hash collisions) and no longer decodes to the folder: ``decode_extension`` raises
  ``TruncatedExtensionError``. The record keeps the input's key and the exact output location
  either way.
* **Filename** = the first 28 hex digits of the inference id (a SHA-256 hex digest of the
  object version's location: 112 bits, so two versions in one folder collide with probability
  about n²/2¹¹³) + ``.out``: 32 characters, one dot. An inference id that is not hex (a caller
  gave its own) is hashed with SHA-256 first, so the name stays within the pattern.

SageMaker documents no separator handling: the local runtime
(``asyncinfer.local.sagemaker.wire``) strips ``/`` at the ends of the extension and joins
``<S3OutputPath>/<extension>/<Filename>``.
The pipeline never guesses the location: it stores the ``OutputLocation`` the response
returns.

Pure standard library: it ships in the ingest asset and costs nothing at cold start.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_EXTENSION_LENGTH = 512
MAX_FILENAME_LENGTH = 32
# The API's patterns (sagemaker-runtime service model, 2026-02-20).
EXTENSION_PATTERN = re.compile(r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+")
FILENAME_PATTERN = re.compile(r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9_.-]*")

ESCAPE = "!"
TRUNCATION_MARKER = "!!"
TRUNCATION_HASH_HEX_DIGITS = 16
FILENAME_SUFFIX = ".out"
FILENAME_ID_HEX_DIGITS = MAX_FILENAME_LENGTH - len(FILENAME_SUFFIX)  # 28 hex digits = 112 bits

# Characters written as themselves: the API's pattern less the escape character.
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.*'()/-")
_HEX = re.compile(r"[0-9a-f]+")
_ESCAPED_BYTE = re.compile(r"!([0-9A-F]{2})")
_ENCODED = re.compile(r"(?:[a-zA-Z0-9_.*'()/-]|![0-9A-F]{2})*")


class TruncatedExtensionError(ValueError):
    """The extension was shortened to fit 512 characters: the folder is not recoverable."""


@dataclass(frozen=True)
class OutputName:
    """What to send: ``extension`` is None for a key without a folder."""

    extension: str | None
    filename: str


def _encode_chars(text: str) -> str:
    return "".join(
        char
        if char in _KEPT
        else "".join(f"{ESCAPE}{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in text
    )


def encode_folder(folder: str) -> str:
    """The reversible, pattern-conforming form of a folder (no length limit applied).

    Besides the characters outside the pattern, two things are encoded so that the extension
    names the same folders in S3's console and in every tool: a ``/`` that does not stand
    between two non-empty segments (a leading or trailing one, or one of ``//``), and the first
    dot of a ``.`` or ``..`` segment.
    """
    segments = folder.split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        if index:
            kept = bool(segments[index - 1]) and bool(segment)
            parts.append("/" if kept else f"{ESCAPE}2F")
        if segment in (".", ".."):
            parts.append(f"{ESCAPE}2E{segment[1:]}")
        else:
            parts.append(_encode_chars(segment))
    return "".join(parts)


def extension_for_folder(folder: str) -> str | None:
    """The ``S3OutputPathExtension`` of a folder (without its trailing ``/``); None if empty."""
    if not folder:
        return None
    encoded = encode_folder(folder)
    if len(encoded) <= MAX_EXTENSION_LENGTH:
        return encoded
    digest = hashlib.sha256(folder.encode("utf-8", "surrogatepass")).hexdigest()
    room = MAX_EXTENSION_LENGTH - len(TRUNCATION_MARKER) - TRUNCATION_HASH_HEX_DIGITS
    cut = room
    # Never cut an escape in half: back up to the start of a "!XX" that would be split.
    escape_start = encoded.rfind(ESCAPE, max(0, room - 2), room)
    if escape_start != -1:
        cut = escape_start
    return f"{encoded[:cut]}{TRUNCATION_MARKER}{digest[:TRUNCATION_HASH_HEX_DIGITS]}"


def decode_extension(extension: str) -> str:
    """The folder an untruncated extension was made from (``ValueError`` if it is not one)."""
    if TRUNCATION_MARKER in extension:
        raise TruncatedExtensionError(f"extension was truncated to fit: ...{extension[-40:]}")
    if _ENCODED.fullmatch(extension) is None:
        raise ValueError(f"not an encoded extension: {extension!r}")
    raw = bytearray()
    position = 0
    for match in _ESCAPED_BYTE.finditer(extension):
        raw += extension[position : match.start()].encode("ascii")
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += extension[position:].encode("ascii")
    return raw.decode("utf-8", "surrogatepass")


def filename_for(inference_id: str) -> str:
    """``<first 28 hex digits of the inference id>.out``: 32 characters, one dot."""
    lowered = inference_id.lower()
    hex_digits = lowered if _HEX.fullmatch(lowered) else ""
    if len(hex_digits) < FILENAME_ID_HEX_DIGITS:
        hex_digits = hashlib.sha256(inference_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{hex_digits[:FILENAME_ID_HEX_DIGITS]}{FILENAME_SUFFIX}"


def key_folder(key: str) -> str:
    """Everything before the key's last ``/`` (``"a/b"`` for ``"a/b/c.json"``)."""
    folder, _, _ = key.rpartition("/")
    return folder


def output_name(key: str, inference_id: str) -> OutputName:
    """The two members for an (already URL-decoded) S3 key and its inference id."""
    return OutputName(
        extension=extension_for_folder(key_folder(key)), filename=filename_for(inference_id)
    )
