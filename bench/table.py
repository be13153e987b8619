"""The results table as the stack declares it (``stacks/storage.py``), for the benchmarks and
tests that fill one directly: its key, and the indexes asked for, from the contract's
``INDEX_KEYS``."""

from __future__ import annotations

from typing import Any

from lambdas.common.contract import INDEX_KEYS, PARTITION_KEY


def create_results_table(client: Any, table_name: str, index_names: tuple[str, ...]) -> None:
    """On demand, like the stack's; ``client`` is a botocore DynamoDB client."""
    indexes = [INDEX_KEYS[name] for name in index_names]
    attributes = dict.fromkeys([PARTITION_KEY, *(key for i in indexes for key in i[:2])])
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in attributes],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": partition, "KeyType": "HASH"},
                    {"AttributeName": sort, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": projection},
            }
            for name, (partition, sort, projection) in zip(index_names, indexes, strict=True)
        ],
    )
