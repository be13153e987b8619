"""The contract between the stack and its functions: one place for every shared name and limit.

``stacks/`` writes these names into the template (function environments, stack outputs, table
schema); ``lambdas/`` reads them back; the CLI and local mode find resources by them. A name
changed here changes on both sides at once, and ``tests/infra`` checks that each function's
environment in the synthesized template is exactly what its config model reads.

This module ships in every function's asset (``lambdas/common``): it imports nothing beyond
the standard library, so it costs nothing at cold start.
"""

from __future__ import annotations

from enum import StrEnum

# --- limits of the InvokeEndpointAsync API (sagemaker-runtime service model) -----------------
ONE_GIB = 1024**3
MAX_INPUT_BYTES = ONE_GIB  # "payload size of up to 1 GB" (asynchronous inference overview)
# CustomAttributes travel in one header: at most 1024 visible US-ASCII characters.
CUSTOM_ATTRIBUTES_MAX_CHARS = 1024
REQUEST_TTL_SECONDS_MIN = 60
REQUEST_TTL_SECONDS_MAX = 21_600
REQUEST_TTL_SECONDS_DEFAULT = 21_600
INVOCATION_TIMEOUT_SECONDS_MIN = 1
INVOCATION_TIMEOUT_SECONDS_MAX = 3_600
INVOCATION_TIMEOUT_SECONDS_DEFAULT = 900

# --- this project's own rules shared by stack and functions ------------------------------------
# The results function stores at most this much of an output in the record (DynamoDB items are
# capped at 400 KB, and a record is copied into indexes); a larger read limit is refused.
INLINE_RESULT_CAP_BYTES = 64 * 1024
# InvokeEndpointAsync's inline Body holds at most this many bytes (sagemaker-runtime model, 2026).
INLINE_INPUT_CAP_BYTES = 128_000
# The custom attribute the ingest function adds itself; configuration may not set it.
TRACE_ID_ATTRIBUTE = "trace_id"
# S3 reports user-metadata keys in lower case without this prefix.
USER_METADATA_PREFIX = "x-amz-meta-"

# --- the stack -------------------------------------------------------------------------------
# The stack's name unless configured otherwise; the CLI looks for this stack by default.
DEFAULT_STACK_NAME = "AsyncInference"

# --- the results table -----------------------------------------------------------------------
PARTITION_KEY = "inference_id"
TTL_ATTRIBUTE = "expires_at"
# Layout 1 (before issue 15): both indexes project ALL; by_status is (status, updated_at), so
# every write moves its entry and each status is one partition value (hot at a few hundred
# files per second). Kept so that a deployed table can step to layout 2 one index at a time.
INPUT_LOCATION_INDEX = "by_input_location"
STATUS_INDEX = "by_status"
# Layout 2: KEYS_ONLY indexes (readers fetch whole items by key). by_input_keys is
# (input_location, created_at), written once per file, by the claim. by_status_shard is
# (status_shard, status_time): status_shard is the record's status class and one of 16 shards
# of its id ("OPEN#07", "COMPLETED#07", "FAILED#07"), status_time the time of the write that
# filed it there. The claim files a record under OPEN (PENDING and SUBMITTED: SUBMITTED moves
# nothing), its outcome moves it to COMPLETED or FAILED (an index delete plus a put: 2 write
# units, bench/partitions.py). So a listing of one status reads only its class's 16
# partitions: open records are bounded by what is in flight, never by the table's finished
# records (issue 23). Sixteen shards keep each partition value far below DynamoDB's 1,000
# write units per second.
INPUT_KEYS_INDEX = "by_input_keys"
STATUS_SHARD_INDEX = "by_status_shard"
STATUS_SHARD_ATTRIBUTE = "status_shard"
STATUS_TIME_ATTRIBUTE = "status_time"
STATUS_SHARDS = 16
OPEN_GROUP = "OPEN"
# Each index's (partition key, sort key, projection), all string keys: what the stack declares
# and what the tests and benchmarks create.
INDEX_KEYS: dict[str, tuple[str, str, str]] = {
    INPUT_LOCATION_INDEX: ("input_location", "created_at", "ALL"),
    STATUS_INDEX: ("status", "updated_at", "ALL"),
    INPUT_KEYS_INDEX: ("input_location", "created_at", "KEYS_ONLY"),
    STATUS_SHARD_INDEX: (STATUS_SHARD_ATTRIBUTE, STATUS_TIME_ATTRIBUTE, "KEYS_ONLY"),
}
# The release before issue 23 filed every record, whatever its status, under its bare shard
# ("00".."15") at its claim's time and never moved it. Records it wrote keep those values until
# an outcome moves them to their class, so readers still look there (WRITE_ONCE_PARTITIONS).


def shard_of(inference_id: str) -> int:
    """A stable shard in ``range(STATUS_SHARDS)``: ids are sha256 hex, so uniform; anything
    else still maps to a valid shard."""
    try:
        return int(inference_id[:8], 16) % STATUS_SHARDS
    except ValueError:
        return sum(inference_id.encode()) % STATUS_SHARDS


def status_group(status: str) -> str:
    """The class a status is filed under: ``OPEN`` (PENDING, SUBMITTED), COMPLETED, FAILED."""
    return status if status in ("COMPLETED", "FAILED") else OPEN_GROUP


def status_shard(inference_id: str, status: str) -> str:
    """The record's ``status_shard`` in ``status``: its class and its shard."""
    return f"{status_group(status)}#{shard_of(inference_id):02d}"


# The reconciler's state table (one item: how far it has reviewed the shards, review.py).
RECONCILER_STATE_KEY = "name"

# the previous release's write-once values (any status): read until no record is left there
WRITE_ONCE_PARTITIONS = tuple(f"{shard:02d}" for shard in range(STATUS_SHARDS))


def group_partitions(status: str) -> list[str]:
    """The ``status_shard`` values of ``status``'s class, one per shard."""
    return [f"{status_group(status)}#{shard:02d}" for shard in range(STATUS_SHARDS)]


# --- outgoing events (stacks/events_out.py; README "Events out") ----------------------------
EVENTS_SOURCE = "asyncinfer"
DETAIL_TYPE_COMPLETED = "Inference Completed"
DETAIL_TYPE_FAILED = "Inference Failed"

# --- jobs (lambdas/jobs, stacks/jobs.py; docs/jobs.md) ----------------------------------------
DETAIL_TYPE_JOB_COMPLETED = "Job Completed"
JOBS_PREFIX_DEFAULT = "jobs/"
# A manifest is <jobs_prefix><name>.manifest.json (SageMaker's ManifestFile format).
MANIFEST_SUFFIX = ".manifest.json"
# The most entries one manifest may name: its entries are resolved by one invocation.
JOB_MAX_ENTRIES = 100_000
# The jobs table: pk + sk; the job's header, its counter shards and its members (lambdas/jobs).
JOBS_PARTITION_KEY = "pk"
JOBS_SORT_KEY = "sk"
# A sparse index of job headers only, newest first (`asyncinfer jobs`).
JOBS_LIST_INDEX = "by_created"
JOBS_LIST_KEY = "listing"
JOBS_LIST_VALUE = "JOB"
JOBS_CREATED_ATTRIBUTE = "created_at"
# In the output bucket: <jobs_prefix><name>/results.jsonl and the resolved entries beside it.
JOB_RESULTS_FILE = "results.jsonl"
JOB_ENTRIES_FILE = "entries.jsonl"


def job_folder(jobs_prefix: str, name: str) -> str:
    """The output bucket's folder of one job: its results file and resolved entries."""
    return f"{jobs_prefix}{name}/"


# --- metrics ---------------------------------------------------------------------------------
METRICS_NAMESPACE = "AsyncInference"


class OutputNaming(StrEnum):
    """The ``output_naming`` setting: where SageMaker writes an input's output.

    The stack writes it into the ingest function's environment and a stack output (the CLI
    prints the expected location from it); ``lambdas/common/output_naming.py`` has the rule.
    """

    INPUT = "input"  # beside the input's path: extension from the key's folder, our Filename
    SERVICE = "service"  # neither member: SageMaker names the output itself


class Service(StrEnum):
    """Each function's Powertools service name: its metrics' ``service`` dimension and log key."""

    INGEST = "ingest"
    RESULTS = "results"
    RECONCILER = "reconciler"
    JOBS = "jobs"


class Env(StrEnum):
    """Environment variable names the stack sets and the functions' config models read."""

    TABLE_NAME = "TABLE_NAME"
    ENDPOINT_NAME = "ENDPOINT_NAME"
    RETENTION_DAYS = "RETENTION_DAYS"
    # ingest
    INPUT_BUCKET = "INPUT_BUCKET"
    KEY_PREFIXES = "KEY_PREFIXES"
    KEY_SUFFIXES = "KEY_SUFFIXES"
    ACCEPT = "ACCEPT"
    DEFAULT_CONTENT_TYPE = "DEFAULT_CONTENT_TYPE"
    CONTENT_TYPE_MAP = "CONTENT_TYPE_MAP"
    CUSTOM_ATTRIBUTES = "CUSTOM_ATTRIBUTES"
    METADATA_ATTRIBUTES = "METADATA_ATTRIBUTES"
    INVOCATION_TIMEOUT_SECONDS = "INVOCATION_TIMEOUT_SECONDS"
    REQUEST_TTL_SECONDS = "REQUEST_TTL_SECONDS"
    MAX_INPUT_BYTES = "MAX_INPUT_BYTES"
    SUBMIT_CONCURRENCY = "SUBMIT_CONCURRENCY"
    OUTPUT_NAMING = "OUTPUT_NAMING"
    INLINE_INPUT_MAX_BYTES = "INLINE_INPUT_MAX_BYTES"
    # results
    INLINE_RESULT_MAX_BYTES = "INLINE_RESULT_MAX_BYTES"
    # reconciler (also reads TABLE_NAME, ENDPOINT_NAME, RETENTION_DAYS, INLINE_RESULT_MAX_BYTES,
    # REQUEST_TTL_SECONDS and INVOCATION_TIMEOUT_SECONDS)
    STATUS_INDEX = "STATUS_INDEX"
    OUTPUT_BUCKET = "OUTPUT_BUCKET"
    INGEST_QUEUE_RETENTION_SECONDS = "INGEST_QUEUE_RETENTION_SECONDS"
    DEAD_LETTER_RETENTION_SECONDS = "DEAD_LETTER_RETENTION_SECONDS"
    RECONCILE_PAGE_SIZE = "RECONCILE_PAGE_SIZE"
    RECONCILE_MAX_RECORDS = "RECONCILE_MAX_RECORDS"
    # where the reconciler keeps how far it has reviewed the status index's shards
    RECONCILER_STATE_TABLE = "RECONCILER_STATE_TABLE"
    # seconds added to a submitted request's TTL and invocation timeout before it is overdue
    # (default 1800: lambdas.common.deadlines.SUBMITTED_MARGIN); small only in local tests
    SUBMITTED_MARGIN_SECONDS = "SUBMITTED_MARGIN_SECONDS"
    # jobs (also reads TABLE_NAME, INPUT_BUCKET, OUTPUT_BUCKET, KEY_PREFIXES, KEY_SUFFIXES);
    # ingest reads JOBS_PREFIX (keys it never infers) and JOBS_QUEUE_URL (where it forwards
    # manifests when its own S3 notification covers them)
    JOBS_TABLE = "JOBS_TABLE"
    JOBS_PREFIX = "JOBS_PREFIX"
    JOBS_QUEUE_URL = "JOBS_QUEUE_URL"
    # seconds after a job starts when entries still without an outcome are settled as expired
    JOB_DEADLINE_SECONDS = "JOB_DEADLINE_SECONDS"


class StackOutput(StrEnum):
    """The stack's CloudFormation outputs: how the CLI, local mode and tests find resources."""

    INPUT_BUCKET_NAME = "InputBucketName"
    OUTPUT_BUCKET_NAME = "OutputBucketName"
    RESULTS_TABLE_NAME = "ResultsTableName"
    INPUT_LOCATION_INDEX_NAME = "InputLocationIndexName"
    STATUS_INDEX_NAME = "StatusIndexName"
    INGEST_QUEUE_URL = "IngestQueueUrl"
    INGEST_DEAD_LETTER_QUEUE_URL = "IngestDeadLetterQueueUrl"
    SUCCESS_TOPIC_ARN = "SuccessTopicArn"
    ERROR_TOPIC_ARN = "ErrorTopicArn"
    SUCCESS_DEAD_LETTER_QUEUE_URL = "SuccessDeadLetterQueueUrl"
    ERROR_DEAD_LETTER_QUEUE_URL = "ErrorDeadLetterQueueUrl"
    RESULTS_FAILURE_QUEUE_URL = "ResultsFailureQueueUrl"
    RESULTS_FUNCTION_NAME = "ResultsFunctionName"
    INGEST_FUNCTION_NAME = "IngestFunctionName"
    RECONCILER_FUNCTION_NAME = "ReconcilerFunctionName"
    ENDPOINT_NAME = "EndpointName"
    OUTPUT_PATH = "OutputPath"
    OUTPUT_NAMING = "OutputNaming"
    FAILURE_PATH = "FailurePath"
    # the largest input sent inline as Body (0: none); an inline input has no InputLocation
    INLINE_INPUT_MAX_BYTES = "InlineInputMaxBytes"
    # the reconciler's deadline settings as JSON ({Env name: value}): `asyncinfer reconcile`
    # judges overdue records by the stack's values, as the reconciler does
    RECONCILE_DEADLINES = "ReconcileDeadlines"
    # jobs (present when the stack has jobs: publish_events and an output bucket)
    JOBS_TABLE_NAME = "JobsTableName"
    JOBS_PREFIX = "JobsPrefix"
    JOBS_QUEUE_URL = "JobsQueueUrl"
    JOBS_DEAD_LETTER_QUEUE_URL = "JobsDeadLetterQueueUrl"
    JOBS_FUNCTION_NAME = "JobsFunctionName"


class LocalOutput(StrEnum):
    """Outputs only local mode adds: its topics deliver to the results function through queues
    (an asynchronous ``Invoke`` of the function, such as ``asyncinfer redrive`` sends, reaches
    the function through them too: ``asyncinfer.local.aws.server``)."""

    SUCCESS_DELIVERY_QUEUE_URL = "SuccessDeliveryQueueUrl"
    ERROR_DELIVERY_QUEUE_URL = "ErrorDeliveryQueueUrl"
