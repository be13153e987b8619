"""Jobs: a manifest in, one results file and one ``Job Completed`` event out (docs/jobs.md).

::

    manifest object ─┬─ S3 notification (its own, or ingest forwards it) ─┐
                     └─ EventBridge rule (event_source=eventbridge) ──────┤
    Inference Completed / Failed on the stack's bus ── rule ──────────────┼─▶ jobs queue (+DLQ)
                                                                          │        │
    schedule (the sweep: lost triggers) ──────────────────────────────────┼─▶ jobs function
                                                                                   │
       jobs table (headers, 16 counter shards per job, members) ◀──────────────────┤
       output bucket <jobs_prefix><name>/results.jsonl ◀───────────────────────────┘
       jobs table stream ── pipe (a header becoming COMPLETED or FAILED) ──▶ Job Completed

The function never publishes: the header's guarded transition to a final status is one stream
record, and the pipe turns it into the one event (lambdas/jobs/logic.py has the argument).
Least privilege: the function's role reads and writes its table, reads records by key, reads
the input bucket (manifests, versions), and writes only under ``jobs_prefix`` of the output
bucket; the pipe's role reads the jobs stream and puts events on the bus.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common.contract import (
    DETAIL_TYPE_COMPLETED,
    DETAIL_TYPE_FAILED,
    DETAIL_TYPE_JOB_COMPLETED,
    EVENTS_SOURCE,
    JOBS_CREATED_ATTRIBUTE,
    JOBS_LIST_INDEX,
    JOBS_LIST_KEY,
    JOBS_PARTITION_KEY,
    JOBS_SORT_KEY,
    MANIFEST_SUFFIX,
    Env,
    Service,
)
from lambdas.common.deadlines import PENDING_MARGIN, SUBMITTED_MARGIN
from lambdas.jobs.model import JobStatus
from stacks.config import ManifestRoute, StackConfig
from stacks.events_in import object_created_pattern
from stacks.function import PipelineFunction, removal_policy
from stacks.ingest import INGEST_QUEUE_RETENTION, Ingest
from stacks.nag import acknowledge, objects_of, wildcard_resource
from stacks.queues import DEAD_LETTER_RETENTION, dead_letter_queue, secure_queue

TIMEOUT_SECONDS = 900  # a start resolves up to 100,000 entries (a HeadObject each)
MEMORY_MB = 1024
BATCH_SIZE = 10
SWEEP_EVERY = Duration.minutes(5)
FINAL = [JobStatus.COMPLETED.value, JobStatus.FAILED.value]
DETAIL_FIELDS = ("job_name", "status", "total", "completed", "failed", "results_location")


def default_deadline_seconds(config: StackConfig) -> int:
    """The longest an input can take to reach an outcome: on the ingest queue and its
    dead-letter queue, then SageMaker's TTL and timeout (lambdas/common/deadlines.py)."""
    return int(
        INGEST_QUEUE_RETENTION.to_seconds()
        + DEAD_LETTER_RETENTION.to_seconds()
        + PENDING_MARGIN.total_seconds()
        + config.request_ttl_seconds
        + config.invocation_timeout_seconds
        + SUBMITTED_MARGIN.total_seconds()
    )


def completion_filter() -> dict[str, Any]:
    """A header becoming final: exactly one stream record per job (the guarded transition)."""
    return {
        "eventName": ["MODIFY"],
        "dynamodb": {
            "Keys": {JOBS_SORT_KEY: {"S": ["JOB"]}},
            "NewImage": {"status": {"S": FINAL}},
            "OldImage": {"status": {"S": [{"anything-but": FINAL}]}},
        },
    }


def detail_template() -> str:
    """``detail``: the header's fields; numbers as DynamoDB's stream gives them (strings)."""
    image = "$.dynamodb.NewImage"
    parts = [
        f'"{name}": "<{image}.{name}.{"N" if name in ("total", "completed", "failed") else "S"}>"'
        for name in DETAIL_FIELDS
    ]
    parts.append(f'"reason": "<{image}.reason.S>"')
    return "{" + ", ".join(parts) + "}"


class Jobs(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        input_bucket: s3.IBucket,
        output_bucket: s3.IBucket,
        results_table: dynamodb.ITable,
        ingest: Ingest,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = self._table(config)
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue")
        self.queue = secure_queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(6 * TIMEOUT_SECONDS),
            retention_period=INGEST_QUEUE_RETENTION,
            redrive=sqs.DeadLetterQueue(
                max_receive_count=config.max_receive_count, queue=self.dead_letter_queue
            ),
        )
        self.bus = events.EventBus.from_event_bus_name(self, "Bus", config.event_bus_name)
        self.handler = PipelineFunction(
            self,
            "Function",
            config=config,
            service=Service.JOBS,
            description="Starts jobs from manifests, counts their outcomes, writes their results",
            timeout_seconds=TIMEOUT_SECONDS,
            memory_mb=MEMORY_MB,
            environment={
                Env.JOBS_TABLE: self.table.table_name,
                Env.TABLE_NAME: results_table.table_name,
                Env.INPUT_BUCKET: input_bucket.bucket_name,
                Env.OUTPUT_BUCKET: output_bucket.bucket_name,
                Env.JOBS_PREFIX: config.jobs_prefix,
                Env.KEY_PREFIXES: json.dumps(config.key_prefixes),
                Env.KEY_SUFFIXES: json.dumps(config.key_suffixes),
                Env.JOB_DEADLINE_SECONDS: str(
                    config.job_deadline_seconds or default_deadline_seconds(config)
                ),
            },
            retry_attempts=0,  # the schedule's next run is the sweep's retry
        )
        self.function = self.handler.function
        self._grant(config, input_bucket, output_bucket, results_table)
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue, batch_size=BATCH_SIZE, report_batch_item_failures=True
            )
        )
        self.outcome_rule = events.Rule(
            self,
            "OutcomeRule",
            description="Records becoming terminal -> the jobs queue (jobs count them)",
            event_bus=self.bus,
            event_pattern=events.EventPattern(
                source=[EVENTS_SOURCE], detail_type=[DETAIL_TYPE_COMPLETED, DETAIL_TYPE_FAILED]
            ),
            targets=[targets.SqsQueue(self.queue)],
        )
        self._route_manifests(config, input_bucket, ingest)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="The jobs sweep: finishes what lost triggers left open",
            schedule=events.Schedule.rate(SWEEP_EVERY),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
        self.pipe_dead_letter_queue = dead_letter_queue(self, "PipeDeadLetterQueue")
        acknowledge(
            self.pipe_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is a dead-letter queue, named by the pipe's DeadLetterConfig; cdk-nag "
            "only recognizes dead-letter queues named by another queue's redrive policy.",
        )
        self.pipe = self._completion_pipe()

    def _table(self, config: StackConfig) -> dynamodb.Table:
        string = dynamodb.AttributeType.STRING
        table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=JOBS_PARTITION_KEY, type=string),
            sort_key=dynamodb.Attribute(name=JOBS_SORT_KEY, type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # the Job Completed event's source: old and new image tell the final transition
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            removal_policy=removal_policy(config),
        )
        # sparse (headers only): `asyncinfer jobs` and the sweep list jobs newest first
        table.add_global_secondary_index(
            index_name=JOBS_LIST_INDEX,
            partition_key=dynamodb.Attribute(name=JOBS_LIST_KEY, type=string),
            sort_key=dynamodb.Attribute(name=JOBS_CREATED_ATTRIBUTE, type=string),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table

    def _grant(
        self,
        config: StackConfig,
        input_bucket: s3.IBucket,
        output_bucket: s3.IBucket,
        results_table: dynamodb.ITable,
    ) -> None:
        # TransactWriteItems is authorized as its UpdateItem parts
        self.handler.allow(
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
            ],
            [self.table.table_arn],
        )
        self.handler.allow(["dynamodb:Query"], [f"{self.table.table_arn}/index/{JOBS_LIST_INDEX}"])
        self.handler.allow(["dynamodb:BatchGetItem"], [results_table.table_arn])
        # manifests (by version) and each entry's current version; ListBucket: a missing key
        # answers 404, not 403 (DESIGN "IAM and deploy facts")
        self.handler.allow(
            ["s3:GetObject", "s3:GetObjectVersion"], [input_bucket.arn_for_objects("*")]
        )
        self.handler.allow(["s3:ListBucket"], [input_bucket.bucket_arn, output_bucket.bucket_arn])
        acknowledge(
            self.handler.role,
            wildcard_resource(objects_of(input_bucket, "*")),
            "A manifest names any keys of the input bucket: the function reads their current "
            "version (HeadObject) and the manifests themselves.",
        )
        folder = f"{config.jobs_prefix}*"
        self.handler.allow(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            [output_bucket.arn_for_objects(folder)],
        )
        acknowledge(
            self.handler.role,
            wildcard_resource(objects_of(output_bucket, folder)),
            "Each job writes its results file and entries under <jobs_prefix><name>/ of the "
            "output bucket; job names are chosen by the uploader of the manifest.",
        )

    def _route_manifests(
        self, config: StackConfig, input_bucket: s3.IBucket, ingest: Ingest
    ) -> None:
        route = config.manifest_route
        if route is ManifestRoute.EVENTBRIDGE:
            pattern = object_created_pattern(input_bucket.bucket_name, [], [])
            pattern["detail"]["object"] = {
                "key": [{"wildcard": f"{config.jobs_prefix}*{MANIFEST_SUFFIX}"}]
            }
            events.Rule(
                self,
                "ManifestRule",
                description="New job manifests -> the jobs queue",
                event_pattern=events.EventPattern(
                    source=pattern["source"],
                    detail_type=pattern["detail-type"],
                    detail=pattern["detail"],
                ),
                targets=[targets.SqsQueue(self.queue)],
            )
        elif route is ManifestRoute.NOTIFICATION:
            input_bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3_notifications.SqsDestination(self.queue),
                s3.NotificationKeyFilter(prefix=config.jobs_prefix, suffix=MANIFEST_SUFFIX),
            )
        else:  # ingest's own notification covers the manifests: it forwards them
            ingest.function.add_environment(Env.JOBS_QUEUE_URL, self.queue.queue_url)
            self.queue.grant_send_messages(ingest.handler.role)

    def _completion_pipe(self) -> pipes.CfnPipe:
        stream_arn = self.table.table_stream_arn
        if stream_arn is None:
            raise ValueError("the jobs table needs its stream")
        role = iam.Role(
            self,
            "PipeRole",
            assumed_by=iam.ServicePrincipal("pipes.amazonaws.com"),
            description="The async inference pipeline's Job Completed pipe",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                ],
                resources=[stream_arn],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:ListStreams"], resources=["*"]))
        acknowledge(
            role,
            wildcard_resource("*"),
            "dynamodb:ListStreams has no resource-level permissions (Service Authorization "
            "Reference, Amazon DynamoDB): AWS requires Resource '*'; reads are on the stream.",
        )
        self.bus.grant_put_events_to(role)
        self.pipe_dead_letter_queue.grant_send_messages(role)
        pipe = pipes.CfnPipe(
            self,
            "CompletionPipe",
            description="A job header becoming COMPLETED or FAILED -> Job Completed",
            role_arn=role.role_arn,
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position="TRIM_HORIZON",
                    batch_size=10,
                    maximum_retry_attempts=10,
                    dead_letter_config=pipes.CfnPipe.DeadLetterConfigProperty(
                        arn=self.pipe_dead_letter_queue.queue_arn
                    ),
                ),
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[pipes.CfnPipe.FilterProperty(pattern=json.dumps(completion_filter()))]
                ),
            ),
            target=self.bus.event_bus_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                event_bridge_event_bus_parameters=pipes.CfnPipe.PipeTargetEventBridgeEventBusParametersProperty(
                    source=EVENTS_SOURCE, detail_type=DETAIL_TYPE_JOB_COMPLETED
                ),
                input_template=detail_template(),
            ),
        )
        # Pipes validates the role's access to source and target when it creates the pipe
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            pipe.node.add_dependency(policy)
        return pipe
