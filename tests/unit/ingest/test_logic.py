"""The pure decisions: which records to submit, content type, custom attributes, errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from lambdas.common.contract import CUSTOM_ATTRIBUTES_MAX_CHARS as CUSTOM_ATTRIBUTES_MAX_LENGTH
from lambdas.ingest.attributes import (
    CustomAttributesTooLongError,
    custom_attribute_pairs,
    decode_metadata_value,
    encode_custom_attributes,
    extension_map,
    resolve_content_type,
    xray_trace_id,
)
from lambdas.ingest.clients import SubmitErrorKind, classify_submit_error
from lambdas.ingest.events import (
    Ignored,
    IgnoreReason,
    S3EventNotification,
    key_selected,
    parse_notification,
    select_object,
)
from tests.unit.ingest.conftest import INPUT_BUCKET, make_config
from tests.unit.ingest.support import (
    client_error,
    decode_custom_attributes,
    notification,
    s3_record,
)


def selected(record: dict[str, Any], **config: Any) -> Any:
    parsed = parse_notification(notification(record))
    assert isinstance(parsed, S3EventNotification)
    return select_object(parsed.records[0], make_config(**config))


def test_an_object_in_the_input_bucket_is_selected() -> None:
    target = selected(s3_record(INPUT_BUCKET, "in/a b.json"))
    assert not isinstance(target, Ignored)
    assert target.key == "in/a b.json"


@pytest.mark.parametrize(
    ("record", "config", "reason"),
    [
        (s3_record("someone-elses", "a.json"), {}, IgnoreReason.FOREIGN_BUCKET),
        (s3_record(INPUT_BUCKET, "folder/", size=0), {}, IgnoreReason.FOLDER_MARKER),
        (s3_record(INPUT_BUCKET, "deep/er/", size=0), {}, IgnoreReason.FOLDER_MARKER),
        (
            s3_record(INPUT_BUCKET, "other/a.json"),
            {"key_prefixes": ["incoming/"]},
            IgnoreReason.KEY_FILTERED,
        ),
        (
            s3_record(INPUT_BUCKET, "incoming/a.txt"),
            {"key_prefixes": ["incoming/"], "key_suffixes": [".json"]},
            IgnoreReason.KEY_FILTERED,
        ),
        (
            s3_record(INPUT_BUCKET, "a.json", size=None, event_name="ObjectRemoved:Delete"),
            {},
            IgnoreReason.NOT_OBJECT_CREATED,
        ),
    ],
)
def test_records_the_function_leaves_alone(
    record: dict[str, Any], config: dict[str, Any], reason: IgnoreReason
) -> None:
    outcome = selected(record, **config)
    assert isinstance(outcome, Ignored)
    assert outcome.reason is reason
    assert outcome.detail


@pytest.mark.parametrize(
    ("key", "prefixes", "suffixes", "expected"),
    [
        ("a.json", [], [], True),
        ("incoming/a.json", ["incoming/"], [], True),
        ("incoming2/a.json", ["incoming/"], [], False),
        ("batch/a.json", ["incoming/", "batch/"], [], True),
        ("a.JSON", [], [".json"], False),  # case-sensitive, like S3's own filters
        ("incoming/a.csv", ["incoming/"], [".json", ".csv"], True),
        ("incoming/a.png", ["incoming/"], [".json", ".csv"], False),
    ],
)
def test_prefix_and_suffix_filters(
    key: str, prefixes: list[str], suffixes: list[str], expected: bool
) -> None:
    assert key_selected(key, prefixes, suffixes) is expected


@pytest.mark.parametrize(
    ("key", "own", "expected"),
    [
        ("a.json", "image/png", "image/png"),  # the object's own type wins
        ("a.json", "text/csv; charset=utf-8", "text/csv; charset=utf-8"),
        ("a.json", "binary/octet-stream", "application/json"),
        ("a.json", "application/octet-stream", "application/json"),
        ("a.json", "Application/Octet-Stream; charset=binary", "application/json"),
        ("a.json", "", "application/json"),
        ("a.json", None, "application/json"),
        ("A.JSONL", None, "application/jsonlines"),
        ("x/y.csv", None, "text/csv"),
        ("notes.txt", None, "text/plain"),
        ("photo.jpg", None, "image/jpeg"),
        ("photo.jpeg", None, "image/jpeg"),
        ("pic.png", None, "image/png"),
        ("clip.wav", None, "audio/wav"),
        ("song.mp3", None, "audio/mpeg"),
        ("table.parquet", None, "application/x-parquet"),
        ("array.npy", None, "application/x-npy"),
        ("no-extension", None, "application/octet-stream"),
        ("dir.with.dots/file", None, "application/octet-stream"),
        ("unknown.xyz", "binary/octet-stream", "application/octet-stream"),
    ],
)
def test_content_type_from_the_object_then_the_default_map_then_the_default(
    key: str, own: str | None, expected: str
) -> None:
    config = make_config()
    assert resolve_content_type(key, own, extension_map(config), config.default_content_type) == (
        expected
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("custom.bin", "application/x-custom"),  # an extension the defaults lack
        ("override.csv", "application/x-my-csv"),  # CONTENT_TYPE_MAP wins over a default
        ("still.json", "application/json"),  # the other defaults stay
        ("archive.tar.gz", "application/x-tar-gz"),  # the longest extension first
        ("plain.gz", "application/gzip"),
        ("unknown.xyz", "application/x-default"),  # DEFAULT_CONTENT_TYPE
    ],
)
def test_configured_extensions_merge_over_the_defaults(key: str, expected: str) -> None:
    config = make_config(
        content_type_map={
            "bin": "application/x-custom",
            ".CSV": "application/x-my-csv",
            "tar.gz": "application/x-tar-gz",
            "gz": "application/gzip",
        },
        default_content_type="application/x-default",
    )
    extensions = extension_map(config)
    assert resolve_content_type(key, None, extensions, config.default_content_type) == expected


def test_custom_attributes_are_static_then_metadata_then_trace_id() -> None:
    config = make_config(
        custom_attributes={"team": "vision", "tier": "gold"},
        metadata_attributes=["customer", "Priority", "absent"],
    )
    metadata = {"priority": "high", "customer": "acme", "other": "not copied"}
    pairs = custom_attribute_pairs(config, metadata, "1-abc-def")
    assert pairs == [
        ("team", "vision"),
        ("tier", "gold"),
        ("customer", "acme"),
        ("priority", "high"),
        ("trace_id", "1-abc-def"),
    ]
    assert encode_custom_attributes(pairs) == (
        "team=vision,tier=gold,customer=acme,priority=high,trace_id=1-abc-def"
    )


def test_characters_outside_visible_ascii_and_separators_are_percent_encoded() -> None:
    pairs = [("note", "a b,c=d%e"), ("naïve key", "日本"), ("tab", "\t"), ("plus", "+/;:")]
    encoded = encode_custom_attributes(pairs)
    assert encoded == (
        "note=a%20b%2Cc%3Dd%25e,na%C3%AFve%20key=%E6%97%A5%E6%9C%AC,tab=%09,plus=+/;:"
    )
    assert all(0x21 <= ord(character) <= 0x7E for character in encoded)
    assert decode_custom_attributes(encoded) == pairs


def test_custom_attributes_at_the_limit_pass_and_one_more_fails() -> None:
    prefix = "trace_id="
    exact = [("trace_id", "x" * (CUSTOM_ATTRIBUTES_MAX_LENGTH - len(prefix)))]
    assert len(encode_custom_attributes(exact)) == 1024
    over = [("trace_id", "x" * (CUSTOM_ATTRIBUTES_MAX_LENGTH - len(prefix) + 1))]
    with pytest.raises(CustomAttributesTooLongError) as raised:
        encode_custom_attributes(over)
    assert raised.value.length == 1025
    assert "1025 characters" in str(raised.value)
    assert "at most 1024" in str(raised.value)


def test_encoding_growth_counts_towards_the_limit() -> None:
    # 300 characters of "é" become 1800 encoded characters: rejected, never truncated
    with pytest.raises(CustomAttributesTooLongError, match="1805 characters"):
        encode_custom_attributes([("name", "é" * 300)])


def test_rfc2047_metadata_values_are_decoded_before_encoding() -> None:
    assert decode_metadata_value("=?UTF-8?B?w6l0w6k=?=") == "été"
    assert decode_metadata_value("=?utf-8?q?caf=C3=A9?=") == "café"
    assert decode_metadata_value("plain value") == "plain value"
    assert decode_metadata_value("=?bogus") == "=?bogus"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
         "1-5759e988-bd862e3fe1be46a994272793"),
        ("Parent=53995c3f42cd8ad8; Root=1-aa-bb", "1-aa-bb"),
        ("Parent=53995c3f42cd8ad8", None),
        ("", None),
        (None, None),
    ],
)  # fmt: skip
def test_the_trace_id_is_the_root_of_the_xray_header(
    header: str | None, expected: str | None
) -> None:
    assert xray_trace_id(header) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("ThrottlingException", 429), SubmitErrorKind.RETRY),
        (client_error("ModelNotReadyException", 429), SubmitErrorKind.RETRY),
        (client_error("InternalFailure", 500), SubmitErrorKind.RETRY),
        (client_error("ServiceUnavailable", 503), SubmitErrorKind.RETRY),
        (client_error("InternalDependencyException", 530), SubmitErrorKind.RETRY),
        (client_error("SomethingNew", 502), SubmitErrorKind.RETRY),
        (client_error("ValidationError", 400), SubmitErrorKind.REJECT),
        (client_error("AccessDeniedException", 403), None),
        (client_error("UnrecognizedClientException", 403), None),
        (EndpointConnectionError(endpoint_url="https://runtime.sagemaker"), SubmitErrorKind.RETRY),
        (ReadTimeoutError(endpoint_url="https://runtime.sagemaker"), SubmitErrorKind.RETRY),
        (ConnectionClosedError(endpoint_url="https://runtime.sagemaker"), SubmitErrorKind.RETRY),
        (NoCredentialsError(), SubmitErrorKind.RETRY),
        (RuntimeError("a bug"), None),
    ],
)
def test_submit_errors_are_classified(error: Exception, expected: SubmitErrorKind | None) -> None:
    assert classify_submit_error(error) is expected
