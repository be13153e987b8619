"""What the parent asks a child to measure, and what the child reports back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

WAIT_SECONDS = 120.0
CHILD_TIMEOUT_SECONDS = 900.0
OBJECT_BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
OBJECT_CONTENT_TYPE = "application/json"


class Plan(BaseModel):
    """What the parent tells a child to measure."""

    function: Literal["ingest", "results"]
    region: str
    admin_url: str
    input_bucket: str
    ingest_queue_url: str
    success_delivery_queue_url: str
    success_topic_arn: str
    table_name: str
    memory_mb: int
    added_latency_ms: int
    batch_size: int
    warmup: int
    repetitions: int
    invoke_samples: int
    profile_repetitions: int
    submitted_ids: list[str] = Field(default_factory=list)


Profile = list[tuple[str, float]]


class IngestMeasurements(BaseModel):
    # figure 1, with the runtime's added latency
    batch_seconds: list[float]
    naive_batch_seconds: list[float]
    bare_batch_seconds: list[float]  # the same calls at the same concurrency, no handler
    invoke_seconds: list[float]
    # figure 2, without added latency: a batch at the handler's concurrency on both sides ...
    overhead_batch_handler_seconds: list[float]
    overhead_batch_bare_seconds: list[float]
    # ... and one record per invocation against its calls made one after another
    overhead_single_handler_seconds: list[float]
    overhead_single_bare_seconds: list[float]
    # an invocation that makes no call (an s3:TestEvent): the fixed cost of an invocation
    fixed_seconds: list[float]
    submit_concurrency: int
    log_bytes_per_record: float
    items: dict[str, dict[str, Any]]  # status -> a stored item (DynamoDB JSON)
    handler_profile: Profile
    submit_profile: Profile
    submitted_ids: list[str]


# The timed samples, in the order taken, that make a round when cut in consecutive parts.
INGEST_SAMPLES = (
    "batch_seconds",
    "naive_batch_seconds",
    "bare_batch_seconds",
    "invoke_seconds",
    "overhead_batch_handler_seconds",
    "overhead_batch_bare_seconds",
    "overhead_single_handler_seconds",
    "overhead_single_bare_seconds",
    "fixed_seconds",
)
RESULTS_SAMPLES = ("handler_seconds", "bare_seconds", "fixed_seconds")


class ResultsMeasurements(BaseModel):
    handler_seconds: list[float]
    bare_seconds: list[float]
    fixed_seconds: list[float]  # a TestNotification: parsed, logged, no call
    inline_from_notification: bool
    log_bytes_per_invocation: float
    items: dict[str, dict[str, Any]]
    profile: Profile
