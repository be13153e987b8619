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
  (``handle_unmanaged``, on a stack's creation every existing notification is external). S3
  validates every queue destination of the configuration written, unless the resource sets
  ``SkipDestinationValidation`` (moto does not validate; ``apply_bucket_notifications`` does).
* ``PutEvents``' limits (10 entries, 256 KB per call; ``put_events_refusal``), which the local
  AWS server enforces (moto checks the count only).
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
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from asyncinfer.local.provision.template import Template, TemplateError

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


def create_imported_bucket(template: Template, properties: Mapping[str, Any], s3: Any) -> bool:
    """Creates the bucket a notification resource names when the template does not define it
    and the server does not have it yet; True when it did."""
    bucket = str(template.resolve(properties["BucketName"]))
    if bucket in template_bucket_names(template):
        return False
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        return True
    return False


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


def _unreachable_destinations(configuration: Mapping[str, Any], sqs: Any) -> list[str]:
    """The queue destinations that do not exist (topics and functions: not checked)."""
    missing = []
    for entry in configuration.get("QueueConfigurations", []):
        arn = entry["QueueArn"]
        try:
            sqs.get_queue_url(
                QueueName=arn.rsplit(":", 1)[-1], QueueOwnerAWSAccountId=arn.split(":")[4]
            )
        except ClientError:
            missing.append(arn)
    return missing


def apply_bucket_notifications(
    template: Template, properties: Mapping[str, Any], s3: Any, sqs: Any
) -> None:
    """``PutBucketNotificationConfiguration`` with the merged configuration. S3 validates every
    destination of the configuration it receives, other consumers' too, unless the request
    skips it (S3 API reference, PutBucketNotificationConfiguration:
    ``x-amz-skip-destination-validation``); moto does not validate, so local mode does."""
    bucket = str(template.resolve(properties["BucketName"]))
    incoming = template.resolve(properties["NotificationConfiguration"])
    managed = str(template.resolve(properties.get("Managed", True))).lower() == "true"
    skip = str(template.resolve(properties.get("SkipDestinationValidation", False))).lower()
    existing = s3.get_bucket_notification_configuration(Bucket=bucket)
    existing.pop("ResponseMetadata", None)
    merged = merged_configuration(existing, incoming, managed=managed)
    missing = [] if skip == "true" else _unreachable_destinations(merged, sqs)
    if missing:
        raise TemplateError(
            f"PutBucketNotificationConfiguration on {bucket}: Unable to validate the following "
            f"destination configurations: {', '.join(missing)} (set SkipDestinationValidation "
            "to write a configuration that holds other consumers' destinations)"
        )
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration=merged,
        SkipDestinationValidation=skip == "true",
    )


def create_rule(
    template: Template, logical_id: str, properties: Mapping[str, Any], events: Any
) -> None:
    """A rule with an event pattern (schedule rules are the event runner's)."""
    if "EventPattern" not in properties:
        return
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


# --- PutEvents' limits -----------------------------------------------------------------------

# EventBridge API reference, PutEvents: "Entries ... Maximum number of 10 items"; user guide,
# "Calculating PutEvents event entry size": "The total entry size must be less than 256KB".
PUT_EVENTS_MAX_ENTRIES = 10
PUT_EVENTS_MAX_BYTES = 256 * 1024
TIME_FIELD_BYTES = 14


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as the user guide computes it ("Calculating PutEvents event entry
    size"): 14 bytes for ``Time`` if present, the UTF-8 bytes of ``Source``, ``DetailType`` and
    ``Detail``, and of each ``Resources`` entry."""
    size = TIME_FIELD_BYTES if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        value = entry.get(name)
        if value is not None:
            size += len(str(value).encode("utf-8"))
    size += sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources") or [])
    return size


def put_events_refusal(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """Why EventBridge refuses the whole ``PutEvents`` call, or None when it takes it."""
    if len(entries) > PUT_EVENTS_MAX_ENTRIES:
        return (
            "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed "
            f"to satisfy constraint: Member must have length less than or equal to "
            f"{PUT_EVENTS_MAX_ENTRIES}"
        )
    total = sum(entry_size(entry) for entry in entries)
    if total > PUT_EVENTS_MAX_BYTES:
        return (
            f"Total size of the entries in the request is over the limit: {total} bytes, at "
            f"most {PUT_EVENTS_MAX_BYTES} (PutEvents entry size)"
        )
    return None
