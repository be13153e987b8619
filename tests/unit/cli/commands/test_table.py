"""`table wait` (between two migration steps) and what a read says when it meets an index that
is still backfilling."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from asyncinfer.cli.access.indexes import IndexState
from asyncinfer.cli.access.table import ResultsTable
from asyncinfer.cli.commands.table import wait_until_ready
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.contract import INPUT_KEYS_INDEX, STATUS_SHARD_INDEX
from tests.unit.cli.conftest import Invoke, Pipeline

BACKFILLING_ERROR = {
    "Error": {
        "Code": "ValidationException",
        "Message": f"Cannot read from backfilling global secondary index: {INPUT_KEYS_INDEX}",
    }
}


class BackfillingTable:
    """DynamoDB while ``by_input_keys`` backfills: DescribeTable and Query as AWS answers."""

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {
            "Table": {
                "TableName": TableName,
                "ItemCount": 200,
                "GlobalSecondaryIndexes": [
                    {"IndexName": STATUS_SHARD_INDEX, "IndexStatus": "ACTIVE", "ItemCount": 200},
                    {
                        "IndexName": INPUT_KEYS_INDEX,
                        "IndexStatus": "CREATING",
                        "Backfilling": True,
                        "ItemCount": 50,
                    },
                ],
            }
        }

    def query(self, **request: Any) -> dict[str, Any]:
        raise ClientError(BACKFILLING_ERROR, "Query")  # type: ignore[arg-type]


def test_a_read_of_a_backfilling_index_says_so_and_what_to_do() -> None:
    table = ResultsTable(
        BackfillingTable(),  # type: ignore[arg-type]
        "results",
        input_location_index=INPUT_KEYS_INDEX,
        status_index=STATUS_SHARD_INDEX,
    )
    with pytest.raises(CliError) as refused:
        table.for_input("s3://input-bucket/a.json")
    assert refused.value.format_message() == (
        f"index {INPUT_KEYS_INDEX} is still backfilling (25%); try again when it is ACTIVE "
        "(`asyncinfer table wait` waits for it)"
    )
    waiting = [state for state in table.index_states() if not state.ready]
    assert [state.describe() for state in waiting] == [
        f"index {INPUT_KEYS_INDEX} is backfilling (25%)"
    ]


def state(ready: bool) -> IndexState:
    return IndexState(
        INPUT_KEYS_INDEX, "ACTIVE" if ready else "CREATING", not ready, None if ready else 60
    )


def test_wait_polls_until_every_index_is_active() -> None:
    answers = iter([[state(False)], [state(False)], [state(True)]])
    reports: list[str] = []
    sleeps: list[float] = []
    ready = wait_until_ready(
        lambda: next(answers),
        reports.append,
        timeout_seconds=600,
        interval_seconds=30,
        sleep=sleeps.append,
        clock=lambda: 0.0,
    )
    assert [s.name for s in ready] == [INPUT_KEYS_INDEX]
    assert sleeps == [30, 30]
    assert reports == [f"waiting: index {INPUT_KEYS_INDEX} is backfilling (60%)"] * 2


def test_wait_gives_up_at_the_timeout() -> None:
    times = iter([0.0, 100.0])
    with pytest.raises(CliError) as gave_up:
        wait_until_ready(
            lambda: [state(False)],
            lambda _: None,
            timeout_seconds=50,
            interval_seconds=30,
            sleep=lambda _: None,
            clock=lambda: next(times),
        )
    assert gave_up.value.exit_code == ExitCode.TIMED_OUT
    assert "backfilling (60%)" in gave_up.value.format_message()


def test_table_wait_on_a_table_whose_indexes_are_active(cli: Invoke, pipeline: Pipeline) -> None:
    result = cli("table", "wait", "--timeout", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("every index is ACTIVE: ")
