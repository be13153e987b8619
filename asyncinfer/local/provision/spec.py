"""What local mode runs, as read from the synthesized CDK template (names resolved locally).

The template reader builds these; the runtime, the event runner and the CLI consume them, so
the local pipeline has the same wiring, limits and environment as the deployed one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: the handler path and its environment as the template sets them."""

    name: str  # "ingest", "results", "reconciler" or "jobs"
    handler: str  # dotted path, e.g. "lambdas.ingest.handler.handler"
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    # LoggingConfig; Lambda's defaults when the template sets none. The application level
    # applies with the JSON format only (lambda_runner/log_levels.py).
    log_format: str = "Text"
    application_log_level: str = "INFO"
    system_log_level: str = "INFO"
    # ReservedConcurrentExecutions; None: the function draws on the account's unreserved pool
    reserved_concurrency: int | None = None

    @property
    def filtered_at(self) -> str | None:
        """The level below which Lambda drops the function's lines; None: nothing dropped."""
        return self.application_log_level.upper() if self.log_format.upper() == "JSON" else None


@dataclass(frozen=True)
class QueueSourceSpec:
    """An SQS event source mapping and the queue it reads (with its redrive policy)."""

    queue_url: str
    dead_letter_queue_url: str | None
    max_receive_count: int
    visibility_timeout_seconds: int
    batch_size: int
    batching_window_seconds: int
    maximum_concurrency: int
    report_batch_item_failures: bool
    function: FunctionSpec


@dataclass(frozen=True)
class TopicSourceSpec:
    """An SNS topic subscription to a function.

    Locally, notifications reach the function through ``delivery_queue_url`` (an SQS queue
    subscribed to the topic): the runner turns each message into a real SNS Lambda event.
    ``dead_letter_queue_url`` is where a message lands after ``max_attempts`` failed deliveries,
    as the subscription's redrive policy (plus the function's async retries) do on AWS.
    """

    topic_arn: str
    delivery_queue_url: str
    dead_letter_queue_url: str | None
    max_attempts: int
    function: FunctionSpec


@dataclass(frozen=True)
class ScheduleSourceSpec:
    """An EventBridge rule with a ``rate(...)`` schedule whose target is a function.

    ``period_seconds`` is the rule's rate; local mode may replace it with a shorter one
    (``LocalOptions.schedule_period_seconds``, a local-only speed-up for tests).
    ``max_attempts`` is 1 + the function's asynchronous retries (its EventInvokeConfig):
    EventBridge invokes a Lambda target asynchronously, so Lambda retries a failed run.
    """

    rule_arn: str
    schedule_expression: str  # as the template has it, e.g. "rate(15 minutes)"
    period_seconds: float
    max_attempts: int
    function: FunctionSpec


@dataclass(frozen=True)
class EndpointSpec:
    """The async endpoint's configuration, read from the template's EndpointConfig."""

    name: str
    output_path: str  # s3://bucket/prefix
    failure_path: str  # s3://bucket/prefix
    success_topic_arn: str | None
    error_topic_arn: str | None
    include_response_body: bool  # IncludeInferenceResponseIn contains SUCCESS_NOTIFICATION_TOPIC
    max_concurrent_invocations_per_instance: int
    instance_count: int
    model_url: str  # the model server: http://127.0.0.1:PORT


@dataclass(frozen=True)
class LocalPipelineSpec:
    region: str
    aws_endpoint_url: str  # the moto server
    runtime_endpoint_url: str  # the local SageMaker runtime
    outputs: dict[str, str]  # the stack outputs, by output name, resolved to local names
    ingest: QueueSourceSpec
    results: tuple[TopicSourceSpec, ...]
    endpoint: EndpointSpec
    # the other functions an SQS event source mapping invokes (the jobs function)
    queues: tuple[QueueSourceSpec, ...] = ()
    # dead-letter queues that are a function's async on-failure destination: they receive
    # Lambda's invocation records rather than the SNS envelope
    failure_destinations: tuple[str, ...] = ()
    # scheduled functions (the reconciler), as the template's EventBridge rules run them
    schedules: tuple[ScheduleSourceSpec, ...] = ()
