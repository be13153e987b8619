"""The results table's global secondary indexes: their state, and a Query that meets one still
backfilling.

DynamoDB builds a new index in the background (``IndexStatus`` ``CREATING``, ``Backfilling``
true) and answers a Query on it with ``ValidationException: Cannot read from backfilling global
secondary index`` until it is ``ACTIVE`` (DynamoDB developer guide, "Adding a global secondary
index to an existing table"). CloudFormation reports the stack update complete before that, so
a migration step (docs/operations.md, "Migrating the results table") waits for every index to be
``ACTIVE`` (``asyncinfer table wait``), and a read meeting a backfilling index says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.cli.errors import CliError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

BACKFILLING = "Cannot read from backfilling global secondary index"
ACTIVE = "ACTIVE"


@dataclass(frozen=True)
class IndexState:
    name: str
    status: str  # CREATING, UPDATING, DELETING, ACTIVE
    backfilling: bool
    # the share of the table's items already in the index, when DynamoDB's counts (updated
    # about every six hours) allow an estimate
    progress_percent: int | None

    @property
    def ready(self) -> bool:
        return self.status == ACTIVE and not self.backfilling

    def describe(self) -> str:
        progress = f" ({self.progress_percent}%)" if self.progress_percent is not None else ""
        state = "backfilling" if self.backfilling else self.status
        return f"index {self.name} is {state}{progress}"


def index_states(client: DynamoDBClient, table: str) -> list[IndexState]:
    """Every global secondary index of the table, as DescribeTable reports it."""
    description = client.describe_table(TableName=table)["Table"]
    table_items = int(description.get("ItemCount", 0))
    states = []
    for index in description.get("GlobalSecondaryIndexes", []):
        items = int(index.get("ItemCount", 0))
        progress = min(100, items * 100 // table_items) if table_items and items else None
        states.append(
            IndexState(
                name=index["IndexName"],
                status=index.get("IndexStatus", ACTIVE),
                backfilling=bool(index.get("Backfilling", False)),
                progress_percent=progress,
            )
        )
    return states


def query(client: DynamoDBClient, request: QueryInputTypeDef) -> Mapping[str, Any]:
    """``client.query``; a backfilling index becomes a ``CliError`` that says what to do."""
    try:
        return client.query(**request)
    except ClientError as error:
        if BACKFILLING not in str(error):
            raise
        index = str(request.get("IndexName", "?"))
        raise CliError(
            f"{_backfilling(client, request['TableName'], index)}; try again when it is "
            "ACTIVE (`asyncinfer table wait` waits for it)"
        ) from error


def _backfilling(client: DynamoDBClient, table: str, index: str) -> str:
    try:
        states = {state.name: state for state in index_states(client, table)}
    except (ClientError, BotoCoreError):  # the message stands without the progress
        states = {}
    state = states.get(index)
    progress = state.progress_percent if state is not None else None
    return f"index {index} is still backfilling" + (
        f" ({progress}%)" if progress is not None else ""
    )
