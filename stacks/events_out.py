"""Results out: each terminal transition of a record becomes one event on an EventBridge bus.

No function of ours publishes: the results table's stream (new and old images) feeds two
EventBridge Pipes, one per outcome. Each pipe's filter passes a stream record only when the
item *becomes* terminal (docs/fitting-in.md, "Events out"):

* ``INSERT`` with ``NewImage.status`` = the outcome (a result that arrived before ingest's
  claim creates the item terminal), or
* ``MODIFY`` with ``NewImage.status`` = the outcome and ``OldImage.status`` not terminal.

A later refinement of a terminal record (a newer notification, a back-filled ingest field) is
terminal -> terminal and passes neither filter, so a record yields one event; a TTL deletion
is a ``REMOVE`` and passes neither. The target is the bus (``PutEvents`` with a fixed
``source`` and ``detail-type``); the input template makes ``detail`` the record without its
inline result. A pipe's batch that keeps failing goes to a dead-letter queue (alarmed).

Why Pipes and not a function: the filtering, batching, retries and delivery are AWS's (no code,
no cold starts, billed per event that passes the filter); one pipe per outcome, because a pipe
sends one fixed ``detail-type``. Two pipes are the two readers a DynamoDB stream shard allows
(DynamoDB developer guide, "Change data capture for DynamoDB Streams"): a third consumer of this
stream would be throttled.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common.contract import (
    DETAIL_TYPE_COMPLETED,
    DETAIL_TYPE_FAILED,
    EVENTS_SOURCE,
    PARTITION_KEY,
)
from lambdas.common.records import InferenceRecord, Status
from stacks.nag import acknowledge, wildcard_resource
from stacks.queues import dead_letter_queue

TERMINAL = [Status.COMPLETED.value, Status.FAILED.value]
# Large and already in the table: consumers read the result from the record or the output.
LEFT_OUT_OF_DETAIL = ("result", "result_encoding")
DETAIL_TYPES = {Status.COMPLETED: DETAIL_TYPE_COMPLETED, Status.FAILED: DETAIL_TYPE_FAILED}
PIPE_BATCH_SIZE = 10  # PutEvents takes at most 10 entries
PIPE_MAX_RETRIES = 10


def terminal_transition_filters(status: Status) -> list[dict[str, Any]]:
    """The pipe's filter criteria (any one matches), in EventBridge pattern syntax."""
    new_image = {"status": {"S": [status.value]}}
    return [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": new_image}},
        {
            "eventName": ["MODIFY"],
            "dynamodb": {
                "NewImage": new_image,
                "OldImage": {"status": {"S": [{"anything-but": TERMINAL}]}},
            },
        },
    ]


def detail_fields() -> list[str]:
    return [name for name in InferenceRecord.model_fields if name not in LEFT_OUT_OF_DETAIL]


def detail_template() -> str:
    """``detail``: the id and status as strings, and ``record``: every attribute of the record
    but the inline result, as DynamoDB attribute values (``{"S": ...}``, ``{"N": ...}``)."""
    record = ", ".join(f'"{name}": <$.dynamodb.NewImage.{name}>' for name in detail_fields())
    return (
        f'{{"{PARTITION_KEY}": "<$.dynamodb.Keys.{PARTITION_KEY}.S>", '
        f'"status": "<$.dynamodb.NewImage.status.S>", "record": {{{record}}}}}'
    )


class ResultEvents(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, table: dynamodb.ITable, bus_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        if table.table_stream_arn is None:
            raise ValueError("the results table needs its stream (publish_events)")
        self.bus = events.EventBus.from_event_bus_name(self, "Bus", bus_name)
        self.dead_letter_queue: sqs.Queue = dead_letter_queue(self, "DeadLetterQueue")
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is a dead-letter queue, named by the pipes' DeadLetterConfig; cdk-nag "
            "only recognizes dead-letter queues named by another queue's redrive policy.",
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("pipes.amazonaws.com"),
            description="The async inference pipeline's result-event pipes",
        )
        # the source permissions EventBridge Pipes documents for a DynamoDB stream
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                ],
                resources=[table.table_stream_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:ListStreams"], resources=["*"])
        )
        acknowledge(
            self.role,
            wildcard_resource("*"),
            "dynamodb:ListStreams has no resource-level permissions (Service Authorization "
            "Reference, Amazon DynamoDB): AWS requires Resource '*'; reads are on the stream.",
        )
        self.bus.grant_put_events_to(self.role)
        self.dead_letter_queue.grant_send_messages(self.role)
        self.pipes = {status: self._pipe(status, table.table_stream_arn) for status in DETAIL_TYPES}
        for pipe in self.pipes.values():
            # Pipes checks the role's source, target and dead-letter permissions when the pipe
            # is created; they are in the role's DefaultPolicy, which the pipe's RoleArn does
            # not reference: a dependency on the role's construct covers its DefaultPolicy.
            pipe.node.add_dependency(self.role)

    def _pipe(self, status: Status, stream_arn: str) -> pipes.CfnPipe:
        return pipes.CfnPipe(
            self,
            f"{status.value.title()}Pipe",
            description=f"Records becoming {status.value} -> {DETAIL_TYPES[status]} events",
            role_arn=self.role.role_arn,
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position="TRIM_HORIZON",
                    batch_size=PIPE_BATCH_SIZE,
                    maximum_retry_attempts=PIPE_MAX_RETRIES,
                    dead_letter_config=pipes.CfnPipe.DeadLetterConfigProperty(
                        arn=self.dead_letter_queue.queue_arn
                    ),
                ),
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[
                        pipes.CfnPipe.FilterProperty(pattern=json.dumps(pattern))
                        for pattern in terminal_transition_filters(status)
                    ]
                ),
            ),
            target=self.bus.event_bus_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                event_bridge_event_bus_parameters=pipes.CfnPipe.PipeTargetEventBridgeEventBusParametersProperty(
                    source=EVENTS_SOURCE, detail_type=DETAIL_TYPES[status]
                ),
                input_template=detail_template(),
            ),
        )
