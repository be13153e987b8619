"""The summary line is an observation: a record that goes missing shows as ``lost``, a second
invocation as a duplicate, a dead letter as ``dlq_left``, even when the test fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncinfer.local.aws.iam import admin_session
from tests.reliability.support import (
    IRIS_ROWS,
    Summary,
    iris_csv,
    running_pipeline,
    summarized,
    wait_terminal,
)

pytestmark = pytest.mark.reliability


def test_a_removed_record_is_counted_lost_even_when_the_test_fails(tmp_path: Path) -> None:
    summary = Summary()
    with running_pipeline(tmp_path) as harness:
        ids = [harness.put(f"summary/{n}.csv", iris_csv(IRIS_ROWS[n])) for n in range(3)]
        wait_terminal(harness, ids, timeout=90)
        harness.dynamodb.delete_item(TableName=harness.table, Key={"inference_id": {"S": ids[0]}})
        # A second invocation of the same id, as a duplicate delivery would make it.
        session = admin_session(harness.spec.region)
        runtime = session.client(
            "sagemaker-runtime", endpoint_url=harness.spec.runtime_endpoint_url
        )
        record = harness.store.get(ids[1])
        assert record is not None
        runtime.invoke_endpoint_async(
            EndpointName=harness.spec.endpoint.name,
            InputLocation=record.input_location,
            InferenceId=ids[1],
        )
        dead_letters = harness.spec.outputs["IngestDeadLetterQueueUrl"]
        harness.sqs.send_message(QueueUrl=dead_letters, MessageBody="{}")

        with (
            pytest.raises(pytest.fail.Exception, match="not terminal"),
            summarized(harness, ids, faults_injected=lambda: 7, summary=summary),
        ):
            wait_terminal(harness, ids, timeout=1)

    assert (summary.files, summary.terminal, summary.lost) == (3, 2, 1)
    assert summary.dlq_left == 1
    assert summary.duplicate_invocations == 1
    assert summary.faults_injected == 7
    assert "files=3 terminal=2 lost=1 duplicate_invocations=1 dlq_left=1" in summary.line()
