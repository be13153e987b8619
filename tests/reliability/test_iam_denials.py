"""Local mode under IAM: template variants with one grant removed (or added) per principal.

Each test runs the whole pipeline from a template variant that lacks one permission the
pipeline needs, and shows that local mode denies what AWS would deny, and that the affected
message is retried, recorded ``FAILED`` with a reason, or dead-lettered: never lost.

A pipeline takes seconds to start and stop, so two tests whose principals' paths never cross
share one (a class, its fixture): a variant changes at most one grant of each role, and each
test's file or event only meets the role it is about where the other test's change is not used
(a missing key's event never reaches the endpoint or the results function; an existing object
never needs ``s3:ListBucket``). Counts are taken relative to before the test's own message."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asyncinfer.local.aws.iam import admin_session
from tests.reliability.support import (
    IRIS_ROWS,
    Harness,
    iris_csv,
    running_pipeline,
    s3_event,
    wait_until,
)

pytestmark = pytest.mark.reliability
Transform = Callable[[dict[str, Any]], dict[str, Any]]
# One delivery, then the ingest dead-letter queue: a denied message gets there in seconds.
ONE_DELIVERY = {"max_receive_count": "1"}
WITHOUT_INLINE = {"inline_input_max_bytes": "0"}
INGEST_ROLE = "IngestFunctionRole"
RESULTS_ROLE = "ResultsFunctionRole"
EXECUTION_ROLE = "EndpointExecutionRole"
MISSING_VERSION = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"  # an event for a version that is gone


def _role_policies(body: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    policies = []
    for resource in body["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [role.get("Ref", "") for role in resource["Properties"].get("Roles", [])]
        if any(role.startswith(role_prefix) for role in roles):
            policies.append(resource["Properties"]["PolicyDocument"])
    assert policies, f"no policy of a role {role_prefix}* in the template"
    return policies


def without_grant(role_prefix: str, action: str) -> Transform:
    """The template with ``action`` removed from every statement of the role's policies."""

    def transform(body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        for document in _role_policies(body, role_prefix):
            statements = document["Statement"]
            for statement in statements:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                statement["Action"] = [name for name in actions if name != action]
            document["Statement"] = [statement for statement in statements if statement["Action"]]
        assert action not in json.dumps(_role_policies(body, role_prefix))
        return body

    return transform


def with_grant(role_prefix: str, statement: dict[str, Any]) -> Transform:
    def transform(body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        _role_policies(body, role_prefix)[0]["Statement"].append(statement)
        return body

    return transform


def items_for_key(harness: Harness, key: str) -> list[dict[str, Any]]:
    return [
        item for item in harness.scan_items() if str(item.get("input_location", "")).endswith(key)
    ]


def send_event_for_missing_key(harness: Harness, key: str) -> None:
    event = s3_event(
        harness.bucket, key, size=10, version_id=MISSING_VERSION, region=harness.spec.region
    )
    harness.sqs.send_message(QueueUrl=harness.spec.ingest.queue_url, MessageBody=json.dumps(event))


def both(*transforms: Transform) -> Transform:
    def transform(body: dict[str, Any]) -> dict[str, Any]:
        for each in transforms:
            body = each(body)
        return body

    return transform


def with_list_bucket_on_the_input_bucket(body: dict[str, Any]) -> dict[str, Any]:
    bucket_id = next(
        logical_id
        for logical_id, resource in body["Resources"].items()
        if resource["Type"] == "AWS::S3::Bucket" and logical_id.startswith("StorageInputBucket")
    )
    statement = {
        "Action": "s3:ListBucket",
        "Effect": "Allow",
        "Resource": {"Fn::GetAtt": [bucket_id, "Arn"]},
    }
    return with_grant(INGEST_ROLE, statement)(body)


class TestIngestWithoutInvokeEndpointAsync:
    @pytest.fixture(scope="class")
    @classmethod
    def harness(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
        with running_pipeline(
            tmp_path_factory.mktemp("without-invoke"),
            context=ONE_DELIVERY,
            template_transform=without_grant(INGEST_ROLE, "sagemaker:InvokeEndpointAsync"),
        ) as harness:
            yield harness

    def test_the_submission_is_denied_and_dead_lettered(self, harness: Harness) -> None:
        inference_id = harness.put("denied/flower.csv", iris_csv(IRIS_ROWS[0]))
        dead_letters = harness.spec.outputs["IngestDeadLetterQueueUrl"]
        wait_until(
            lambda: harness.queue_depth(dead_letters) == 1,
            timeout=90,
            what="the denied submission to reach the ingest dead-letter queue",
        )
        assert harness.runtime_stats["denied"].get("AccessDeniedException", 0) >= 1
        assert harness.runtime_stats["accepted"] == 0
        assert "AccessDeniedException" in harness.function_log("ingest")
        record = harness.store.get(inference_id)
        assert record is None or record.status == "PENDING"  # claimed, never submitted


class TestResultsWithoutUpdateItemIngestWithoutListBucket:
    """Results may not ``dynamodb:UpdateItem``; ingest may not ``s3:ListBucket`` (its inline
    Body off: a missing key is HeadObject's answer, not GetObject's with a VersionId, issue
    14). One delivery of each ingest message, then its dead-letter queue."""

    @pytest.fixture(scope="class")
    @classmethod
    def harness(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
        with running_pipeline(
            tmp_path_factory.mktemp("without-update-item-and-list-bucket"),
            context={**ONE_DELIVERY, **WITHOUT_INLINE},
            template_transform=both(
                without_grant(RESULTS_ROLE, "dynamodb:UpdateItem"),
                without_grant(INGEST_ROLE, "s3:ListBucket"),
            ),
        ) as harness:
            yield harness

    def test_results_is_denied_and_the_outcome_dead_lettered(self, harness: Harness) -> None:
        inference_id = harness.put("denied/result.csv", iris_csv(IRIS_ROWS[1]))
        failures = harness.spec.outputs["ResultsFailureQueueUrl"]
        wait_until(
            lambda: harness.queue_depth(failures) >= 1,
            timeout=90,
            what="the undeliverable result to reach the results failure queue",
        )
        assert "AccessDeniedException" in harness.function_log("results")
        record = harness.store.get(inference_id)
        assert record is not None
        assert record.status == "SUBMITTED"  # ingest wrote it; the outcome waits in the queue

    def test_ingest_cannot_tell_a_missing_object(self, harness: Harness) -> None:
        """HeadObject on a missing key is 403 without s3:ListBucket: ingest cannot record the
        object as missing; the message is retried, then dead-lettered."""
        dead_letters = harness.spec.outputs["IngestDeadLetterQueueUrl"]
        before = harness.queue_depth(dead_letters)
        send_event_for_missing_key(harness, "gone/without-list.csv")
        wait_until(
            lambda: harness.queue_depth(dead_letters) == before + 1,
            timeout=90,
            what="the undecidable event to reach the ingest dead-letter queue",
        )
        aws_log = (harness.pipeline.log_dir / "aws.log").read_text(errors="replace")
        assert "HEAD /" in aws_log
        assert any(
            "without-list.csv" in line and '" 403 ' in line for line in aws_log.splitlines()
        ), "HeadObject on the missing key was not answered 403"
        assert not [
            item
            for item in items_for_key(harness, "without-list.csv")
            if item["status"] != "PENDING"
        ]


class TestEndpointWithoutSnsPublishIngestWithListBucket:
    """The endpoint's execution role may not ``sns:Publish``; ingest may ``s3:ListBucket``
    the input bucket (the stack does not grant it)."""

    @pytest.fixture(scope="class")
    @classmethod
    def harness(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
        with running_pipeline(
            tmp_path_factory.mktemp("without-publish-with-list-bucket"),
            template_transform=both(
                without_grant(EXECUTION_ROLE, "sns:Publish"),
                with_list_bucket_on_the_input_bucket,
            ),
        ) as harness:
            yield harness

    def test_the_notification_is_denied_and_the_record_stays_visible(
        self, harness: Harness
    ) -> None:
        inference_id = harness.put("denied/notification.csv", iris_csv(IRIS_ROWS[2]))
        wait_until(
            lambda: harness.runtime_stats["completed"] >= 1,
            timeout=60,
            what="the inference to complete",
        )
        wait_until(
            lambda: harness.runtime_stats["notification_errors"] >= 1,
            timeout=30,
            what="the denied notification",
        )
        assert harness.runtime_stats["notifications_published"] == 0
        record = harness.store.get(inference_id)
        assert record is not None
        # No notification can reach the results function: the record stays SUBMITTED, with
        # its deadline, for the reconciler to settle (failure_stage "expired").
        assert record.status == "SUBMITTED"
        # Nor can anyone else publish in its place: the topic policy (OnlyTheEndpointPublishes)
        # denies every principal but the execution role and the account root, the
        # administrator included.
        sns = admin_session(harness.spec.region).client(
            "sns", endpoint_url=harness.spec.aws_endpoint_url
        )
        with pytest.raises(ClientError) as denied:
            sns.publish(TopicArn=harness.spec.outputs["SuccessTopicArn"], Message="{}")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert "topic policy" in denied.value.response["Error"]["Message"]

    def test_ingest_records_a_missing_object_failed(self, harness: Harness) -> None:
        send_event_for_missing_key(harness, "gone/with-list.csv")
        wait_until(
            lambda: any(
                item["status"] == "FAILED" for item in items_for_key(harness, "with-list.csv")
            ),
            timeout=60,
            what="the missing object to be recorded FAILED",
        )
        assert harness.queue_depth(harness.spec.outputs["IngestDeadLetterQueueUrl"]) == 0
