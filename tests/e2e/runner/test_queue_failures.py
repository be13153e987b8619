"""What the local event runner does with SQS batches that fail, against a real moto server with
real worker processes: partial batch responses read as Lambda reads them, redelivery, the
dead-letter move, and handlers that raise, crash, time out, are killed or cannot be loaded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from asyncinfer.local.lambda_runner.event_shapes import failed_item_ids
from tests.e2e.runner.support import (
    Spy,
    create_queue,
    drain,
    function,
    messages_left,
    queue_source,
    redrive_policy,
    running,
    send,
    wait_for,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, {"a", "b"}),
        ({"batchItemFailures": [{"messageId": "a"}]}, {"a", "b"}),
        ({"batchItemFailures": "a"}, {"a", "b"}),
        ("ok", {"a", "b"}),
    ],
)
def test_partial_batch_responses_are_read_as_lambda_reads_them(
    response: object, failed: set[str]
) -> None:
    assert failed_item_ids(response, ["a", "b"]) == failed


def test_partial_batch_failure_deletes_only_successes_and_dead_letters_the_rest(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    dead_letter_queue = create_queue(sqs)
    queue_url = create_queue(
        sqs, visibility_timeout=1, redrive_policy=redrive_policy(sqs, dead_letter_queue, 2)
    )
    send(sqs, queue_url, {"id": "ok-1", "action": "ok"})
    send(sqs, queue_url, {"id": "ok-2", "action": "ok"})
    send(sqs, queue_url, {"id": "fails-once", "action": "fail", "until": 2})
    send(
        sqs,
        queue_url,
        {"id": "always-fails", "action": "fail"},
        {"origin": {"DataType": "String", "StringValue": "test"}},
    )
    source = queue_source(
        queue_url,
        function(spy),
        window=0,
        concurrency=1,
        visibility_timeout=1,
        dead_letter_queue_url=dead_letter_queue,
        max_receive_count=2,
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the source queue to empty")
    stats = runner.stats()[queue_url]

    assert spy.sqs_deliveries() == {
        "ok-1": [1],
        "ok-2": [1],
        "fails-once": [1, 2],
        "always-fails": [1, 2],
    }
    dead_letters = drain(sqs, dead_letter_queue)
    assert [json.loads(m["Body"])["id"] for m in dead_letters] == ["always-fails"]
    assert dead_letters[0]["MessageAttributes"]["origin"]["StringValue"] == "test"
    assert (stats.succeeded, stats.failed, stats.retried, stats.moved_to_dlq) == (3, 3, 2, 1)


def test_a_message_received_too_often_is_dead_lettered_without_an_invocation(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    dead_letter_queue = create_queue(sqs)
    queue_url = create_queue(sqs, redrive_policy=redrive_policy(sqs, dead_letter_queue, 2))
    send(sqs, queue_url, {"id": "worn-out", "action": "ok"})
    for _ in range(2):  # received twice, never deleted (a consumer that went away)
        sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)
    source = queue_source(
        queue_url, function(spy), dead_letter_queue_url=dead_letter_queue, max_receive_count=2
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, dead_letter_queue) == 1, "the dead-letter move")
    stats = runner.stats()[queue_url]

    assert messages_left(sqs, queue_url) == 0
    assert spy.invocations() == []
    # The queue moved it when the runner's receive found it: the runner never saw it.
    assert (stats.batches, stats.moved_to_dlq) == (0, 0)


def test_a_failure_that_outlives_its_visibility_timeout_is_dead_lettered_once(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    """Another receive finds the message visible again while its handler still runs, and the
    queue moves it then; the handler's failure must not leave a second copy."""
    dead_letter_queue = create_queue(sqs)
    queue_url = create_queue(
        sqs, visibility_timeout=1, redrive_policy=redrive_policy(sqs, dead_letter_queue, 1)
    )
    send(sqs, queue_url, {"id": "slow-failure", "action": "fail", "hold": 4})
    source = queue_source(
        queue_url,
        function(spy),
        visibility_timeout=1,
        dead_letter_queue_url=dead_letter_queue,
        max_receive_count=1,
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: spy.sqs_deliveries() != {}, "the delivery")
        time.sleep(1.5)  # past the visibility timeout, within the handler's hold
        assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []
        assert messages_left(sqs, dead_letter_queue) == 1  # moved by that receive
        wait_for(lambda: runner.stats()[queue_url].failed == 1, "the handler's failure")

    assert [json.loads(m["Body"])["id"] for m in drain(sqs, dead_letter_queue)] == ["slow-failure"]
    assert messages_left(sqs, queue_url) == 0
    assert spy.sqs_deliveries() == {"slow-failure": [1]}
    assert runner.stats()[queue_url].moved_to_dlq == 1


def test_a_dead_letter_queue_the_queue_does_not_name_is_refused(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    dead_letter_queue = create_queue(sqs)
    for policy in (None, redrive_policy(sqs, dead_letter_queue, 3)):
        queue_url = create_queue(sqs, redrive_policy=policy)
        source = queue_source(
            queue_url, function(spy), dead_letter_queue_url=dead_letter_queue, max_receive_count=2
        )
        with (
            pytest.raises(ValueError, match="redrive policy"),
            running([source], endpoint, tmp_path),
        ):
            pass
    assert spy.invocations() == []


@pytest.mark.parametrize("action", ["raise", "bogus", "crash"])
def test_a_failed_invocation_redelivers_the_whole_batch(
    action: str, endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=1)
    send(sqs, queue_url, {"id": "innocent", "action": "ok"})
    send(sqs, queue_url, {"id": "culprit", "action": action, "until": 2})
    source = queue_source(
        queue_url, function(spy), batch_size=2, window=1, concurrency=1, visibility_timeout=1
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "both messages to succeed")
    stats = runner.stats()[queue_url]

    assert spy.sqs_deliveries() == {"innocent": [1, 2], "culprit": [1, 2]}
    assert (stats.failed, stats.succeeded) == (2, 2)
    crashed = action == "crash"
    assert stats.worker_restarts == int(crashed)
    # A crashed worker is replaced by a new one, which imports the handler again.
    assert len(spy.entries("init")) == 1 + int(crashed)
    if crashed:
        log = (tmp_path / "logs" / "fn.log").read_text()
        assert "Runtime exited with error: exit status 3" in log


def test_a_handler_past_its_timeout_is_killed_and_its_batch_redelivered(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=2)
    send(sqs, queue_url, {"id": "slow", "action": "hang", "until": 2})
    source = queue_source(
        queue_url, function(spy, timeout_seconds=2), concurrency=1, visibility_timeout=2
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the retry to succeed")
    stats = runner.stats()[queue_url]

    hung, retried = spy.invocations()
    assert not Path(f"/proc/{hung['pid']}").exists()
    assert retried["pid"] != hung["pid"]
    assert spy.sqs_deliveries() == {"slow": [1, 2]}
    assert (stats.failed, stats.succeeded, stats.worker_restarts) == (1, 1, 1)
    assert "Task timed out after 2.00 seconds" in (tmp_path / "logs" / "fn.log").read_text()


def test_kill_worker_fails_the_batch_as_a_crash_would(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=1)
    source = queue_source(queue_url, function(spy), concurrency=1, visibility_timeout=1)
    with running([source], endpoint, tmp_path) as runner:
        assert not runner.kill_worker("fn")  # nothing in flight yet
        send(sqs, queue_url, {"id": "victim", "action": "hold", "hold": 60, "until": 2})
        wait_for(lambda: len(spy.invocations()) == 1, "the handler to start")
        assert runner.kill_worker("fn")
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the redelivery to succeed")
    stats = runner.stats()[queue_url]

    assert spy.sqs_deliveries() == {"victim": [1, 2]}
    assert (stats.failed, stats.succeeded, stats.worker_restarts) == (1, 1, 1)
    assert (
        "Runtime exited with error: signal: SIGKILL" in (tmp_path / "logs" / "fn.log").read_text()
    )


def test_a_handler_that_cannot_be_loaded_fails_its_batch_like_an_init_error(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    dead_letter_queue = create_queue(sqs)
    queue_url = create_queue(sqs, redrive_policy=redrive_policy(sqs, dead_letter_queue, 1))
    send(sqs, queue_url, {"id": "orphan", "action": "ok"})
    fn = function(spy, handler="tests.e2e.handlers.spy.no_such_handler")
    source = queue_source(
        queue_url, fn, dead_letter_queue_url=dead_letter_queue, max_receive_count=1
    )
    with running([source], endpoint, tmp_path):
        wait_for(lambda: messages_left(sqs, dead_letter_queue) == 1, "the dead-letter move")

    assert spy.invocations() == []
    log = (tmp_path / "logs" / "fn.log").read_text()
    assert "[ERROR] Runtime.HandlerNotFound: Handler 'no_such_handler' missing" in log
