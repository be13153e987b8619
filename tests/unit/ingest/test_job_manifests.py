"""Ingest and jobs: a manifest under jobs_prefix is never inferred; when ingest's notification
covers the manifests, it forwards their messages to the jobs queue (stacks/jobs.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from lambdas.ingest import handler
from lambdas.ingest.clients import InvocationRetryableError
from lambdas.ingest.telemetry import InvocationTelemetry
from tests.unit.ingest.conftest import World
from tests.unit.ingest.support import FakeLambdaContext, notification, sqs_event, sqs_record


def invoke(world: World, forward: Any, *records: dict[str, Any]) -> Any:
    runtime = replace(world.runtime(jobs_prefix="jobs/"), forward_manifests=forward)
    event = sqs_event(*(sqs_record(notification(record)) for record in records))
    context = cast("Any", FakeLambdaContext(world.clock))
    return handler.ingest(event, context, runtime, InvocationTelemetry())


def test_a_manifest_is_forwarded_and_never_inferred(world: World) -> None:
    forwarded: list[str] = []
    manifest = world.put("jobs/batch-7.manifest.json", b"[]")
    image = world.put("a.json")
    response = invoke(world, forwarded.append, manifest, image)
    assert response == {"batchItemFailures": []}
    assert [world.invoker.key_of(call) for call in world.invoker.calls] == ["a.json"]
    assert len(forwarded) == 1
    assert "jobs/batch-7.manifest.json" in forwarded[0]


def test_a_failed_forward_gives_the_message_back(world: World) -> None:
    def fails(body: str) -> None:
        raise InvocationRetryableError("the jobs queue said no")

    response = invoke(world, fails, world.put("jobs/x.manifest.json", b"[]"))
    assert len(response["batchItemFailures"]) == 1
    assert world.invoker.calls == []


def test_without_a_forwarder_a_manifest_is_only_skipped(world: World) -> None:
    response = invoke(world, None, world.put("jobs/y.manifest.json", b"[]"))
    assert response == {"batchItemFailures": []}
    assert world.invoker.calls == []
