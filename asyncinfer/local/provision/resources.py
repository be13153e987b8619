"""Creates the template's resources in the local AWS APIs and describes what local mode runs.

Resources are created in CloudFormation's order (``provision.order``), after the creation-time
checks (``provision.creation_checks``) passed (under IAM).

Buckets (with versioning), queues (with redrive policies), topics, the results table (keys,
indexes, TTL) and the bucket notification are created as the template defines them; Lambda
subscriptions to topics become SQS delivery queues subscribed to those topics, which the event
runner turns back into SNS Lambda events. Each delivery queue is tagged with the function and the
topic it stands in for, so that the local AWS server can hand an asynchronous ``Invoke`` of the
function (``asyncinfer redrive``) to the runner through it (``aws.server``). EventBridge rules
with a ``rate(...)`` schedule and a function target become ``ScheduleSourceSpec``s the runner
fires on that schedule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from asyncinfer.local.aws.eventbridge import (
    apply_bucket_notifications,
    create_imported_bucket,
    create_rule,
)
from asyncinfer.local.aws.server import FUNCTION_TAG, TOPIC_TAG
from asyncinfer.local.constants import ACCOUNT_ID
from asyncinfer.local.provision.order import CreationOrder
from asyncinfer.local.provision.spec import (
    EndpointSpec,
    FunctionSpec,
    LocalPipelineSpec,
    QueueSourceSpec,
    ScheduleSourceSpec,
    TopicSourceSpec,
)
from asyncinfer.local.provision.template import PARTITION, Template, TemplateError, rate_seconds
from lambdas.common.contract import LocalOutput

INGEST_HANDLER = "lambdas.ingest.handler.handler"
RESULTS_HANDLER = "lambdas.results.handler.handler"
RECONCILER_HANDLER = "lambdas.reconciler.handler.handler"
JOBS_HANDLER = "lambdas.jobs.handler.handler"
FUNCTION_NAMES = {
    INGEST_HANDLER: "ingest",
    RESULTS_HANDLER: "results",
    RECONCILER_HANDLER: "reconciler",
    JOBS_HANDLER: "jobs",
}
# EventBridge rate expressions: "rate(value unit)", unit minute(s), hour(s) or day(s)
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html)
LAMBDA_DEFAULT_RETRIES = 2  # Lambda's asynchronous invocation retries, when not configured
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30


class Provisioner:
    def __init__(self, template: Template, *, aws_endpoint_url: str, region: str) -> None:
        self.template = template
        self.aws_endpoint_url = aws_endpoint_url
        self.region = region
        self._session = boto3.session.Session(region_name=region)

    def _client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.aws_endpoint_url)  # type: ignore[call-overload]

    def create_resources(self) -> None:
        """Each resource local mode creates, in CloudFormation's order (``provision.order``)."""
        creators: dict[str, Callable[[str, Mapping[str, Any]], None]] = {
            "AWS::S3::Bucket": self._create_bucket,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::DynamoDB::Table": self._create_table,
            "Custom::S3BucketNotifications": self._configure_bucket_notifications,
            "AWS::Events::Rule": self._create_rule,
        }
        for logical_id in CreationOrder(self.template.resources).order:
            resource = self.template.resources[logical_id]
            creator = creators.get(resource["Type"])
            if creator is not None:
                creator(logical_id, resource.get("Properties", {}))

    def _create_bucket(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        s3 = self._client("s3")
        name = self.template.physical(logical_id).ref
        s3.create_bucket(Bucket=name)
        versioning = properties.get("VersioningConfiguration", {}).get("Status")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})

    def _create_queue(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        """A redrive policy's dead-letter queue is a dependency (GetAtt), so it exists."""
        attributes: dict[str, str] = {}
        for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
            if name in properties:
                attributes[name] = str(self.template.resolve(properties[name]))
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps(
                self.template.resolve(properties["RedrivePolicy"])
            )
        self._client("sqs").create_queue(
            QueueName=self.template.physical(logical_id).attributes["QueueName"],
            Attributes=attributes,
        )

    def _create_topic(self, logical_id: str, _: Mapping[str, Any]) -> None:
        name = self.template.physical(logical_id).attributes["TopicName"]
        self._client("sns").create_topic(Name=name)

    def _create_table(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        dynamodb = self._client("dynamodb")
        table = self.template.physical(logical_id).ref
        indexes = [
            {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index["Projection"],
            }
            for index in self.template.resolve(properties.get("GlobalSecondaryIndexes", []))
        ]
        arguments: dict[str, Any] = {
            "TableName": table,
            "KeySchema": self.template.resolve(properties["KeySchema"]),
            "AttributeDefinitions": self.template.resolve(properties["AttributeDefinitions"]),
            "BillingMode": "PAY_PER_REQUEST",
        }
        if indexes:
            arguments["GlobalSecondaryIndexes"] = indexes
        stream = properties.get("StreamSpecification")
        if stream:  # the source of the result-event pipes (asyncinfer/local/aws/pipes.py)
            arguments["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        dynamodb.create_table(**arguments)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    def _configure_bucket_notifications(
        self, logical_id: str, properties: Mapping[str, Any]
    ) -> None:
        """As CDK's custom resource does, merged into an imported bucket's configuration
        (asyncinfer/local/aws/eventbridge.py)."""
        s3 = self._client("s3")
        create_imported_bucket(self.template, properties, s3)
        apply_bucket_notifications(self.template, properties, s3, self._client("sqs"))

    def _create_rule(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        create_rule(self.template, logical_id, properties, self._client("events"))

    def build_spec(self, *, endpoint: EndpointSpec, runtime_endpoint_url: str) -> LocalPipelineSpec:
        """Reads the functions' wiring; creates and subscribes the topic delivery queues."""
        functions = self._functions()
        queue_sources = self._queue_sources(functions)
        ingest = next((q for q in queue_sources if q.function.name == "ingest"), None)
        if ingest is None:
            raise TemplateError(
                "the template has no SQS event source mapping for the ingest function"
            )
        results = self._topic_sources(functions)
        failure_destinations = tuple(
            sorted(
                {
                    queue_url
                    for function_id in functions
                    if (queue_url := self._on_failure_queue(function_id)[0]) is not None
                }
            )
        )
        outputs = self.template.outputs()
        for source in results:
            output = (
                LocalOutput.SUCCESS_DELIVERY_QUEUE_URL
                if source.topic_arn == endpoint.success_topic_arn
                else LocalOutput.ERROR_DELIVERY_QUEUE_URL
            )
            outputs[output] = source.delivery_queue_url
        return LocalPipelineSpec(
            region=self.region,
            aws_endpoint_url=self.aws_endpoint_url,
            runtime_endpoint_url=runtime_endpoint_url,
            outputs=outputs,
            ingest=ingest,
            queues=tuple(q for q in queue_sources if q is not ingest),
            results=tuple(results),
            endpoint=endpoint,
            failure_destinations=failure_destinations,
            schedules=tuple(self._schedule_sources(functions)),
        )

    def _functions(self) -> dict[str, tuple[FunctionSpec, Mapping[str, Any]]]:
        """Project functions by logical id (CDK's own helper functions are left out)."""
        found: dict[str, tuple[FunctionSpec, Mapping[str, Any]]] = {}
        for logical_id, properties in self.template.of_type("AWS::Lambda::Function"):
            handler = properties.get("Handler")
            if handler not in FUNCTION_NAMES:
                continue
            environment = self.template.resolve(
                properties.get("Environment", {}).get("Variables", {})
            )
            logging_config = properties.get("LoggingConfig", {})
            found[logical_id] = (
                FunctionSpec(
                    name=FUNCTION_NAMES[handler],
                    handler=handler,
                    environment={key: str(value) for key, value in environment.items()},
                    timeout_seconds=int(properties.get("Timeout", 3)),
                    memory_mb=int(properties.get("MemorySize", 128)),
                    log_format=logging_config.get("LogFormat", "Text"),
                    application_log_level=logging_config.get("ApplicationLogLevel", "INFO"),
                    system_log_level=logging_config.get("SystemLogLevel", "INFO"),
                    reserved_concurrency=_optional_int(properties, "ReservedConcurrentExecutions"),
                ),
                properties,
            )
        return found

    def _queue_attributes(self, queue_logical_id: str) -> Mapping[str, Any]:
        properties: Mapping[str, Any] = self.template.resources[queue_logical_id].get(
            "Properties", {}
        )
        return properties

    def _queue_url_for_arn(self, arn: str) -> str:
        for logical_id, _ in self.template.of_type("AWS::SQS::Queue"):
            physical = self.template.physical(logical_id)
            if physical.attributes["Arn"] == arn:
                return physical.ref
        raise TemplateError(f"no queue in the template has the ARN {arn}")

    def _queue_sources(
        self, functions: Mapping[str, tuple[FunctionSpec, Mapping[str, Any]]]
    ) -> list[QueueSourceSpec]:
        """Every SQS event source mapping of a project function (ingest, jobs)."""
        sources = []
        for _, mapping in self.template.of_type("AWS::Lambda::EventSourceMapping"):
            function_id = self.template.logical_id_of(mapping["FunctionName"])
            if function_id not in functions:
                continue
            queue_id = self.template.logical_id_of(mapping["EventSourceArn"])
            queue = self._queue_attributes(queue_id)
            redrive = self.template.resolve(queue.get("RedrivePolicy", {}))
            sources.append(
                QueueSourceSpec(
                    queue_url=self.template.physical(queue_id).ref,
                    dead_letter_queue_url=(
                        self._queue_url_for_arn(redrive["deadLetterTargetArn"]) if redrive else None
                    ),
                    max_receive_count=int(redrive.get("maxReceiveCount", 0)) if redrive else 0,
                    visibility_timeout_seconds=int(
                        queue.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT)
                    ),
                    batch_size=int(mapping.get("BatchSize", 10)),
                    batching_window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
                    maximum_concurrency=int(
                        mapping.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)
                    ),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in mapping.get("FunctionResponseTypes", []),
                    function=functions[function_id][0],
                )
            )
        return sources

    def _on_failure_queue(self, function_id: str) -> tuple[str | None, int]:
        """The function's async on-failure destination and its retry count."""
        for _, config in self.template.of_type("AWS::Lambda::EventInvokeConfig"):
            if self.template.logical_id_of(config["FunctionName"]) != function_id:
                continue
            destination = config.get("DestinationConfig", {}).get("OnFailure", {})
            queue_url = (
                self._queue_url_for_arn(self.template.resolve(destination["Destination"]))
                if destination
                else None
            )
            return queue_url, int(config.get("MaximumRetryAttempts", LAMBDA_DEFAULT_RETRIES))
        return None, LAMBDA_DEFAULT_RETRIES

    def _topic_sources(
        self, functions: Mapping[str, tuple[FunctionSpec, Mapping[str, Any]]]
    ) -> list[TopicSourceSpec]:
        sqs = self._client("sqs")
        sns = self._client("sns")
        sources = []
        for logical_id, subscription in self.template.of_type("AWS::SNS::Subscription"):
            if subscription.get("Protocol") != "lambda":
                continue
            function_id = self.template.logical_id_of(subscription["Endpoint"])
            if function_id not in functions:
                continue
            topic_arn = self.template.resolve(subscription["TopicArn"])
            on_failure_queue, retries = self._on_failure_queue(function_id)
            redrive = self.template.resolve(subscription.get("RedrivePolicy", {}))
            dead_letter_queue = on_failure_queue or (
                self._queue_url_for_arn(redrive["deadLetterTargetArn"]) if redrive else None
            )
            delivery_queue = sqs.create_queue(
                QueueName=f"{self.template.stack_name}-{logical_id}-delivery"[:80],
                Attributes={"VisibilityTimeout": str(functions[function_id][0].timeout_seconds)},
                tags={
                    FUNCTION_TAG: self.template.physical(function_id).attributes["Arn"],
                    TOPIC_TAG: topic_arn,
                },
            )["QueueUrl"]
            delivery_arn = sqs.get_queue_attributes(
                QueueUrl=delivery_queue, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=delivery_arn)
            sources.append(
                TopicSourceSpec(
                    topic_arn=topic_arn,
                    delivery_queue_url=delivery_queue,
                    dead_letter_queue_url=dead_letter_queue,
                    max_attempts=1 + retries,
                    function=functions[function_id][0],
                )
            )
        if not sources:
            raise TemplateError("the template subscribes no results function to a topic")
        return sources

    def endpoint_arn(self) -> str:
        """The endpoint's ARN, what ``sagemaker:InvokeEndpointAsync`` is authorized on."""
        for endpoint_id, _ in self.template.of_type("AWS::SageMaker::Endpoint"):
            return self.template.physical(endpoint_id).attributes["Arn"]
        raise TemplateError(
            "local mode needs endpoint_mode=create: the template defines no endpoint"
        )

    def _schedule_sources(
        self, functions: Mapping[str, tuple[FunctionSpec, Mapping[str, Any]]]
    ) -> list[ScheduleSourceSpec]:
        """Enabled EventBridge rules on a ``rate(...)`` schedule that target our functions."""
        sources = []
        for logical_id, rule in self.template.of_type("AWS::Events::Rule"):
            expression = rule.get("ScheduleExpression")
            if expression is None or rule.get("State", "ENABLED") != "ENABLED":
                continue
            for target in rule.get("Targets", []):
                function_id = self.template.logical_id_of(target["Arn"])
                if function_id not in functions:
                    continue
                _, retries = self._on_failure_queue(function_id)
                sources.append(
                    ScheduleSourceSpec(
                        rule_arn=self._rule_arn(logical_id, rule),
                        schedule_expression=str(expression),
                        period_seconds=rate_seconds(str(expression)),
                        max_attempts=1 + retries,
                        function=functions[function_id][0],
                    )
                )
        return sources

    def _rule_arn(self, logical_id: str, rule: Mapping[str, Any]) -> str:
        name = self.template.resolve(rule.get("Name")) or self.template.physical(logical_id).ref
        return f"arn:{PARTITION}:events:{self.region}:{ACCOUNT_ID}:rule/{name}"

    def endpoint_spec(self, model_url: str) -> EndpointSpec:
        """The async endpoint as its EndpointConfig defines it, served by ``model_url``."""
        endpoints = list(self.template.of_type("AWS::SageMaker::Endpoint"))
        if not endpoints:
            raise TemplateError(
                "local mode needs endpoint_mode=create: the template defines no endpoint"
            )
        endpoint_id, endpoint = endpoints[0]
        config_id = self.template.logical_id_of(endpoint["EndpointConfigName"])
        config = self.template.resources[config_id]["Properties"]
        async_config = self.template.resolve(config["AsyncInferenceConfig"])
        output = async_config["OutputConfig"]
        notifications = output.get("NotificationConfig", {})
        variant = self.template.resolve(config["ProductionVariants"])[0]
        return EndpointSpec(
            name=self.template.physical(endpoint_id).attributes["EndpointName"],
            output_path=output["S3OutputPath"],
            failure_path=output.get("S3FailurePath", output["S3OutputPath"]),
            success_topic_arn=notifications.get("SuccessTopic"),
            error_topic_arn=notifications.get("ErrorTopic"),
            include_response_body="SUCCESS_NOTIFICATION_TOPIC"
            in notifications.get("IncludeInferenceResponseIn", []),
            max_concurrent_invocations_per_instance=int(
                async_config.get("ClientConfig", {}).get("MaxConcurrentInvocationsPerInstance", 4)
            ),
            instance_count=max(1, int(variant.get("InitialInstanceCount", 1))),
            model_url=model_url,
        )


def _optional_int(properties: Mapping[str, Any], name: str) -> int | None:
    value = properties.get(name)
    return None if value is None else int(value)
