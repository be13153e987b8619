"""moto's cancelled ``TransactWriteItems``, made to leave a table's stream as AWS does.

On AWS a cancelled transaction writes nothing ("TransactWriteItems is ... an all-or-nothing
operation", DynamoDB API reference, TransactWriteItems), so nothing of it reaches the table's
stream, and a stream's readers go on reading the same shard. moto 5.2.5 (``dynamodb/models/
__init__.py``, ``transact_write_items``) deep-copies each table before the transaction and, on
cancellation, puts the *copy* in the table's place: the copy's stream shard is a new object,
so every open shard iterator (moto's ``dynamodbstreams`` keeps a reference to the old shard)
stops seeing the table's later writes. A reader such as the local jobs pipe
(asyncinfer/local/aws/pipes.py) then misses every record after the first cancelled transaction (a
duplicate outcome is one: its condition fails by design).

``keep_streams_on_rollback`` wraps the method: after a cancellation, each restored table gets
back its original stream shard, with the records the cancelled transaction appended dropped.
"""

from __future__ import annotations

from typing import Any


def keep_streams_on_rollback() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {}
        for item in transact_items:
            _, operation = next(iter(item.items()))
            table = self.tables.get(operation.get("TableName"))
            if table is not None and table.stream_shard is not None:
                shards[table.name] = (table.stream_shard, len(table.stream_shard.items))
        try:
            original(self, transact_items)
        except Exception:
            for name, (shard, length) in shards.items():
                restored = self.tables.get(name)
                if restored is not None and restored.stream_shard is not shard:
                    del shard.items[length:]
                    shard.table = restored
                    restored.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
