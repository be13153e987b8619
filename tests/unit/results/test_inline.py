"""What an output becomes in ``result``: text stays text, binary is base64, nothing is too big."""

from __future__ import annotations

import base64

import pytest

from lambdas.common.inline import (
    INLINE_RESULT_CAP_BYTES,
    ResultEncoding,
    encode_inline,
    is_text_content_type,
)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/csv; charset=utf-8",
        "application/json",
        "APPLICATION/JSON; charset=UTF-8",
        "application/geo+json",
        "application/xml",
        "application/atom+xml",
        "application/jsonlines",
        "application/x-ndjson",
    ],
)
def test_textual_content_types(content_type: str) -> None:
    assert is_text_content_type(content_type)


@pytest.mark.parametrize(
    "content_type", [None, "", "application/octet-stream", "image/png", "application/x-npy"]
)
def test_non_textual_content_types(content_type: str | None) -> None:
    assert not is_text_content_type(content_type)


def test_text_stays_text() -> None:
    inline = encode_inline("étiquette: rose\n".encode(), "text/plain; charset=utf-8")

    assert inline.encoding == ResultEncoding.UTF8
    assert inline.result == "étiquette: rose\n"


def test_undeclared_utf8_text_is_text() -> None:
    inline = encode_inline(b'{"label": "rose"}', "application/octet-stream")

    assert inline.encoding == ResultEncoding.UTF8
    assert inline.result == '{"label": "rose"}'


def test_empty_output_is_empty_text() -> None:
    assert encode_inline(b"", None).result == ""


def test_bytes_with_control_characters_are_binary() -> None:
    body = b"\x00\x01\x02abc"  # valid UTF-8, but no text

    inline = encode_inline(body, None)

    assert inline.encoding == ResultEncoding.BASE64
    assert inline.result is not None
    assert base64.b64decode(inline.result) == body


def test_invalid_utf8_declared_as_text_is_binary() -> None:
    body = "café".encode("latin-1")

    inline = encode_inline(body, "text/plain")

    assert inline.encoding == ResultEncoding.BASE64
    assert inline.result == base64.b64encode(body).decode()


def test_text_up_to_the_cap_is_kept_and_above_is_omitted() -> None:
    at_cap = b"a" * INLINE_RESULT_CAP_BYTES

    assert encode_inline(at_cap, "text/plain").result == at_cap.decode()
    over = encode_inline(at_cap + b"a", "text/plain")
    assert over.encoding == ResultEncoding.OMITTED_TOO_LARGE
    assert over.result is None


def test_binary_whose_base64_exceeds_the_cap_is_omitted() -> None:
    largest_kept = b"\xff" * (INLINE_RESULT_CAP_BYTES // 4 * 3)

    kept = encode_inline(largest_kept, "image/png")
    assert kept.encoding == ResultEncoding.BASE64
    assert kept.result is not None
    assert len(kept.result) == INLINE_RESULT_CAP_BYTES
    omitted = encode_inline(largest_kept + b"\xff", "image/png")
    assert omitted.encoding == ResultEncoding.OMITTED_BINARY
    assert omitted.result is None
