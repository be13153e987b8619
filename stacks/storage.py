"""Where data rests: the input and output buckets, their access-log bucket, the results table."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lambdas.common.contract import (
    INDEX_KEYS,
    INPUT_KEYS_INDEX,
    INPUT_LOCATION_INDEX,
    PARTITION_KEY,
    STATUS_INDEX,
    STATUS_SHARD_INDEX,
    TTL_ATTRIBUTE,
)
from stacks.config import StackConfig, TableLayout
from stacks.function import removal_policy

OUTPUT_PREFIX = "outputs"
FAILURE_PREFIX = "failures"
ABORT_INCOMPLETE_UPLOADS_DAYS = 7

# The indexes of each layout step: consecutive steps differ by one index, as CloudFormation
# creates or deletes one global secondary index per stack update ("You can create or delete
# only one global secondary index per UpdateTable operation", DynamoDB API reference,
# UpdateTable GlobalSecondaryIndexUpdates). Changing an index's key or projection in place
# would be a delete plus a create of that name: two, so layout 2 uses new names.
LAYOUT_INDEXES: dict[TableLayout, tuple[str, ...]] = {
    TableLayout.V1: (INPUT_LOCATION_INDEX, STATUS_INDEX),
    TableLayout.ADD_STATUS_SHARD: (INPUT_LOCATION_INDEX, STATUS_INDEX, STATUS_SHARD_INDEX),
    TableLayout.DROP_STATUS: (INPUT_LOCATION_INDEX, STATUS_SHARD_INDEX),
    TableLayout.ADD_INPUT_KEYS: (INPUT_LOCATION_INDEX, STATUS_SHARD_INDEX, INPUT_KEYS_INDEX),
    TableLayout.V2: (STATUS_SHARD_INDEX, INPUT_KEYS_INDEX),
}


def read_indexes(layout: TableLayout) -> tuple[str, str]:
    """(input index, status index) that readers (CLI, reconciler) use in ``layout``: an index
    being added is not read until the next step, when it holds every record written since."""
    indexes = LAYOUT_INDEXES[layout]
    by_input = INPUT_LOCATION_INDEX if INPUT_LOCATION_INDEX in indexes else INPUT_KEYS_INDEX
    by_status = STATUS_INDEX if STATUS_INDEX in indexes else STATUS_SHARD_INDEX
    return by_input, by_status


class Storage(Construct):
    """Buckets (versioned, SSE-S3, private, TLS-only, logged) and the on-demand results table.

    The output bucket exists only when the stack creates the endpoint: an imported endpoint
    writes wherever its own config says.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.access_log_bucket: s3.Bucket | None = None  # made with the first logged bucket
        # An imported bucket is referenced, never modified here: its versioning, encryption and
        # policies stay its owner's (docs/fitting-in.md, "Use an existing input bucket").
        self.input_bucket: s3.IBucket = (
            s3.Bucket.from_bucket_name(self, "InputBucket", config.input_bucket_name)
            if config.input_bucket_name is not None
            else self._data_bucket("InputBucket", "input/")
        )
        self.output_bucket = (
            self._data_bucket("OutputBucket", "output/") if config.creates_endpoint else None
        )
        self.table = dynamodb.Table(
            self,
            "ResultsTable",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            # the outgoing events' source (stacks/events_out.py): old and new image, so a
            # filter can tell a terminal transition from a later refinement
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES if config.publish_events else None,
            removal_policy=removal_policy(config),
        )
        for index_name in LAYOUT_INDEXES[config.table_layout]:
            self._add_index(index_name)

    def _add_index(self, index_name: str) -> None:
        string = dynamodb.AttributeType.STRING
        partition, sort, projection = INDEX_KEYS[index_name]
        self.table.add_global_secondary_index(
            index_name=index_name,
            partition_key=dynamodb.Attribute(name=partition, type=string),
            sort_key=dynamodb.Attribute(name=sort, type=string),
            # KEYS_ONLY: an entry is ~0.3 KB whatever the record holds (the inline result stays
            # out), and writes that change no key leave the index alone; readers get the items
            # by key (BatchGetItem)
            projection_type=dynamodb.ProjectionType(projection),
        )

    def _log_bucket(self) -> s3.Bucket:
        """The access-log bucket, made with the first bucket that logs to it: with an imported
        input bucket and endpoint there is none (an empty log bucket fails cdk-nag's S1)."""
        if self.access_log_bucket is None:
            self.access_log_bucket = s3.Bucket(
                self,
                "AccessLogBucket",
                # SSE-S3: the only encryption S3 server access logging supports
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                enforce_ssl=True,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        expiration=Duration.days(self._config.access_log_expiration_days),
                        abort_incomplete_multipart_upload_after=Duration.days(
                            ABORT_INCOMPLETE_UPLOADS_DAYS
                        ),
                    )
                ],
                removal_policy=removal_policy(self._config),
            )
        return self.access_log_bucket

    def _data_bucket(self, construct_id: str, log_prefix: str) -> s3.Bucket:
        # Versioned: the inference id derives from the object version, so an overwritten key
        # is a new inference and the old version stays readable until it expires.
        return s3.Bucket(
            self,
            construct_id,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=self._log_bucket(),
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(
                        self._config.noncurrent_version_expiration_days
                    ),
                    abort_incomplete_multipart_upload_after=Duration.days(
                        ABORT_INCOMPLETE_UPLOADS_DAYS
                    ),
                )
            ],
            removal_policy=removal_policy(self._config),
        )
