"""Windows of unavailability: the endpoint down, then the results table refusing writes.

Nothing is lost either way: the backlog waits on its queue (or in a dead-letter queue, from
which the CLI's ``redrive`` brings it back) and drains once the window closes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncinfer.local.faults import DynamoDBFaultProxy
from lambdas.common.records import TERMINAL_STATUSES
from tests.reliability.support import (
    IRIS_ROWS,
    Harness,
    iris_csv,
    running_pipeline,
    summarized,
    wait_quiet,
    wait_terminal,
    wait_until,
)

pytestmark = pytest.mark.reliability

FILES = 20


def upload(harness: Harness, prefix: str) -> list[str]:
    return [
        harness.put(f"{prefix}/{number:03d}.csv", iris_csv(IRIS_ROWS[number % len(IRIS_ROWS)]))
        for number in range(FILES)
    ]


def statuses(harness: Harness, inference_ids: list[str]) -> set[str | None]:
    return {getattr(record, "status", None) for record in harness.records(inference_ids).values()}


def finish(harness: Harness, inference_ids: list[str]) -> None:
    """Every file COMPLETED once, no dead letter left (the summary counts them too, in
    ``summarized``, whether these assertions pass or not)."""
    records = wait_terminal(harness, inference_ids, timeout=120)
    wait_quiet(harness, timeout=60)
    assert {record.status for record in records.values()} == {"COMPLETED"}
    stats = harness.runtime_stats
    assert stats["duplicate_inference_ids"] == []
    assert all(stats["accepted_per_inference_id"][i] == 1 for i in inference_ids)
    left = harness.dead_letter_depths()
    assert sum(left.values()) == 0, left


@pytest.mark.parametrize(
    ("max_receive_count", "down_seconds"),
    [
        pytest.param("5", 25, id="backlog-waits-on-the-queue"),
        pytest.param("1", 8, id="backlog-dead-lettered-then-redriven"),
    ],
)
def test_an_endpoint_outage_delays_the_backlog_and_loses_nothing(
    tmp_path: Path, max_receive_count: str, down_seconds: int
) -> None:
    with running_pipeline(tmp_path, context={"max_receive_count": max_receive_count}) as harness:
        inference_ids: list[str] = []
        with summarized(harness, inference_ids, faults_injected=harness.runtime_faults):
            assert harness.pipeline.runtime is not None
            harness.pipeline.runtime.update_faults(
                {"down_for_seconds": down_seconds, "down_error": "ModelNotReadyException"}
            )
            down_since = time.monotonic()
            inference_ids.extend(upload(harness, "outage"))
            # While the endpoint is down nothing is accepted and nothing finishes.
            wait_until(
                lambda: harness.runtime_stats["rejected"].get("ModelNotReadyException", 0) >= FILES,
                timeout=down_seconds,
                what="the ingest function to meet the outage",
            )
            assert harness.runtime_stats["accepted"] == 0
            assert not statuses(harness, inference_ids) & TERMINAL_STATUSES
            if max_receive_count == "1":
                ingest_dlq = harness.spec.outputs["IngestDeadLetterQueueUrl"]
                wait_until(
                    lambda: harness.queue_depth(ingest_dlq) > 0,
                    timeout=30,
                    what="failed batches to reach the ingest dead-letter queue",
                )
                remaining = down_seconds - (time.monotonic() - down_since)
                time.sleep(max(remaining, 0) + 0.5)
                # Nothing drains on its own from a dead-letter queue: the user redrives.
                wait_until(
                    lambda: harness.queue_depth(harness.spec.ingest.queue_url) == 0,
                    timeout=60,
                    what="the ingest queue to hand everything over",
                )
                assert harness.redrive()[ingest_dlq] > 0
                # A redriven message can meet its failed attempt's claim while the lease still
                # runs (the invocation's remaining time + 10 s) and, with one delivery allowed,
                # land in the dead-letter queue again: the user redrives until it stays empty.
                redrive_until = time.monotonic() + 180
                while time.monotonic() < redrive_until and not (
                    statuses(harness, inference_ids) <= TERMINAL_STATUSES
                ):
                    ingest_queue = harness.spec.ingest.queue_url
                    if harness.queue_depth(ingest_dlq) and not harness.queue_depth(ingest_queue):
                        harness.redrive()
                    time.sleep(2)
            finish(harness, inference_ids)


@pytest.fixture
def table_proxy() -> Iterator[DynamoDBFaultProxy]:
    with DynamoDBFaultProxy() as proxy:
        yield proxy


def test_a_table_refusing_writes_delays_results_until_it_recovers(
    tmp_path: Path, table_proxy: DynamoDBFaultProxy
) -> None:
    with running_pipeline(
        tmp_path,
        function_environment={"results": {"AWS_ENDPOINT_URL_DYNAMODB": table_proxy.url}},
    ) as harness:
        inference_ids: list[str] = []

        def faults() -> int:
            rejected: int = table_proxy.stats()["rejected"]
            return rejected + harness.runtime_faults()

        with summarized(harness, inference_ids, faults_injected=faults):
            table_proxy.connect(harness.spec.aws_endpoint_url)
            table_proxy.reject_writes(True)
            inference_ids.extend(upload(harness, "throttled"))
            results_dlq = harness.spec.outputs["ResultsFailureQueueUrl"]
            # The ingest function writes directly: SUBMITTED. The results function cannot write:
            # Lambda's async retries run out and the notifications land in its failure queue.
            wait_until(
                lambda: harness.queue_depth(results_dlq) >= 1,
                timeout=90,
                what="a notification to exhaust its retries into the results failure queue",
            )
            assert statuses(harness, inference_ids) <= {"PENDING", "SUBMITTED"}
            assert harness.runner_total("failed") > 0
            table_proxy.reject_writes(False)
            # Deliveries still in their retries land on their own; what reached the failure
            # queue needs the user's redrive.
            wait_until(
                lambda: all(
                    harness.queue_depth(source.delivery_queue_url) == 0
                    for source in harness.spec.results
                ),
                timeout=90,
                what="the notifications in retry to finish",
            )
            assert harness.redrive()[results_dlq] > 0
            assert table_proxy.stats()["rejected"] > 0
            finish(harness, inference_ids)
