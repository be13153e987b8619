"""Results-table items: DynamoDB JSON in and out, and the UpdateExpressions the store writes.

DynamoDB's attribute-value encoding is boto3's own (``TypeSerializer``/``TypeDeserializer``).
Importing ``boto3.dynamodb.types`` runs boto3's package ``__init__`` (its session, resource
factory and s3transfer; about 45 ms on top of botocore, ``python -X importtime``), which no
handler needs at import: the functions use plain botocore clients. So the codec is loaded when
a ``RecordStore`` is built (a function's first invocation, before the ingest function's
threads use it), never on the handlers' import path.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from lambdas.common.records import InferenceRecord

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

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


@cache
def codec() -> tuple[TypeSerializer, TypeDeserializer]:
    """boto3's DynamoDB JSON encoder and decoder, loaded once (see the module's docstring)."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def encode(value: Any) -> AttributeValueTypeDef:
    """``"a"`` -> ``{"S": "a"}``, ``3`` -> ``{"N": "3"}``, ``True`` -> ``{"BOOL": True}``."""
    encoded: AttributeValueTypeDef = codec()[0].serialize(value)
    return encoded


def decode_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item's attributes as Python values (numbers as ``Decimal``: the record model makes
    its integer fields ``int``)."""
    deserializer = codec()[1]
    return {name: deserializer.deserialize(value) for name, value in item.items()}


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
