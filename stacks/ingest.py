"""New objects -> SQS ingest queue (+DLQ) -> ingest function -> InvokeEndpointAsync.

New objects arrive as S3 ``ObjectCreated`` notifications (``event_source=s3``) or as
EventBridge ``Object Created`` events (``event_source=eventbridge``, stacks/events_in.py).
"""

from __future__ import annotations

import itertools
import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common.contract import Env, Service
from stacks.config import EventSourceChoice, StackConfig
from stacks.endpoint import EndpointTarget
from stacks.events_in import EventBridgeIngress
from stacks.function import PipelineFunction
from stacks.nag import acknowledge, objects_of, wildcard_resource
from stacks.queues import dead_letter_queue, secure_queue

INGEST_QUEUE_RETENTION = Duration.days(4)


def notification_filters(
    prefixes: list[str], suffixes: list[str]
) -> list[list[s3.NotificationKeyFilter]]:
    """The filters of each notification: S3 allows one prefix and one suffix per notification,
    so every prefix x suffix pair gets its own; no prefix and no suffix is one unfiltered one.
    """
    any_prefix: list[str | None] = [None]
    any_suffix: list[str | None] = [None]
    return [
        [s3.NotificationKeyFilter(prefix=prefix, suffix=suffix)] if prefix or suffix else []
        for prefix, suffix in itertools.product(prefixes or any_prefix, suffixes or any_suffix)
    ]


class Ingest(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        input_bucket: s3.IBucket,
        table: dynamodb.ITable,
        endpoint: EndpointTarget,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue")
        self.queue = secure_queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(config.ingest_visibility_timeout_seconds),
            retention_period=INGEST_QUEUE_RETENTION,
            redrive=sqs.DeadLetterQueue(
                max_receive_count=config.max_receive_count, queue=self.dead_letter_queue
            ),
        )
        self.event_bridge: EventBridgeIngress | None = None
        if config.ingest_event_source is EventSourceChoice.EVENTBRIDGE:
            self.event_bridge = EventBridgeIngress(
                self,
                "EventBridge",
                bucket=input_bucket,
                queue=self.queue,
                prefixes=config.key_prefixes,
                suffixes=config.key_suffixes,
            )
        else:
            for key_filters in notification_filters(config.key_prefixes, config.key_suffixes):
                input_bucket.add_event_notification(
                    s3.EventType.OBJECT_CREATED,
                    s3_notifications.SqsDestination(self.queue),
                    *key_filters,
                )
        self.handler = PipelineFunction(
            self,
            "Function",
            config=config,
            service=Service.INGEST,
            description="Submits each new input object to the async endpoint",
            timeout_seconds=config.ingest_timeout_seconds,
            memory_mb=config.ingest_memory_mb,
            environment={
                Env.TABLE_NAME: table.table_name,
                Env.ENDPOINT_NAME: endpoint.name,
                Env.INPUT_BUCKET: input_bucket.bucket_name,
                Env.KEY_PREFIXES: json.dumps(config.key_prefixes),
                Env.KEY_SUFFIXES: json.dumps(config.key_suffixes),
                Env.ACCEPT: config.accept,
                Env.DEFAULT_CONTENT_TYPE: config.default_content_type,
                Env.CONTENT_TYPE_MAP: json.dumps(config.content_type_map, sort_keys=True),
                Env.CUSTOM_ATTRIBUTES: json.dumps(config.custom_attributes, sort_keys=True),
                Env.METADATA_ATTRIBUTES: json.dumps(config.metadata_attributes),
                Env.INVOCATION_TIMEOUT_SECONDS: str(config.invocation_timeout_seconds),
                Env.REQUEST_TTL_SECONDS: str(config.request_ttl_seconds),
                Env.MAX_INPUT_BYTES: str(config.max_input_bytes),
                Env.SUBMIT_CONCURRENCY: str(config.submit_concurrency),
                Env.OUTPUT_NAMING: config.output_naming.value,
                Env.INLINE_INPUT_MAX_BYTES: str(config.inline_input_max_bytes),
                Env.RETENTION_DAYS: str(config.retention_days),
                # its objects are a job's manifests, never inputs
                Env.JOBS_PREFIX: config.jobs_prefix if config.jobs_enabled else "",
            },
        )
        self.function = self.handler.function
        self.handler.allow(
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [table.table_arn]
        )
        # HeadObject (content type, size, user metadata) of the exact version that arrived,
        # and GetObject of that version (VersionId needs GetObjectVersion) for an inline Body
        self.handler.allow(
            ["s3:GetObject", "s3:GetObjectVersion"], [input_bucket.arn_for_objects("*")]
        )
        # Without s3:ListBucket, S3 answers HeadObject on a missing key with 403 AccessDenied
        # instead of 404 (S3 API reference, HeadObject "Permissions"): an object deleted before
        # submission would look like a permission problem, be retried and end in the DLQ
        # instead of being recorded FAILED. The grant is on the bucket, not its objects.
        self.handler.allow(["s3:ListBucket"], [input_bucket.bucket_arn])
        acknowledge(
            self.handler.role,
            wildcard_resource(objects_of(input_bucket, "*")),
            "The function reads the metadata of whichever object arrives in the input bucket; "
            "uploaders choose the keys, so the read grant covers the bucket's objects.",
        )
        self.handler.allow(["sagemaker:InvokeEndpointAsync"], [endpoint.arn])
        _acknowledge_notifications_handler(Stack.of(self))
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=config.batch_size,
                max_batching_window=(
                    Duration.seconds(config.max_batching_window_seconds)
                    if config.max_batching_window_seconds
                    else None
                ),
                report_batch_item_failures=True,
                max_concurrency=config.max_concurrency,
            )
        )


def _acknowledge_notifications_handler(stack: Stack) -> None:
    """CDK's own function that applies the bucket's notification configuration."""
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            acknowledge(
                child,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "CDK's bucket-notifications custom resource handler: the AWS managed policy only "
                "lets it write its own logs; it runs at deployment, never on user data.",
            )
