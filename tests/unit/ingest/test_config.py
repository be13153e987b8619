"""The environment is validated once, and a bad value names its variable."""

from __future__ import annotations

import pytest

from lambdas.common.contract import ONE_GIB
from lambdas.common.environment import ConfigError
from lambdas.ingest.config import IngestConfig

REQUIRED = {"TABLE_NAME": "results", "ENDPOINT_NAME": "ep", "INPUT_BUCKET": "in"}


def test_defaults_match_the_documented_contract() -> None:
    config = IngestConfig.from_environ(REQUIRED)
    assert config.table_name == "results"
    assert config.endpoint_name == "ep"
    assert config.input_bucket == "in"
    assert config.key_prefixes == ()
    assert config.key_suffixes == ()
    assert config.accept == "application/json"
    assert config.default_content_type == "application/octet-stream"
    assert config.content_type_map == {}
    assert config.custom_attributes == {}
    assert config.metadata_attributes == ()
    assert config.invocation_timeout_seconds == 900
    assert config.request_ttl_seconds == 21600
    assert config.max_input_bytes == ONE_GIB
    assert config.submit_concurrency == 10
    assert config.retention_days == 90


def test_every_variable_is_read() -> None:
    config = IngestConfig.from_environ(
        REQUIRED
        | {
            "KEY_PREFIXES": '["incoming/", "batch/"]',
            "KEY_SUFFIXES": '[".json"]',
            "ACCEPT": "text/csv",
            "DEFAULT_CONTENT_TYPE": "text/plain",
            "CONTENT_TYPE_MAP": '{".JSONL": "application/x-ndjson", "bin": "application/x-bin"}',
            "CUSTOM_ATTRIBUTES": '{"team": "vision", "tier": "gold"}',
            "METADATA_ATTRIBUTES": '["X-Amz-Meta-Customer", "priority"]',
            "INVOCATION_TIMEOUT_SECONDS": "3600",
            "REQUEST_TTL_SECONDS": "60",
            "MAX_INPUT_BYTES": "1000",
            "SUBMIT_CONCURRENCY": "4",
            "RETENTION_DAYS": "0",
        }
    )
    assert config.key_prefixes == ("incoming/", "batch/")
    assert config.key_suffixes == (".json",)
    assert config.accept == "text/csv"
    assert config.default_content_type == "text/plain"
    assert config.content_type_map == {"jsonl": "application/x-ndjson", "bin": "application/x-bin"}
    assert list(config.custom_attributes.items()) == [("team", "vision"), ("tier", "gold")]
    assert config.metadata_attributes == ("customer", "priority")
    assert config.invocation_timeout_seconds == 3600
    assert config.request_ttl_seconds == 60
    assert config.max_input_bytes == 1000
    assert config.submit_concurrency == 4
    assert config.retention_days == 0


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("INVOCATION_TIMEOUT_SECONDS", "0", "greater than or equal to 1"),
        ("INVOCATION_TIMEOUT_SECONDS", "3601", "less than or equal to 3600"),
        ("REQUEST_TTL_SECONDS", "59", "greater than or equal to 60"),
        ("REQUEST_TTL_SECONDS", "21601", "less than or equal to 21600"),
        ("INVOCATION_TIMEOUT_SECONDS", "fifteen", "valid integer"),
        ("MAX_INPUT_BYTES", str(ONE_GIB + 1), "less than or equal to"),
        ("SUBMIT_CONCURRENCY", "0", "greater than or equal to 1"),
        ("RETENTION_DAYS", "-1", "greater than or equal to 0"),
        ("KEY_PREFIXES", "incoming/", "not valid JSON"),
        ("KEY_PREFIXES", '{"a": 1}', "must be a JSON list"),
        ("KEY_SUFFIXES", "[1]", "valid string"),
        ("CONTENT_TYPE_MAP", '["json"]', "must be a JSON object"),
        ("CUSTOM_ATTRIBUTES", '{"team": 7}', "valid string"),
        ("METADATA_ATTRIBUTES", '[""]', "at least 1 character"),
        ("ACCEPT", "", "at least 1 character"),
    ],
)
def test_invalid_values_name_their_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        IngestConfig.from_environ(REQUIRED | {variable: value})
    message = str(raised.value)
    assert message.startswith("invalid ingest configuration: ")
    assert variable in message
    assert expected in message


def test_missing_required_variables_are_all_named() -> None:
    with pytest.raises(ConfigError) as raised:
        IngestConfig.from_environ({"TABLE_NAME": "results"})
    message = str(raised.value)
    assert "ENDPOINT_NAME: Field required (not set)" in message
    assert "INPUT_BUCKET: Field required (not set)" in message


def test_the_trace_id_attribute_is_reserved() -> None:
    with pytest.raises(ConfigError, match="CUSTOM_ATTRIBUTES: 'trace_id' is set by the function"):
        IngestConfig.from_environ(REQUIRED | {"CUSTOM_ATTRIBUTES": '{"trace_id": "x"}'})
    with pytest.raises(ConfigError, match="METADATA_ATTRIBUTES: 'trace_id'"):
        IngestConfig.from_environ(REQUIRED | {"METADATA_ATTRIBUTES": '["trace_id"]'})


def test_an_attribute_cannot_be_both_static_and_from_metadata() -> None:
    with pytest.raises(ConfigError, match=r"METADATA_ATTRIBUTES: \['team'\] are also keys"):
        IngestConfig.from_environ(
            REQUIRED | {"CUSTOM_ATTRIBUTES": '{"team": "a"}', "METADATA_ATTRIBUTES": '["team"]'}
        )
