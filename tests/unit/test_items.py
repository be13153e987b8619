"""DynamoDB JSON in and out (lambdas/common/items.py) gives what boto3's TypeSerializer and
TypeDeserializer give, value for value, and refuses what they refuse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from lambdas.common.items import decode, decode_item, encode, record_from_item

VALUES: list[Any] = [
    "",
    "a",
    "é ü 東京 🙂",
    0,
    -7,
    2**63,
    10**37,
    Decimal("1.50"),
    Decimal("-0.000001"),
    Decimal("1E+100"),
    True,
    False,
    None,
    b"",
    b"\x00\xff",
    {"a": 1, "b": ["x", None, {"c": False}]},
    [],
    ["s", 1, Decimal("2.5"), b"z", {"m": {}}],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_value_is_written_as_boto3_writes_it_and_read_back(value: Any) -> None:
    encoded = encode(value)
    assert encoded == TypeSerializer().serialize(value)
    assert decode(encoded) == TypeDeserializer().deserialize(encoded)
    assert decode(encoded) == value


def test_a_tuple_is_a_list() -> None:
    assert encode(("a", 1)) == TypeSerializer().serialize(["a", 1])


@pytest.mark.parametrize(
    "value",
    [
        {"SS": ["a", "b"]},
        {"NS": ["1", "2.5"]},
        {"BS": [b"a", b"b"]},
        {"N": "12345678901234567890123456789012345678"},
    ],
    ids=repr,
)
def test_sets_and_long_numbers_written_by_others_are_read_as_boto3_reads_them(
    value: dict[str, Any],
) -> None:
    assert decode(value) == TypeDeserializer().deserialize(value)


@pytest.mark.parametrize(
    "value",
    [1.5, float("nan"), Decimal("Infinity"), Decimal("NaN"), 10**38 + 1, Decimal("1E+200")],
    ids=repr,
)
def test_what_dynamodb_cannot_store_exactly_is_refused_like_boto3_refuses_it(value: Any) -> None:
    with pytest.raises((TypeError, ArithmeticError)) as boto3_refusal:
        TypeSerializer().serialize(value)
    with pytest.raises(type(boto3_refusal.value)):
        encode(value)


def test_an_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="no DynamoDB type for object"):
        encode(object())
    with pytest.raises(ValueError, match="unknown DynamoDB attribute type 'X'"):
        decode({"X": "1"})


def test_a_stored_record_reads_back_with_its_numbers_as_integers() -> None:
    item = {
        "inference_id": {"S": "a" * 64},
        "status": {"S": "COMPLETED"},
        "input_size": {"N": "1048576"},
        "latency_ms": {"N": "3125"},
        "added_by_an_operator": {"M": {"tags": {"SS": ["x"]}}},
    }
    assert decode_item(item)["input_size"] == Decimal(1048576)
    record = record_from_item(item)
    assert (record.input_size, record.latency_ms) == (1048576, 3125)
    assert isinstance(record.input_size, int)
