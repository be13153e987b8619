"""A schedule -> the reconciler function -> overdue records settled (docs/records.md).

The function reads the status index a bounded page at a time, checks the output and failure
objects ingest recorded, and writes outcomes with the same conditional writes as the results
function. Its role may do exactly that: Query the one index, read and UpdateItem the table,
list and read the endpoint's output bucket where SageMaker writes outputs and failures, and
(layout 2) keep its review's progress in its own state table.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lambdas.common.contract import RECONCILER_STATE_KEY, STATUS_SHARD_INDEX, Env, Service
from lambdas.common.deadlines import DEADLINE_SETTINGS, SUBMITTED_MARGIN
from stacks.config import StackConfig
from stacks.function import PipelineFunction, removal_policy
from stacks.ingest import INGEST_QUEUE_RETENTION
from stacks.nag import acknowledge, objects_of, wildcard_resource
from stacks.queues import DEAD_LETTER_RETENTION
from stacks.results import outcome_environment
from stacks.storage import read_indexes

MAX_TIMEOUT_SECONDS = 300
MEMORY_MB = 256
# One run reads at most this many records, a page at a time (docs/stack.md, the Reconciler's costs).
PAGE_SIZE = 50
MAX_RECORDS_PER_RUN = 500


class Reconciler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        table: dynamodb.ITable,
        endpoint_name: str,
        output_bucket: s3.IBucket | None,
        object_prefixes: list[str],
    ) -> None:
        """``object_prefixes``: where in ``output_bucket`` outputs and failures are written
        (``[""]``: anywhere, for an imported endpoint)."""
        super().__init__(scope, construct_id)
        every = Duration.minutes(config.reconcile_every_minutes)
        environment = {
            **outcome_environment(config, table, endpoint_name, output_bucket),
            Env.STATUS_INDEX: read_indexes(config.table_layout)[1],
            Env.REQUEST_TTL_SECONDS: str(config.request_ttl_seconds),
            Env.INVOCATION_TIMEOUT_SECONDS: str(config.invocation_timeout_seconds),
            Env.INGEST_QUEUE_RETENTION_SECONDS: str(int(INGEST_QUEUE_RETENTION.to_seconds())),
            Env.DEAD_LETTER_RETENTION_SECONDS: str(int(DEAD_LETTER_RETENTION.to_seconds())),
            Env.RECONCILE_PAGE_SIZE: str(PAGE_SIZE),
            Env.RECONCILE_MAX_RECORDS: str(MAX_RECORDS_PER_RUN),
            # the default margin; local-mode tests set a small one over it
            Env.SUBMITTED_MARGIN_SECONDS: str(int(SUBMITTED_MARGIN.total_seconds())),
        }
        self.deadline_settings = {name: environment[name] for name in DEADLINE_SETTINGS}
        self.state_table = None
        if read_indexes(config.table_layout)[1] == STATUS_SHARD_INDEX:
            self.state_table = self._state_table(config)
            environment[Env.RECONCILER_STATE_TABLE] = self.state_table.table_name
        if output_bucket is not None:
            environment[Env.OUTPUT_BUCKET] = output_bucket.bucket_name
        self.handler = PipelineFunction(
            self,
            "Function",
            config=config,
            service=Service.RECONCILER,
            description="Settles records with no outcome past their deadline",
            # a run ends before the next one starts (overlapping runs would still be safe:
            # every write is guarded by the record as read)
            timeout_seconds=min(MAX_TIMEOUT_SECONDS, int(every.to_seconds())),
            memory_mb=MEMORY_MB,
            environment=environment,
            retry_attempts=0,  # the next scheduled run is the retry
        )
        self.function = self.handler.function
        status_index = read_indexes(config.table_layout)[1]
        self.handler.allow(["dynamodb:Query"], [f"{table.table_arn}/index/{status_index}"])
        # BatchGetItem: the sharded status index holds keys only, the records are read by key;
        # GetItem: the review reads again a record that changed while it was looked at
        self.handler.allow(
            ["dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:GetItem"],
            [table.table_arn],
        )
        if self.state_table is not None:
            self.handler.allow(
                ["dynamodb:GetItem", "dynamodb:PutItem"], [self.state_table.table_arn]
            )
        if output_bucket is not None:
            self._allow_reads(output_bucket, object_prefixes)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Runs the reconciler",
            schedule=events.Schedule.rate(every),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )

    def _state_table(self, config: StackConfig) -> dynamodb.Table:
        """One item: how far the review of the sharded status index has gone. Its own table,
        so that every item of the results table is a record."""
        return dynamodb.Table(
            self,
            "StateTable",
            partition_key=dynamodb.Attribute(
                name=RECONCILER_STATE_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy(config),
        )

    def _allow_reads(self, bucket: s3.IBucket, prefixes: list[str]) -> None:
        # With ListBucket, HeadObject of a missing key answers 404 instead of 403: "no object
        # yet" and "not allowed" stay apart (DESIGN "IAM and deploy facts").
        self.handler.allow(["s3:ListBucket"], [bucket.bucket_arn])
        patterns = [f"{prefix}*" for prefix in prefixes]
        self.handler.allow(["s3:GetObject"], [bucket.arn_for_objects(p) for p in patterns])
        for pattern in patterns:
            acknowledge(
                self.handler.role,
                wildcard_resource(objects_of(bucket, pattern)),
                "SageMaker names each output and failure object per request under its path "
                "(the input's folder and the id, or a random <uuid>.out); the reconciler reads "
                "the ones ingest recorded, so the grant covers the endpoint's "
                "output and failure prefixes (GetObject only).",
            )
