"""A reconciler run never settles a version whose ingest message may still be redriven: the
redelivery after the run still submits it (lambdas/common/deadlines.py, PENDING)."""

from __future__ import annotations

from datetime import timedelta

from aws_lambda_powertools import Logger, Metrics

from lambdas.common.contract import STATUS_INDEX
from lambdas.common.outputs import S3OutputReader
from lambdas.common.records import FailureStage, Status
from lambdas.ingest.events import ObjectVersion
from lambdas.ingest.logic import Outcome, SubmitResult
from lambdas.reconciler.clients import S3ObjectProbe, StatusIndex
from lambdas.reconciler.config import ReconcilerConfig
from lambdas.reconciler.logic import Reconciler, Settlement
from tests.conftest import TABLE_NAME
from tests.unit.ingest.conftest import ENDPOINT, World
from tests.unit.ingest.support import throttling


def reconciler(world: World) -> Reconciler:
    config = ReconcilerConfig.model_validate(
        {"TABLE_NAME": TABLE_NAME, "ENDPOINT_NAME": ENDPOINT, "OUTPUT_BUCKET": "output-bucket"}
    )
    return Reconciler(
        config=config,
        index=StatusIndex(world.dynamodb, TABLE_NAME, STATUS_INDEX),
        probe=S3ObjectProbe(world.s3),
        store=world.store,
        outputs=S3OutputReader(lambda: world.s3),
        metrics=Metrics(namespace="AsyncInference", service="reconciler"),
        logger=Logger(service="reconciler"),
        clock=world.clock.now,
    )


def deliver(world: World, target: ObjectVersion) -> SubmitResult:
    return world.submitter().submit(
        target, trace_id="1-abc", remaining_seconds=world.clock.remaining
    )


def test_a_redrive_after_a_reconciler_run_still_submits(world: World) -> None:
    target = world.upload("inputs/a.json")
    world.invoker.always("inputs/a.json", throttling())
    assert deliver(world, target).outcome is Outcome.DEFERRED  # left PENDING, message retried
    # the message runs out of receives and waits 13 days on the dead-letter queue
    world.clock.next_invocation(timedelta(days=13).total_seconds())

    report = reconciler(world).run()

    assert report.read == 0
    assert world.stored(target.inference_id).status == Status.PENDING
    world.invoker.recover("inputs/a.json")
    assert deliver(world, target).outcome is Outcome.SUBMITTED  # asyncinfer redrive
    assert world.stored(target.inference_id).status == Status.SUBMITTED


def test_past_both_retentions_the_claim_expires_and_a_stray_delivery_is_a_duplicate(
    world: World,
) -> None:
    target = world.upload("inputs/b.json")
    world.invoker.always("inputs/b.json", throttling())
    deliver(world, target)
    world.clock.next_invocation(timedelta(days=19, hours=1).total_seconds())

    report = reconciler(world).run()

    assert report.count(Settlement.EXPIRED) == 1
    record = world.stored(target.inference_id)
    assert (record.status, record.failure_stage) == (Status.FAILED, FailureStage.EXPIRED)
    world.invoker.recover("inputs/b.json")
    assert deliver(world, target).outcome is Outcome.DUPLICATE
