"""Results-table items: DynamoDB JSON in and out, and the UpdateExpressions the store writes.

The attribute-value encoding is written here rather than taken from boto3's
``TypeSerializer``/``TypeDeserializer``, because importing ``boto3.dynamodb.types`` runs boto3's
package ``__init__`` (its session, resource factory and s3transfer), about 17 ms of every cold
start of functions that otherwise use plain botocore clients (bench/RESULTS.md). It follows
boto3's rules (numbers within DynamoDB's 38 digits, exactly, as ``Decimal`` when read; floats
refused; binary as ``bytes``), and tests/unit/test_items.py holds it to boto3's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import (
    Clamped,
    Context,
    Decimal,
    Inexact,
    Overflow,
    Rounded,
    Underflow,
)
from typing import TYPE_CHECKING, Any

from lambdas.common.records import InferenceRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

# DynamoDB's number type as boto3 defines it (38 digits of precision): a number that would be
# rounded, clamped, overflow or underflow is an error rather than a silently different number.
NUMBERS = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)

# Fields that describe the input: whoever writes first sets them, nobody overwrites them.
DESCRIPTIVE_FIELDS = (
    "input_location",
    "input_bucket",
    "input_key",
    "input_version",
    "input_size",
    "content_type",
    "accept",
    "custom_attributes",
    "endpoint_name",
    "created_at",
    "submitted_at",
    "output_location",
    "failure_location",
)
# Fields that describe an outcome: the newest terminal notification defines all of them.
OUTCOME_FIELDS = (
    "completed_at",
    "received_at",
    "latency_ms",
    "response_content_type",
    "result",
    "result_encoding",
    "failure_reason",
    "failure_stage",
)


def encode(value: Any) -> AttributeValueTypeDef:
    """``"a"`` -> ``{"S": "a"}``, ``3`` -> ``{"N": "3"}``, ``True`` -> ``{"BOOL": True}``;
    ``None``, bytes, mappings, lists and tuples as DynamoDB has them."""
    encoded: AttributeValueTypeDef
    if value is None:
        encoded = {"NULL": True}
    elif isinstance(value, bool):
        encoded = {"BOOL": value}
    elif isinstance(value, int | Decimal):
        encoded = {"N": _number(value)}
    elif isinstance(value, str):
        encoded = {"S": value}
    elif isinstance(value, bytes | bytearray):
        encoded = {"B": bytes(value)}
    elif isinstance(value, Mapping):
        encoded = {"M": {str(name): encode(item) for name, item in value.items()}}
    elif isinstance(value, list | tuple):
        encoded = {"L": [encode(item) for item in value]}
    else:
        raise TypeError(f"no DynamoDB type for {type(value).__name__} (floats: use Decimal)")
    return encoded


def _number(value: int | Decimal) -> str:
    number = NUMBERS.create_decimal(value)
    if not number.is_finite():
        raise TypeError(f"DynamoDB has no number {value}")
    return str(number)


def decode(value: Mapping[str, Any]) -> Any:
    """One attribute value as Python: numbers as ``Decimal``, sets as ``set``."""
    [(kind, data)] = value.items()
    if kind in ("S", "BOOL", "B"):
        return bytes(data) if kind == "B" else data
    if kind == "N":
        return NUMBERS.create_decimal(data)
    if kind == "NULL":
        return None
    if kind == "M":
        return {name: decode(item) for name, item in data.items()}
    if kind == "L":
        return [decode(item) for item in data]
    if kind in ("SS", "NS", "BS"):
        return {decode({kind[0]: member}) for member in data}
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's attributes as Python values (numbers as ``Decimal``: the record model makes
    its integer fields ``int``)."""
    return {name: decode(value) for name, value in item.items()}


def record_from_item(item: dict[str, Any]) -> InferenceRecord:
    return InferenceRecord.model_validate(decode_item(item))


class UpdateBuilder:
    """Builds one UpdateExpression with placeholder names and values."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValueTypeDef] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, label: str, value: Any) -> str:
        placeholder = f":{label}"
        self.values[placeholder] = encode(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        self.sets.append(f"{self.name(attribute)} = {self.value(attribute, value)}")

    def set_if_absent(self, attribute: str, value: Any) -> None:
        name = self.name(attribute)
        self.sets.append(f"{name} = if_not_exists({name}, {self.value(attribute, value)})")

    def remove(self, attribute: str) -> None:
        self.removes.append(self.name(attribute))

    def expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        return " ".join(parts)
