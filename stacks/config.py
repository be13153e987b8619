"""Every setting of the CDK app, validated from CDK context before anything is synthesized.

Context comes from ``cdk.json`` (which lists every key with its default), from the CDK CLI
(``-c key=value``, always a string) and from ``python app.py -c key=value``. Strings are
coerced here: numbers and booleans as pydantic does, lists as JSON (``["a/","b/"]``) or
comma-separated text (``a/,b/``), mappings as JSON objects, and an empty string means "not
set". A wrong or missing value becomes a ``ConfigError`` whose message is one line naming the
key and the values it accepts.

``StackConfig`` declares the keys in sections (``# --- <section>``) that are the sections of
the configuration reference, docs/configuration.md, in the same order; each key's default,
accepted values and text there are the ones declared here (tests/unit/test_docs.py).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lambdas.common.contract import (
    CUSTOM_ATTRIBUTES_MAX_CHARS,
    DEFAULT_STACK_NAME,
    INLINE_INPUT_CAP_BYTES,
    INLINE_RESULT_CAP_BYTES,
    JOBS_PREFIX_DEFAULT,
    MANIFEST_SUFFIX,
    ONE_GIB,
    TRACE_ID_ATTRIBUTE,
    USER_METADATA_PREFIX,
    OutputNaming,
)
from lambdas.common.s3uri import split_s3_uri
from stacks.demo_model import SKLEARN_IMAGE_ACCOUNTS

# The only values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# Context keys of this app are snake_case; CDK's own keys (feature flags such as
# "@aws-cdk/...", "aws:cdk:..." and CLI keys with dashes) never are.
_SETTING_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_SHOWN_INPUT = 80

_ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
_BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]*)(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
_MIME_TYPE = r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class ConfigError(Exception):
    """The context does not describe a deployable stack; ``str(error)`` is one line."""


class EndpointMode(StrEnum):
    CREATE = "create"
    IMPORT = "import"


class RemovalChoice(StrEnum):
    RETAIN = "retain"
    DESTROY = "destroy"


class TableLayout(StrEnum):
    """``table_layout``: the results table's indexes (stacks/storage.py; docs/operations.md,
    "Migrating the results table"). CloudFormation creates or deletes one GSI per update, so a
    deployed layout-1 table reaches layout 2 through the steps in between, one deploy each."""

    V1 = "1"  # by_input_location + by_status, both ALL
    ADD_STATUS_SHARD = "1a"  # + by_status_shard (readers stay on by_status while it fills)
    DROP_STATUS = "1b"  # - by_status (readers on by_status_shard)
    ADD_INPUT_KEYS = "1c"  # + by_input_keys (readers stay on by_input_location)
    V2 = "2"  # - by_input_location: by_input_keys + by_status_shard


class EventSourceChoice(StrEnum):
    """``event_source``: how new objects reach the ingest queue (stacks/events_in.py)."""

    S3 = "s3"
    EVENTBRIDGE = "eventbridge"


class ManifestRoute(StrEnum):
    """How a manifest object reaches the jobs queue. A bucket's S3 notifications may not
    overlap for one event type (S3 user guide, "Configuring event notifications using object
    key name filtering"): when ingest's notification already covers the manifests, ingest
    forwards them; when it does not touch them, the jobs queue has its own notification."""

    EVENTBRIDGE = "eventbridge"  # a rule of their own: rules never conflict
    NOTIFICATION = "notification"
    FORWARD = "forward"


def manifest_route_for(jobs_prefix: str, prefixes: list[str], suffixes: list[str]) -> ManifestRoute:
    """With S3 notifications: FORWARD when one of ingest's filters covers every manifest,
    NOTIFICATION when none overlaps them; ``ValueError`` when one overlaps without covering."""
    filters = [(p, s) for p in prefixes or [""] for s in suffixes or [""]]
    if any(jobs_prefix.startswith(p) and MANIFEST_SUFFIX.endswith(s) for p, s in filters):
        return ManifestRoute.FORWARD
    overlapping = [
        (p, s)
        for p, s in filters
        if (p.startswith(jobs_prefix) or jobs_prefix.startswith(p))
        and (s.endswith(MANIFEST_SUFFIX) or MANIFEST_SUFFIX.endswith(s))
    ]
    if overlapping:
        raise ValueError(
            f"the key filters {overlapping} overlap the manifests' notification filter "
            f"({jobs_prefix}*{MANIFEST_SUFFIX}) without covering it; S3 rejects overlapping "
            "notifications"
        )
    return ManifestRoute.NOTIFICATION


class LogLevel(StrEnum):
    """``log_level``: the functions' application log level, applied by Lambda (advanced
    logging controls) and by Powertools. Nothing above INFO: the functions' metrics are
    embedded-metric-format log lines without a level, which Lambda files as INFO, so a WARN
    level would drop every metric (and the alarms and the dashboard built on them)."""

    DEBUG = "DEBUG"
    INFO = "INFO"


class SystemLogLevel(StrEnum):
    """``system_log_level``: which of Lambda's own log lines reach CloudWatch Logs."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"


def setting(default: Any, accepted: str, doc: str, **constraints: Any) -> Any:
    """A context key: its default, the values it accepts (for errors) and what it does."""
    return Field(default, description=doc, json_schema_extra={"accepted": accepted}, **constraints)


def _invalid(key: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_setting", "{message}", {"key": key, "message": message})


class StackConfig(BaseModel):
    """The validated settings; field names are the context keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    # --- The stack
    stack_name: str = setting(
        DEFAULT_STACK_NAME,
        "a CloudFormation stack name (a letter, then letters, digits or dashes; 128 at most)",
        "Name of the CloudFormation stack.",
        pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
    )
    removal_policy: RemovalChoice = setting(
        RemovalChoice.RETAIN,
        "retain, destroy",
        "What `cdk destroy` does with the buckets, the table and the log groups. `destroy` "
        "deletes them (buckets must be empty first).",
    )
    # --- The endpoint
    endpoint_mode: EndpointMode = setting(
        EndpointMode.CREATE,
        "create, import",
        "`create` deploys a model, endpoint config, async endpoint and autoscaling; `import` "
        "wires the pipeline to an existing async endpoint and its topics.",
    )
    endpoint_name: str | None = setting(
        None,
        "a SageMaker endpoint name (letters, digits, dashes; 63 at most)",
        "create: optional fixed name for the endpoint (default: generated). import: required, "
        "the existing endpoint.",
        pattern=_ENDPOINT_NAME,
    )
    success_topic_arn: str | None = setting(
        None,
        "an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)",
        "import only, required: the endpoint's success notification topic.",
        pattern=_TOPIC_ARN,
    )
    error_topic_arn: str | None = setting(
        None,
        "an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)",
        "import only, required: the endpoint's error notification topic.",
        pattern=_TOPIC_ARN,
    )
    output_bucket_name: str | None = setting(
        None,
        "an S3 bucket name",
        "import only, optional: the bucket of the endpoint's S3OutputPath, so the results "
        "function may read small outputs into the table.",
        pattern=_BUCKET_NAME,
    )
    endpoint_role_arn: str | None = setting(
        None,
        "an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
        "import only, optional: the imported endpoint's execution role. When set, the input "
        "bucket's policy lets it read the inputs (s3:GetObject), which every inference needs.",
        pattern=_ROLE_ARN,
    )
    model_image_uri: str | None = setting(
        None,
        "an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)",
        "create only: your serving image. Default: the SageMaker scikit-learn 1.2-1 CPU image of "
        "the stack's region, serving the demo model.",
    )
    model_data_url: str | None = setting(
        None,
        "an S3 URL of a model archive (s3://bucket/key.tar.gz)",
        "create only: your model archive. Default: the demo model, packaged from "
        "asyncinfer/model/ at synth time and uploaded as a CDK asset.",
    )
    instance_type: str = setting(
        "ml.m5.large",
        "a SageMaker instance type (ml.<family>.<size>)",
        "create only: the endpoint's instance type. Changing it replaces the endpoint (see "
        '"Change the instance type").',
        pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$",
    )
    min_instance_count: int = setting(
        0,
        "an integer >= 0, at most max_instance_count",
        "create only: autoscaling minimum; 0 scales the endpoint to zero when idle.",
        ge=0,
    )
    max_instance_count: int = setting(
        2, "an integer >= 1", "create only: autoscaling maximum.", ge=1
    )
    max_concurrent_invocations_per_instance: int = setting(
        4,
        "an integer from 1 to 1000",
        "create only: ClientConfig.MaxConcurrentInvocationsPerInstance.",
        ge=1,
        le=1000,
    )
    target_backlog_per_instance: float = setting(
        5.0,
        "a number > 0",
        "create only: the ApproximateBacklogSizePerInstance the target tracking policy keeps.",
        gt=0,
    )
    include_inference_response: bool = setting(
        True,
        "true, false",
        "create only: add IncludeInferenceResponseIn=[SUCCESS_NOTIFICATION_TOPIC], so outputs "
        "up to 128 KB arrive inside the success notification.",
    )
    # --- The input bucket and EventBridge
    input_bucket_name: str | None = setting(
        None,
        "an S3 bucket name",
        "An existing input bucket to use instead of creating one. The stack changes only its "
        "EventBridge delivery (merged with the bucket's other notifications); versioning, "
        'encryption and policy stay yours (see "Use an existing input bucket").',
        pattern=_BUCKET_NAME,
    )
    event_source: EventSourceChoice | None = setting(
        None,
        "s3, eventbridge",
        "How new objects reach the ingest queue. `s3`: the bucket's S3 event notification "
        "(only for a bucket the stack creates); `eventbridge`: S3 -> EventBridge -> a rule "
        "with the key filters -> the queue. Default: `s3` for a created bucket, `eventbridge` "
        "for an imported one.",
    )
    publish_events: bool = setting(
        True,
        "true, false",
        "Publish `Inference Completed` / `Inference Failed` events (the record as `detail`) "
        "on event_bus_name, from the table's stream through EventBridge Pipes.",
    )
    event_bus_name: str = setting(
        "default",
        "an EventBridge event bus name (letters, digits, . - _; 256 at most)",
        "The bus the outgoing events go to; `default` is the account's default bus.",
        pattern=r"^[A-Za-z0-9._\-/]{1,256}$",
    )
    # --- Ingest
    key_prefixes: list[str] = setting(
        [],
        "a JSON list or comma-separated list of key prefixes (none a prefix of another)",
        "Only objects under these prefixes are submitted; [] = every key.",
    )
    key_suffixes: list[str] = setting(
        [],
        "a JSON list or comma-separated list of key suffixes (none a suffix of another)",
        "Only objects with these suffixes are submitted; [] = every key.",
    )
    batch_size: int = setting(
        10,
        "an integer from 1 to 10000 (above 10 needs max_batching_window_seconds >= 1)",
        "Messages per ingest invocation (event source mapping BatchSize).",
        ge=1,
        le=10000,
    )
    max_batching_window_seconds: int = setting(
        0,
        "an integer from 0 to 300",
        "How long the event source mapping gathers a batch (MaximumBatchingWindowInSeconds).",
        ge=0,
        le=300,
    )
    max_concurrency: int = setting(
        5,
        "an integer from 2 to 1000",
        "ScalingConfig.MaximumConcurrency: concurrent ingest invocations, the pipeline's "
        "backpressure towards the endpoint.",
        ge=2,
        le=1000,
    )
    max_receive_count: int = setting(
        5,
        "an integer from 1 to 1000",
        "Deliveries of an ingest message before it moves to the ingest dead-letter queue.",
        ge=1,
        le=1000,
    )
    ingest_timeout_seconds: int = setting(
        60,
        "an integer from 1 to 900",
        "Ingest function timeout; the queue's visibility timeout is 6x this plus the batching "
        "window (at most 5700 s, within SQS's 12 h limit).",
        ge=1,
        le=900,
    )
    ingest_memory_mb: int = setting(
        512, "an integer from 128 to 10240", "Ingest function memory.", ge=128, le=10240
    )
    submit_concurrency: int = setting(
        10,
        "an integer from 1 to 100",
        "Parallel InvokeEndpointAsync calls within one ingest batch.",
        ge=1,
        le=100,
    )
    max_input_bytes: int = setting(
        ONE_GIB,
        f"an integer from 1 to {ONE_GIB}",
        "Larger objects are recorded FAILED at ingest (the async payload limit is 1 GB).",
        ge=1,
        le=ONE_GIB,
    )
    output_naming: OutputNaming = setting(
        OutputNaming.INPUT,
        "input, service",
        "Where outputs land. `input`: `<S3OutputPath>/<the input key's folder>/<28 hex digits of "
        'the inference id>.out` (S3OutputPathExtension and Filename, see "Where outputs '
        'land"); `service`: neither member, SageMaker names the output itself (based on '
        "the inference id). The stack output `OutputNaming` tells the CLI.",
    )
    inline_input_max_bytes: int = setting(
        INLINE_INPUT_CAP_BYTES,
        f"an integer from 0 to {INLINE_INPUT_CAP_BYTES}",
        "Inputs up to this size are read at the announced version and sent inline (Body), so "
        "the endpoint processes exactly the uploaded bytes; larger ones go by InputLocation. "
        "0 = always InputLocation.",
        ge=0,
        le=INLINE_INPUT_CAP_BYTES,
    )
    accept: str = setting(
        "application/json", "a MIME type", "Accept sent with every invocation.", pattern=_MIME_TYPE
    )
    default_content_type: str = setting(
        "application/octet-stream",
        "a MIME type",
        "ContentType when neither the object nor its extension says.",
        pattern=_MIME_TYPE,
    )
    content_type_map: dict[str, str] = setting(
        {},
        'a JSON object of extension to MIME type, e.g. {"csv": "text/csv"}',
        "Extension to ContentType, merged over the built-in defaults.",
    )
    custom_attributes: dict[str, str] = setting(
        {},
        "a JSON object of visible US-ASCII strings, 1024 characters at most in all",
        "Static CustomAttributes sent with every invocation (not trace_id, set by the function).",
    )
    metadata_attributes: list[str] = setting(
        [],
        "a JSON list or comma-separated list of S3 user-metadata keys",
        "x-amz-meta-* keys of the object copied into CustomAttributes.",
    )
    invocation_timeout_seconds: int = setting(
        900,
        "an integer from 1 to 3600",
        "InvocationTimeoutSeconds: how long the model may work on one request.",
        ge=1,
        le=3600,
    )
    request_ttl_seconds: int = setting(
        21600,
        "an integer from 60 to 21600",
        "RequestTTLSeconds: how long a request may wait in the endpoint's queue.",
        ge=60,
        le=21600,
    )
    # --- Results
    results_timeout_seconds: int = setting(
        30, "an integer from 1 to 900", "Results function timeout.", ge=1, le=900
    )
    results_memory_mb: int = setting(
        256, "an integer from 128 to 10240", "Results function memory.", ge=128, le=10240
    )
    inline_result_max_bytes: int = setting(
        16384,
        f"an integer from 0 to {INLINE_RESULT_CAP_BYTES}",
        "Outputs up to this size are stored in the record's `result`; 0 = never read S3.",
        ge=0,
        le=INLINE_RESULT_CAP_BYTES,
    )
    retention_days: int = setting(
        90,
        "an integer >= 0",
        "Records expire (DynamoDB TTL on expires_at) this many days after they are written; "
        "0 = keep.",
        ge=0,
    )
    table_layout: TableLayout = setting(
        TableLayout.V2,
        "2, 1c, 1b, 1a, 1",
        "The results table's indexes. New stacks: 2. A stack deployed before layout 2 steps "
        '1a, 1b, 1c, 2 in order, one deploy each (see "Migrating the results table").',
    )
    # --- Storage, logs and monitoring
    noncurrent_version_expiration_days: int = setting(
        30,
        "an integer from 1 to 3650",
        "Old (noncurrent) object versions in the input and output buckets expire after this.",
        ge=1,
        le=3650,
    )
    access_log_expiration_days: int = setting(
        90,
        "an integer from 1 to 3650",
        "S3 server access logs expire after this.",
        ge=1,
        le=3650,
    )
    log_retention_days: int = setting(
        30,
        "one of " + ", ".join(str(days) for days in LOG_RETENTION_DAYS),
        "Retention of the functions' log groups.",
    )
    log_level: LogLevel = setting(
        LogLevel.INFO,
        "DEBUG, INFO",
        "The functions' application log level: Lambda's `ApplicationLogLevel` (JSON log format; "
        "lines below it are dropped before CloudWatch Logs ingests them) and "
        "`POWERTOOLS_LOG_LEVEL`. `INFO`: warnings, errors and what is off the happy path; "
        '`DEBUG` adds a line per file (see "Logs"). No higher level: the metrics are log lines '
        "without a level, which Lambda files as INFO, so `WARN` would drop them and the alarms "
        "built on them.",
    )
    system_log_level: SystemLogLevel = setting(
        SystemLogLevel.WARN,
        "DEBUG, INFO, WARN",
        "Lambda's `SystemLogLevel`. `WARN` leaves out the `START`/`END`/`REPORT` lines of every "
        "invocation (about 300 B each); `INFO` sends them (durations, memory, init).",
    )
    powertools_layer_version: int = setting(
        27,
        "an integer >= 1",
        "Version of the public layer AWSLambdaPowertoolsPythonV3-python313-arm64.",
        ge=1,
    )
    alarm_email: str | None = setting(
        None,
        "an email address",
        "When set: an SNS alarm topic with this email subscribed receives every alarm.",
        pattern=_EMAIL,
    )
    oldest_message_alarm_seconds: int = setting(
        900,
        "an integer >= 60",
        "Alarm when the oldest ingest message is older than this.",
        ge=60,
    )
    reconcile_every_minutes: int = setting(
        15,
        "an integer from 1 to 1440",
        "How often the reconciler settles records with no outcome past their deadline.",
        ge=1,
        le=1440,
    )
    # --- Jobs
    jobs: bool = setting(
        True,
        "true, false",
        "Run jobs: a manifest in, one results file and one `Job Completed` event out. Jobs "
        "also need publish_events and an output bucket.",
    )
    jobs_prefix: str = setting(
        JOBS_PREFIX_DEFAULT,
        "a key prefix ending in /",
        "Input-bucket keys `<jobs_prefix><name>.manifest.json` start jobs; objects under it "
        "are never inferred.",
        pattern=r"^([A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]*/)?$",
    )
    job_deadline_seconds: int | None = setting(
        None,
        "an integer >= 60",
        "After this long, a job's entries still without an outcome (never ingested) are "
        "settled as expired. Default: the longest an input can take to reach an outcome.",
        ge=60,
    )

    @field_validator(
        "endpoint_name",
        "success_topic_arn",
        "error_topic_arn",
        "output_bucket_name",
        "endpoint_role_arn",
        "model_image_uri",
        "model_data_url",
        "alarm_email",
        "input_bucket_name",
        "event_source",
        "job_deadline_seconds",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("key_prefixes", "key_suffixes", "metadata_attributes", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return _json(text, list)
        return [item.strip() for item in text.split(",") if item.strip()]

    @field_validator("content_type_map", "custom_attributes", mode="before")
    @classmethod
    def _parse_mapping(cls, value: Any) -> Any:
        return _json(value.strip(), dict) if isinstance(value, str) else value

    @field_validator("key_prefixes", "key_suffixes", "metadata_attributes")
    @classmethod
    def _non_empty_items(cls, items: list[str]) -> list[str]:
        if any(not item for item in items):
            raise ValueError("an item is empty")
        return items

    @field_validator("model_image_uri")
    @classmethod
    def _ecr_image(cls, uri: str | None) -> str | None:
        if uri is not None and not ECR_IMAGE.match(uri):
            raise ValueError("not an ECR image URI")
        return uri

    @field_validator("model_data_url")
    @classmethod
    def _s3_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            bucket, _ = split_s3_uri(url)
        except ValueError:
            raise ValueError("not an s3://bucket/key URL") from None
        if not re.match(_BUCKET_NAME, bucket):
            raise ValueError("not an s3://bucket/key URL")
        return url

    @field_validator("content_type_map")
    @classmethod
    def _mime_values(cls, mapping: dict[str, str]) -> dict[str, str]:
        for extension, mime in mapping.items():
            if not extension or "/" in extension:
                raise ValueError(f"{extension!r} is not a file extension")
            if not re.match(_MIME_TYPE, mime):
                raise ValueError(f"{mime!r} is not a MIME type")
        return mapping

    @field_validator("custom_attributes")
    @classmethod
    def _visible_ascii(cls, attributes: dict[str, str]) -> dict[str, str]:
        for text in (*attributes, *attributes.values()):
            if not text or not all("!" <= character <= "~" for character in text):
                raise ValueError(f"{text!r} is not visible US-ASCII")
        if TRACE_ID_ATTRIBUTE in attributes:
            raise ValueError(f"{TRACE_ID_ATTRIBUTE!r} is set by the ingest function")
        # "k=v" pairs joined by commas: the header the ingest function sends
        size = sum(len(key) + len(value) + 1 for key, value in attributes.items())
        if size + max(len(attributes) - 1, 0) > CUSTOM_ATTRIBUTES_MAX_CHARS:
            raise ValueError(f"longer than {CUSTOM_ATTRIBUTES_MAX_CHARS} characters")
        return attributes

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError("CloudWatch Logs does not offer this retention")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.endpoint_mode is EndpointMode.IMPORT:
            required = {
                "endpoint_name": self.endpoint_name,
                "success_topic_arn": self.success_topic_arn,
                "error_topic_arn": self.error_topic_arn,
            }
            for key, value in required.items():
                if value is None:
                    raise _invalid(key, "is required when endpoint_mode=import")
            for key in ("model_image_uri", "model_data_url"):
                if getattr(self, key) is not None:
                    raise _invalid(key, "is only used with endpoint_mode=create")
        else:
            for key in (
                "success_topic_arn",
                "error_topic_arn",
                "output_bucket_name",
                "endpoint_role_arn",
            ):
                if getattr(self, key) is not None:
                    raise _invalid(key, "is only used with endpoint_mode=import")
        if self.min_instance_count > self.max_instance_count:
            raise _invalid("min_instance_count", "is larger than max_instance_count")
        if self.batch_size > 10 and self.max_batching_window_seconds < 1:
            raise _invalid(
                "max_batching_window_seconds", "must be >= 1 when batch_size is above 10"
            )
        _no_overlap("key_prefixes", self.key_prefixes, str.startswith)
        _no_overlap("key_suffixes", self.key_suffixes, str.endswith)
        clashes = sorted(set(self.custom_attributes) & set(self.metadata_keys))
        if clashes:
            raise _invalid("metadata_attributes", f"{clashes} are also custom_attributes keys")
        if TRACE_ID_ATTRIBUTE in self.metadata_keys:
            raise _invalid("metadata_attributes", f"{TRACE_ID_ATTRIBUTE!r} is set by the function")
        return self

    @model_validator(mode="after")
    def _manifests_routable(self) -> Self:
        inside = [
            p for p in self.key_prefixes if self.jobs_prefix and p.startswith(self.jobs_prefix)
        ]
        if inside:
            raise _invalid(
                "key_prefixes", f"{inside} are under jobs_prefix, whose objects are never inputs"
            )
        if self.jobs_enabled and self.ingest_event_source is EventSourceChoice.S3:
            try:
                manifest_route_for(self.jobs_prefix, self.key_prefixes, self.key_suffixes)
            except ValueError as error:
                raise _invalid("key_suffixes", str(error)) from error
        return self

    @model_validator(mode="after")
    def _event_source_fits_bucket(self) -> Self:
        if self.input_bucket_name is not None and self.event_source is EventSourceChoice.S3:
            raise _invalid(
                "event_source",
                "must be eventbridge for an imported input bucket (its one S3 notification "
                "configuration belongs to its owner)",
            )
        return self

    @property
    def metadata_keys(self) -> list[str]:
        """User-metadata keys as S3 reports them: lower case, without ``x-amz-meta-``."""
        return [key.lower().removeprefix(USER_METADATA_PREFIX) for key in self.metadata_attributes]

    @property
    def imports_input_bucket(self) -> bool:
        return self.input_bucket_name is not None

    @property
    def ingest_event_source(self) -> EventSourceChoice:
        """``event_source`` with its default resolved (see the setting)."""
        if self.event_source is not None:
            return self.event_source
        return EventSourceChoice.EVENTBRIDGE if self.imports_input_bucket else EventSourceChoice.S3

    @property
    def jobs_enabled(self) -> bool:
        """Jobs publish on the bus (publish_events) and write to the output bucket."""
        has_output_bucket = self.creates_endpoint or self.output_bucket_name is not None
        return self.jobs and bool(self.jobs_prefix) and self.publish_events and has_output_bucket

    @property
    def manifest_route(self) -> ManifestRoute:
        """How manifests reach the jobs queue (stacks/jobs.py)."""
        if self.ingest_event_source is EventSourceChoice.EVENTBRIDGE:
            return ManifestRoute.EVENTBRIDGE
        return manifest_route_for(self.jobs_prefix, self.key_prefixes, self.key_suffixes)

    @property
    def creates_endpoint(self) -> bool:
        return self.endpoint_mode is EndpointMode.CREATE

    @property
    def uses_demo_model(self) -> bool:
        return self.creates_endpoint and self.model_data_url is None

    @property
    def uses_demo_image(self) -> bool:
        return self.creates_endpoint and self.model_image_uri is None

    @property
    def ingest_visibility_timeout_seconds(self) -> int:
        """AWS's rule for SQS event sources: six times the function timeout, plus the window."""
        return 6 * self.ingest_timeout_seconds + self.max_batching_window_seconds

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> StackConfig:
        """Validate this app's keys of a CDK context; raise ConfigError with one line."""
        settings = {key: value for key, value in context.items() if _SETTING_KEY.match(key)}
        # an empty value means "not set" (the key's default), for every key alike
        settings = {
            key: value
            for key, value in settings.items()
            if value is not None and not (isinstance(value, str) and not value.strip())
        }
        try:
            return cls.model_validate(settings)
        except ValidationError as error:
            raise ConfigError(describe(error)) from None


def _json(text: str, expected: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg})") from None
    if not isinstance(value, expected):
        raise ValueError("a JSON list was expected" if expected is list else "a JSON object")
    return value


def _no_overlap(key: str, items: list[str], covers: Callable[[str, str], bool]) -> None:
    """S3 rejects two notification filters that can match the same key."""
    for index, item in enumerate(items):
        for other in items[index + 1 :]:
            if covers(item, other) or covers(other, item):
                raise _invalid(key, f"{item!r} and {other!r} overlap; S3 rejects both filters")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_INPUT else text[: _MAX_SHOWN_INPUT - 3] + "..."


def accepted_values(key: str) -> str:
    extra = StackConfig.model_fields[key].json_schema_extra
    return str(extra["accepted"]) if isinstance(extra, dict) else ""


def describe(error: ValidationError) -> str:
    """The first problem as one line: the key, what it got, and what it accepts."""
    problems = error.errors()
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    if first["type"] == "invalid_setting":
        key = str(first["ctx"]["key"])
        return (
            f"context key {key!r} {first['ctx']['message']}: accepted values: "
            f"{accepted_values(key)}{more}"
        )
    key = str(first["loc"][0])
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, StackConfig.model_fields, n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else "accepted keys: " + ", ".join(sorted(StackConfig.model_fields))
        )
        return f"context key {key!r} is not a setting of this app: {hint}{more}"
    detail = first["msg"].removeprefix("Value error, ")
    return (
        f"context key {key}={_shown(first['input'])} is not valid ({detail}): accepted values: "
        f"{accepted_values(key)}{more}"
    )


def check_deploy_region(config: StackConfig, region: str | None) -> None:
    """Fail early when the CLI's target region has no demo image (unless one is configured)."""
    if region and config.uses_demo_image and region not in SKLEARN_IMAGE_ACCOUNTS:
        raise ConfigError(
            f"context key 'model_image_uri' is required in region {region}: the demo's "
            "scikit-learn image is mapped for " + ", ".join(sorted(SKLEARN_IMAGE_ACCOUNTS))
        )
