"""Local mode's EventBridge side of provisioning: the imported input bucket, the bucket's
notification configuration as CDK's custom resource applies it, and the template's rules.

What is emulated, and its source:

* An imported input bucket (``input_bucket_name``) is the team's existing bucket: the template
  only names it, so local mode creates it (versioned, as the README recommends) when the moto
  server does not have it yet, and keeps whatever it holds otherwise.
* ``Custom::S3BucketNotifications`` is CDK's handler (aws-cdk-lib 2.275.0,
  ``custom-resource-handlers/dist/aws-s3/notifications-resource-handler/index.py``): with
  ``Managed: true`` (a bucket of the stack) the configuration replaces the bucket's; with
  ``Managed: false`` (an imported bucket) the bucket's current queue, topic and function
  notifications are kept and the incoming ones, and ``EventBridgeConfiguration``, are added
  (``handle_unmanaged``, on a stack's creation every existing notification is external).
* ``AWS::Events::Rule``: created with its pattern and SQS targets on its bus. moto then does
  the delivery: S3 sends an event to EventBridge for every object of a bucket with
  ``EventBridgeConfiguration`` (moto 5.2.5 ``s3/notifications.py``, ``send_event`` ->
  ``_send_event_bridge_message``) and a matching rule sends it to its SQS target
  (``events/models.py``, ``Rule.send_to_targets``). Not emulated: the target's retry policy
  and dead-letter queue, and EventBridge's own at-least-once duplicates (the event runner's
  ``duplicate_delivery_rate`` duplicates queue deliveries instead).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from asyncinfer.local.provision.template import Template

NOTIFICATION_KINDS = (
    "QueueConfigurations",
    "TopicConfigurations",
    "LambdaFunctionConfigurations",
)
EVENTBRIDGE_CONFIGURATION = "EventBridgeConfiguration"


def template_bucket_names(template: Template) -> set[str]:
    return {
        template.physical(logical_id).ref for logical_id, _ in template.of_type("AWS::S3::Bucket")
    }


def create_imported_buckets(template: Template, s3: Any) -> list[str]:
    """Create each bucket the template's notification resources name but do not define."""
    own = template_bucket_names(template)
    created = []
    for _, properties in template.of_type("Custom::S3BucketNotifications"):
        bucket = str(template.resolve(properties["BucketName"]))
        if bucket in own:
            continue
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            created.append(bucket)
    return created


def merged_configuration(
    existing: dict[str, Any], incoming: dict[str, Any], *, managed: bool
) -> dict[str, Any]:
    """The configuration CDK's handler writes on a stack's creation (see the module doc)."""
    if managed:
        return {
            key: value
            for key, value in incoming.items()
            if key in (*NOTIFICATION_KINDS, EVENTBRIDGE_CONFIGURATION)
        }
    merged: dict[str, Any] = {}
    for kind in NOTIFICATION_KINDS:
        configurations = [*existing.get(kind, []), *incoming.get(kind, [])]
        if configurations:
            merged[kind] = configurations
    if EVENTBRIDGE_CONFIGURATION in incoming:
        merged[EVENTBRIDGE_CONFIGURATION] = incoming[EVENTBRIDGE_CONFIGURATION]
    elif EVENTBRIDGE_CONFIGURATION in existing:
        merged[EVENTBRIDGE_CONFIGURATION] = existing[EVENTBRIDGE_CONFIGURATION]
    return merged


def apply_bucket_notifications(template: Template, s3: Any) -> None:
    for _, properties in template.of_type("Custom::S3BucketNotifications"):
        bucket = str(template.resolve(properties["BucketName"]))
        incoming = template.resolve(properties["NotificationConfiguration"])
        managed = str(template.resolve(properties.get("Managed", True))).lower() == "true"
        existing = s3.get_bucket_notification_configuration(Bucket=bucket)
        existing.pop("ResponseMetadata", None)
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration=merged_configuration(existing, incoming, managed=managed),
        )


def create_rules(template: Template, events: Any) -> None:
    """The rules with an event pattern (schedule rules are the event runner's)."""
    for logical_id, properties in template.of_type("AWS::Events::Rule"):
        if "EventPattern" not in properties:
            continue
        name = template.physical(logical_id).ref
        bus = str(template.resolve(properties.get("EventBusName", "default")))
        events.put_rule(
            Name=name,
            EventPattern=json.dumps(template.resolve(properties["EventPattern"])),
            State=properties.get("State", "ENABLED"),
            EventBusName=bus,
        )
        targets = [
            {"Id": target["Id"], "Arn": template.resolve(target["Arn"])}
            for target in properties.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
