"""New objects in: S3 -> EventBridge -> a rule with the key filters -> the ingest queue.

The alternative to an S3 event notification (``event_source=eventbridge``, the default for an
imported bucket). A bucket holds one notification configuration, and whoever writes it last
replaces the others' (S3 user guide, "Amazon S3 Event Notifications"); with EventBridge the
bucket only needs its ``EventBridgeConfiguration`` turned on, and any number of rules, ours
among them, see every object event.

How the one change reaches the bucket: ``IBucket.enable_event_bridge_notification()`` adds
CDK's ``Custom::S3BucketNotifications`` resource. For a bucket the stack does not own
(``Bucket.from_bucket_name``) CDK renders it with ``Managed: false`` (aws-cdk-lib 2.275.0,
``aws-s3/lib/notifications-resource/notifications-resource.js``: ``managed = bucket instanceof
Bucket``), and its handler (``custom-resource-handlers/dist/aws-s3/
notifications-resource-handler/index.py``, ``handle_unmanaged``) reads the bucket's current
configuration, keeps every queue, topic and function notification it did not create, and adds
``EventBridgeConfiguration``; on stack deletion it keeps the external ones and leaves
``EventBridgeConfiguration`` on ("there is no way to determine whether it's managed by us").

What that write must not do: ``PutBucketNotificationConfiguration`` validates every
destination of the configuration it receives, the other consumers' it writes back too (S3 API
reference, ``x-amz-skip-destination-validation``), so one stale foreign queue would fail our
create, update and delete. For an imported bucket the resource skips the validation (its
``SkipDestinationValidation`` property; CDK offers the flag only on a bucket it creates,
``BucketProps.notifications_skip_destination_validation``): the one destination we add is
EventBridge, which needs no resource policy.
"""

from __future__ import annotations

import itertools
from typing import Any

from aws_cdk import CfnResource
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"


def _wildcard_escaped(text: str) -> str:
    """EventBridge wildcard patterns treat ``*`` as the wildcard; ``\\`` escapes it."""
    return text.replace("\\", "\\\\").replace("*", "\\*")


def skip_destination_validation(bucket: s3.IBucket) -> None:
    """The bucket's notifications resource (CDK's ``Notifications`` child) skips S3's
    destination validation (see the module doc)."""
    notifications = bucket.node.find_child("Notifications").node.default_child
    if not isinstance(notifications, CfnResource):
        raise TypeError(f"{bucket.node.path}/Notifications has no CloudFormation resource")
    notifications.add_property_override("SkipDestinationValidation", True)


def key_matchers(prefixes: list[str], suffixes: list[str]) -> list[dict[str, str]]:
    """The ``detail.object.key`` matchers of the rule: any one may match (EventBridge ORs the
    values of a field). A prefix alone is a ``prefix`` matcher, a suffix alone a ``suffix``
    matcher, and a prefix with a suffix a ``wildcard`` ``<prefix>*<suffix>``, so both hold for
    the same key, as in an S3 notification filter. No filter at all: no matchers."""
    if not prefixes and not suffixes:
        return []
    if not suffixes:
        return [{"prefix": prefix} for prefix in prefixes]
    if not prefixes:
        return [{"suffix": suffix} for suffix in suffixes]
    return [
        {"wildcard": f"{_wildcard_escaped(prefix)}*{_wildcard_escaped(suffix)}"}
        for prefix, suffix in itertools.product(prefixes, suffixes)
    ]


def object_created_pattern(
    bucket_name: str, prefixes: list[str], suffixes: list[str]
) -> dict[str, Any]:
    """The rule's event pattern, as EventBridge stores it (the local mode matches with it)."""
    obj: dict[str, Any] = {}
    matchers = key_matchers(prefixes, suffixes)
    if matchers:
        obj["key"] = matchers
    detail: dict[str, Any] = {"bucket": {"name": [bucket_name]}}
    if obj:
        detail["object"] = obj
    return {"source": [S3_SOURCE], "detail-type": [OBJECT_CREATED], "detail": detail}


class EventBridgeIngress(Construct):
    """Turns on the bucket's EventBridge delivery and routes its ``Object Created`` events for
    the configured keys to the ingest queue (queue policy: this rule only, via CDK's
    ``aws:SourceArn`` condition)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        queue: sqs.IQueue,
        prefixes: list[str],
        suffixes: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        bucket.enable_event_bridge_notification()
        if not isinstance(bucket, s3.Bucket):
            skip_destination_validation(bucket)
        pattern = object_created_pattern(bucket.bucket_name, prefixes, suffixes)
        self.rule = events.Rule(
            self,
            "ObjectCreatedRule",
            description="New input objects of the async inference pipeline -> its ingest queue",
            event_pattern=events.EventPattern(
                source=pattern["source"],
                detail_type=pattern["detail-type"],
                detail=pattern["detail"],
            ),
            targets=[targets.SqsQueue(queue)],
        )
