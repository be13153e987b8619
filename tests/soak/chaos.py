"""The faults the soak drives over time, beside the rates the runtime and the runner draw from.

Each driver is a thread that acts as the world would: an operator's outage (the endpoint down,
the results table refusing writes), a crash (a function worker killed mid-invocation), SNS
delivering an older attempt's notification late (stale), and the user running
``asyncinfer redrive`` whenever a dead-letter queue holds something. Every action is counted,
and the counts are what the soak reports.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asyncinfer.local.faults import DynamoDBFaultProxy
from lambdas.common.clock import format_timestamp, parse_timestamp, utc_now
from lambdas.common.records import TERMINAL_STATUSES, InferenceRecord, Status
from tests.reliability.support import Harness, set_faults

STALE_PER_ROUND = 3
# what each driver must have done at least once before the run may stop them
EACH_ONCE = ("endpoint_outages", "table_outages", "workers_killed", "stale_notifications")


@dataclass(frozen=True)
class Pace:
    """How often the drivers act (each waits 0.5-1.5x its period between two actions)."""

    outage_seconds: float  # how long the endpoint, then the table, is down
    outage_every: float
    kill_every: float
    redrive_every: float
    stale_every: float


SOAK_PACE = Pace(outage_seconds=8, outage_every=60, kill_every=15, redrive_every=20, stale_every=3)
# make test's run of a few dozen files: each driver acts within its first seconds
QUICK_PACE = Pace(outage_seconds=4, outage_every=30, kill_every=20, redrive_every=5, stale_every=2)


class Chaos:
    """Runs the drivers until ``stop()``; ``counts`` says what each did."""

    def __init__(
        self,
        harness: Harness,
        proxy: DynamoDBFaultProxy,
        uploaded: Callable[[], list[str]],
        pace: Pace,
    ) -> None:
        self._harness = harness
        self._pace = pace
        self._proxy = proxy
        self._uploaded = uploaded
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._random = random.Random(20261204)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._loop, args=(driver, every), daemon=True, name=name)
            for name, driver, every in (
                ("outages", self._outage, pace.outage_every),
                ("killer", self._kill, pace.kill_every),
                ("redriver", self._redrive, pace.redrive_every),
                ("stale", self._stale, pace.stale_every),
            )
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def each_acted(self) -> bool:
        with self._lock:
            return all(self.counts[name] > 0 for name in EACH_ONCE)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(self._pace.outage_seconds * 3 + 30)
        self._proxy.reject_writes(False)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def _loop(self, driver: Callable[[], None], every: float) -> None:
        while not self._stopping.wait(every * (0.5 + self._random.random())):
            try:
                driver()
            except Exception as error:  # a driver's failure is reported, not hidden
                self.errors.append(f"{driver.__name__}: {error!r}")

    def _outage(self) -> None:
        """The endpoint down for a while, then, half a period later, the table."""
        pace = self._pace
        down_error = self._random.choice(["ServiceUnavailable", "ModelNotReadyException"])
        set_faults(self._harness, down_for_seconds=pace.outage_seconds, down_error=down_error)
        self._count("endpoint_outages")
        if self._stopping.wait(pace.outage_every / 2):
            return
        self._proxy.reject_writes(True)
        self._count("table_outages")
        self._stopping.wait(pace.outage_seconds)
        self._proxy.reject_writes(False)

    def _kill(self) -> None:
        """A worker of either function killed in the middle of an invocation (tried until one
        is busy)."""
        runner = self._harness.pipeline.runner
        assert runner is not None
        functions = ["ingest", "results"]
        self._random.shuffle(functions)
        while not self._stopping.is_set():
            for function in functions:
                if runner.kill_worker(function):
                    self._count("workers_killed")
                    self._count(f"{function}_workers_killed")
                    return
            self._stopping.wait(0.05)

    def _redrive(self) -> None:
        """What a user does when the dead-letter alarm fires: ``asyncinfer redrive``. On a
        loaded machine the command can find local mode too busy to answer its probe (or run
        past its timeout); the user runs it again later, and so does this driver (counted;
        the run's final redrives, in ``settle``, must succeed)."""
        if not any(self._harness.dead_letter_depths().values()):
            return
        try:
            moved = self._harness.redrive()
        except (AssertionError, subprocess.TimeoutExpired):
            self._count("redrive_failures")
            return
        self._count("redriven_messages", sum(moved.values()))
        self._count("redrives")

    def _stale(self) -> None:
        """Late notifications of an older attempt for records that already have an outcome:
        each must change nothing (``record_outcome`` keeps the newest ``completed_at``)."""
        uploaded = self._uploaded()
        sample = self._random.sample(uploaded, min(len(uploaded), 20))
        records = [r for r in self._harness.records(sample).values() if r is not None]
        done = [r for r in records if r.status in TERMINAL_STATUSES and r.completed_at]
        donors = [r for r in done if r.status == Status.COMPLETED and r.output_location]
        for record in done[:STALE_PER_ROUND]:
            # the other outcome: a failure for a success; for a failure, another file's output
            donor = next((d for d in donors if d.inference_id != record.inference_id), None)
            if record.status == Status.FAILED and donor is None:
                continue
            self._deliver(stale_notification(self._harness, record, donor))
            self._count("stale_notifications")

    def _deliver(self, notification: dict[str, Any]) -> None:
        """Onto the topic's delivery queue, as SNS delivers to the function's subscription."""
        spec = self._harness.spec
        completed = notification["invocationStatus"] == "Completed"
        topic = spec.endpoint.success_topic_arn if completed else spec.endpoint.error_topic_arn
        [source] = [s for s in spec.results if s.topic_arn == topic]
        envelope = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": json.dumps(notification),
            "Timestamp": format_timestamp(utc_now()),
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertURL": "",
            "UnsubscribeURL": "",
        }
        self._harness.sqs.send_message(
            QueueUrl=source.delivery_queue_url, MessageBody=json.dumps(envelope)
        )


def stale_notification(
    harness: Harness, record: InferenceRecord, donor: InferenceRecord | None
) -> dict[str, Any]:
    """An ``InferenceResult`` from before the record's outcome, with the opposite outcome."""
    assert record.completed_at is not None
    earlier = parse_timestamp(record.completed_at) - timedelta(seconds=1)
    notification: dict[str, Any] = {
        "awsRegion": harness.spec.region,
        "eventTime": format_timestamp(earlier),
        "receivedTime": format_timestamp(earlier - timedelta(seconds=1)),
        "requestParameters": {
            "contentType": record.content_type or "application/json",
            "endpointName": harness.spec.endpoint.name,
            "inputLocation": record.input_location,
        },
        "inferenceId": record.inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if record.status == Status.COMPLETED:
        notification["invocationStatus"] = "Failed"
        notification["failureReason"] = "stale: an older attempt's failure, delivered late"
    else:
        assert donor is not None
        notification["invocationStatus"] = "Completed"
        notification["responseParameters"] = {
            "contentType": "application/json",
            "outputLocation": donor.output_location,
        }
    return notification


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
