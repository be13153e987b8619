"""Alarms on everything that can strand work, and one dashboard of the pipeline's flow."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common.contract import METRICS_NAMESPACE, Service
from stacks.config import StackConfig
from stacks.endpoint import endpoint_metric
from stacks.notifications import topic_key

ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
# Scale-out from zero takes minutes; a backlog without capacity for this long means it failed.
BACKLOG_WITHOUT_CAPACITY_MINUTES = 15


def alarm_arn_pattern(stack: Stack) -> str:
    """The ARNs of the alarms CloudFormation creates in this stack (generated names)."""
    return stack.format_arn(
        service="cloudwatch",
        resource="alarm",
        resource_name=f"{stack.stack_name}-*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        ingest_queue: sqs.IQueue,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        endpoint_name: str,
    ) -> None:
        """``dead_letter_queues`` and ``functions`` map a readable name to each resource."""
        super().__init__(scope, construct_id)
        self.alarm_topic = self._alarm_topic(config.alarm_email) if config.alarm_email else None

        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}NotEmpty",
                queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=0,
                description=f"{name} holds messages: inspect them, fix the cause, redrive.",
            )
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM),
                threshold=0,
                description=f"The {name} function raised errors.",
            )
        self._alarm(
            "IngestQueueOldestMessage",
            ingest_queue.metric_approximate_age_of_oldest_message(
                period=ONE_MINUTE, statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=config.oldest_message_alarm_seconds,
            evaluation_periods=5,
            description="Uploads wait in the ingest queue: the ingest function falls behind.",
        )
        self._alarm(
            "EndpointBacklogWithoutCapacity",
            endpoint_metric("HasBacklogWithoutCapacity", endpoint_name, cloudwatch.Stats.MINIMUM),
            threshold=0,
            evaluation_periods=BACKLOG_WITHOUT_CAPACITY_MINUTES,
            description=(
                f"Requests have waited {BACKLOG_WITHOUT_CAPACITY_MINUTES} minutes with no "
                "instance running: scale-out from zero is not happening."
            ),
        )
        self.dashboard = self._dashboard(ingest_queue, dead_letter_queues, functions, endpoint_name)

    def watch_reconciler(self, endpoint_name: str) -> None:
        """An alarm when the reconciler settles anything (a notification or an S3 event was
        lost) and a widget of what it settled and expired."""
        dimensions = {"service": Service.RECONCILER, "EndpointName": endpoint_name}
        settled, expired = (
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=cloudwatch.Stats.SUM,
                period=FIVE_MINUTES,
            )
            for name in ("InferencesSettledByReconciler", "InferencesExpired")
        )
        self._alarm(
            "InferencesSettledByReconciler",
            settled,
            threshold=0,
            description="The reconciler settled records whose outcome never arrived: a "
            "notification was lost or an inference expired. See the records with "
            "failure_stage=expired and the results function's dead-letter queues.",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Settled by the reconciler",
                left=[settled.with_(label="settled"), expired.with_(label="expired")],
                width=12,
            )
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
    ) -> None:
        alarm = metric.create_alarm(
            self,
            construct_id,
            alarm_description=description,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.alarm_topic is not None:
            action = cloudwatch_actions.SnsAction(self.alarm_topic)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _alarm_topic(self, email: str) -> sns.Topic:
        key = topic_key(self, "AlarmKey", "Encrypts the pipeline's alarm topic")
        # CloudWatch publishes alarm notifications itself and must be able to use the key
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchPublishesAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default one:
        # without this statement CloudWatch may not publish and every alarm action fails
        # (silently, but for the alarm's history). Scoped to this account's alarms named
        # after this stack (CloudFormation names them <stack name>-<logical id>-<suffix>).
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchPublishesAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": alarm_arn_pattern(stack)},
                },
            )
        )
        topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _dashboard(
        self,
        ingest_queue: sqs.IQueue,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        endpoint_name: str,
    ) -> cloudwatch.Dashboard:
        sent = ingest_queue.metric_number_of_messages_sent(period=ONE_MINUTE)
        uploads = cloudwatch.MathExpression(
            expression="sent / PERIOD(sent)",
            using_metrics={"sent": sent},
            label="uploads/s",
            period=ONE_MINUTE,
        )
        results_dimensions = {"service": Service.RESULTS, "EndpointName": endpoint_name}

        def outcome(metric_name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=metric_name,
                dimensions_map=results_dimensions,
                statistic=statistic,
                period=ONE_MINUTE,
                label=label,
            )

        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Uploads", left=[uploads], width=8),
            cloudwatch.GraphWidget(
                title="Ingest queue depth",
                left=[
                    ingest_queue.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="visible"
                    ),
                    ingest_queue.metric_approximate_number_of_messages_not_visible(
                        period=ONE_MINUTE, label="in flight"
                    ),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Ingest queue oldest message (s)",
                left=[
                    ingest_queue.metric_approximate_age_of_oldest_message(
                        period=ONE_MINUTE, statistic=cloudwatch.Stats.MAXIMUM
                    )
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Endpoint backlog",
                left=[
                    endpoint_metric(
                        "ApproximateBacklogSize", endpoint_name, cloudwatch.Stats.AVERAGE
                    ),
                    endpoint_metric(
                        "ApproximateBacklogSizePerInstance", endpoint_name, cloudwatch.Stats.AVERAGE
                    ),
                ],
                right=[
                    endpoint_metric(
                        "HasBacklogWithoutCapacity", endpoint_name, cloudwatch.Stats.MAXIMUM
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Inferences completed vs failed",
                left=[
                    outcome("InferencesCompleted", cloudwatch.Stats.SUM, "completed"),
                    outcome("InferencesFailed", cloudwatch.Stats.SUM, "failed"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="End-to-end latency (ms)",
                left=[
                    outcome("EndToEndLatency", cloudwatch.Stats.p(50), "p50"),
                    outcome("EndToEndLatency", cloudwatch.Stats.p(95), "p95"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, statistic=cloudwatch.Stats.MAXIMUM, label=name
                    )
                    for name, queue in dead_letter_queues.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[
                    function.metric_errors(period=ONE_MINUTE, label=name)
                    for name, function in functions.items()
                ],
                width=12,
            ),
        )
        return dashboard
