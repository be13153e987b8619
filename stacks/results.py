"""Success/error notifications -> results function -> the results table.

Two different failure paths, each ending in a watched queue:
- SNS cannot deliver to the function (throttled past SNS's retries, function deleted, ...):
  the subscription's redrive policy moves the message to that topic's dead-letter queue;
- the function was invoked and raised: Lambda retries the asynchronous invocation twice,
  then sends the event to the function's on-failure destination, the results failure queue.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from lambdas.common.contract import Env, Service
from stacks.config import StackConfig
from stacks.function import PipelineFunction
from stacks.nag import acknowledge, objects_of, wildcard_resource
from stacks.notifications import Topics
from stacks.queues import dead_letter_queue

ASYNC_RETRY_ATTEMPTS = 2


def outcome_environment(
    config: StackConfig,
    table: dynamodb.ITable,
    endpoint_name: str,
    output_bucket: s3.IBucket | None,
) -> dict[str, str]:
    """The settings of recording an outcome (``lambdas.common.outcomes.OutcomeConfig``), which
    the results function and the reconciler both read."""
    return {
        Env.TABLE_NAME: table.table_name,
        Env.ENDPOINT_NAME: endpoint_name,
        Env.RETENTION_DAYS: str(config.retention_days),
        # without a readable bucket, outputs stay in S3 and only their location is kept
        Env.INLINE_RESULT_MAX_BYTES: str(
            config.inline_result_max_bytes if output_bucket is not None else 0
        ),
    }


class Results(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        table: dynamodb.ITable,
        topics: Topics,
        endpoint_name: str,
        output_bucket: s3.IBucket | None,
        output_prefix: str,
    ) -> None:
        """``output_bucket``/``output_prefix``: where outputs the function may read inline are."""
        super().__init__(scope, construct_id)
        self.failure_queue = dead_letter_queue(self, "FailureQueue")
        self.handler = PipelineFunction(
            self,
            "Function",
            config=config,
            service=Service.RESULTS,
            description="Records each inference's outcome from the endpoint's notifications",
            timeout_seconds=config.results_timeout_seconds,
            memory_mb=config.results_memory_mb,
            environment=outcome_environment(config, table, endpoint_name, output_bucket),
            on_failure=destinations.SqsDestination(self.failure_queue),
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
        )
        self.function = self.handler.function
        self.handler.allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], [table.table_arn])
        if output_bucket is not None and config.inline_result_max_bytes > 0:
            outputs = f"{output_prefix}*"
            self.handler.allow(["s3:GetObject"], [output_bucket.arn_for_objects(outputs)])
            acknowledge(
                self.handler.role,
                wildcard_resource(objects_of(output_bucket, outputs)),
                "SageMaker writes each output under <S3OutputPath>, in a folder and under a name "
                "that vary per request (the input's folder and the id with output_naming=input, "
                "a random <uuid>.out otherwise); the function reads the one a notification names, "
                "so the grant covers the output prefix (GetObject only).",
            )
        self.success_dead_letter_queue = dead_letter_queue(self, "SuccessDeadLetterQueue")
        self.error_dead_letter_queue = dead_letter_queue(self, "ErrorDeadLetterQueue")
        for topic, queue in (
            (topics.success, self.success_dead_letter_queue),
            (topics.error, self.error_dead_letter_queue),
        ):
            subscription = topic.add_subscription(
                subscriptions.LambdaSubscription(self.function, dead_letter_queue=queue)
            )
            # the queue's policy (its child) lets the topic dead-letter: create it first, as
            # CloudFormation orders only by references and DependsOn (docs/operations.md)
            subscription.node.add_dependency(queue)
        for queue, role in (
            (self.success_dead_letter_queue, "the success topic subscription's redrive policy"),
            (self.error_dead_letter_queue, "the error topic subscription's redrive policy"),
            (self.failure_queue, "the function's on-failure destination (async invocations)"),
        ):
            acknowledge(
                queue,
                "AwsSolutions-SQS3",
                f"This queue is a dead-letter queue, named by {role}; cdk-nag only recognizes "
                "dead-letter queues named by another queue's redrive policy.",
            )
