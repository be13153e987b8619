"""Local mode's EventBridge Pipes: the template's DynamoDB stream -> event bus pipes, run here.

moto 5.2.5 stores pipes (``moto/pipes``: create, describe, list) but runs none, so this thread
does what a pipe of stacks/events_out.py does on AWS, from the template's own definition:

* reads the table's stream from ``TRIM_HORIZON`` (moto supports DynamoDB Streams), shard by
  shard, in order;
* keeps a stream record when one of the pipe's ``FilterCriteria`` patterns matches it, matched
  with moto's own EventBridge pattern matcher (``moto.events.models.EventPattern``, the same
  syntax Pipes filters use: EventBridge user guide, "Event filtering in Amazon EventBridge
  Pipes");
* renders the target's ``InputTemplate`` (``<$.path>`` replaced by the value at that path,
  JSON; ``"<$.path>"`` by its text) and calls ``PutEvents`` on the target bus with the pipe's
  ``Source`` and ``DetailType``; moto then delivers to the bus's rules (an SQS target gets the
  event, ``events/models.py`` ``Rule.send_to_targets``).

* sends each batch of up to ``BatchSize`` stream records in one ``PutEvents`` call, which the
  local AWS server refuses beyond 10 entries or 256 KB (``aws.eventbridge``), as EventBridge
  does; a refused batch is retried ``MaximumRetryAttempts`` times (on the next polls), then its
  description goes to the pipe's dead-letter queue and the pipe moves on (EventBridge user
  guide, "Amazon EventBridge Pipes error handling": "after the retry attempts are exhausted
  ... sent to the dead-letter queue").

Not emulated: batching windows, the exact layout of Pipes' dead-letter message (the stream
batch's shard and sequence numbers are sent, in the form Lambda's stream event sources use),
and Pipes' at-least-once duplicates.
A path missing from the record renders as ``null`` (AWS documents no behaviour for it; the
events' consumers must accept absent or null attributes either way).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from asyncinfer.local.provision.template import Template, TemplateError

POLL_SECONDS = 0.2
_PLACEHOLDER = re.compile(r'"<(\$[^>]*)>"|<(\$[^>]*)>')
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipeSpec:
    name: str
    table_name: str
    filters: tuple[str, ...]
    bus_name: str
    source: str
    detail_type: str
    input_template: str | None
    batch_size: int = 10
    max_retries: int = -1  # -1: until the record expires from the stream (Pipes' default)
    dead_letter_queue_url: str | None = None


def _value_at(document: Any, path: str) -> Any:
    node = document
    for part in path.removeprefix("$").strip(".").split("."):
        if not part:
            continue
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def render(template: str | None, record: dict[str, Any]) -> str:
    """The pipe's ``InputTemplate`` applied to one stream record (see the module doc)."""
    if template is None:
        return json.dumps(record)

    def substitute(match: re.Match[str]) -> str:
        quoted, bare = match.group(1), match.group(2)
        if quoted is not None:
            value = _value_at(record, quoted)
            return json.dumps("" if value is None else str(value))
        return json.dumps(_value_at(record, bare))

    return _PLACEHOLDER.sub(substitute, template)


def matches(filters: tuple[str, ...], record: dict[str, Any]) -> bool:
    # moto is local mode's optional dependency; LocalPipeline imports it before threads start
    from moto.events.models import EventPattern

    event: Any = record  # moto types it as its own TypedDict
    return not filters or any(
        EventPattern.load(pattern).matches_event(event) for pattern in filters
    )


def pipe_specs(template: Template) -> list[PipeSpec]:
    """The template's pipes whose source is a table's stream and whose target is a bus."""
    specs = []
    for logical_id, properties in template.of_type("AWS::Pipes::Pipe"):
        source = properties["Source"]
        table_id = template.logical_id_of(source)
        target = str(template.resolve(properties["Target"]))
        parameters = properties.get("TargetParameters", {})
        bus = parameters.get("EventBridgeEventBusParameters", {})
        criteria = properties.get("SourceParameters", {}).get("FilterCriteria", {})
        stream = template.resolve(
            properties.get("SourceParameters", {}).get("DynamoDBStreamParameters", {})
        )
        dead_letter = stream.get("DeadLetterConfig", {}).get("Arn")
        specs.append(
            PipeSpec(
                name=logical_id,
                table_name=template.physical(table_id).ref,
                filters=tuple(str(entry["Pattern"]) for entry in criteria.get("Filters", [])),
                bus_name=target.rsplit("/", 1)[-1],
                source=str(bus.get("Source", "")),
                detail_type=str(bus.get("DetailType", "")),
                input_template=parameters.get("InputTemplate"),
                batch_size=int(stream.get("BatchSize", 10)),
                max_retries=int(stream.get("MaximumRetryAttempts", -1)),
                dead_letter_queue_url=_queue_url(template, dead_letter) if dead_letter else None,
            )
        )
    return specs


def _queue_url(template: Template, arn: str) -> str:
    for logical_id, _ in template.of_type("AWS::SQS::Queue"):
        physical = template.physical(logical_id)
        if physical.attributes["Arn"] == arn:
            return physical.ref
    raise TemplateError(f"no queue of the template has the ARN {arn}")


class PipeRunner:
    """One thread running every pipe; ``start`` / ``stop``."""

    def __init__(self, pipes: list[PipeSpec], *, aws_endpoint_url: str, region: str) -> None:
        self.pipes = pipes
        # the local credentials LocalPipeline puts in the environment
        session = boto3.session.Session(region_name=region)
        self._dynamodb = session.client("dynamodb", endpoint_url=aws_endpoint_url)
        self._streams = session.client("dynamodbstreams", endpoint_url=aws_endpoint_url)
        self._events = session.client("events", endpoint_url=aws_endpoint_url)
        self._sqs = session.client("sqs", endpoint_url=aws_endpoint_url)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipes", daemon=True)
        # (pipe name, shard id) -> the next shard iterator
        self._iterators: dict[tuple[str, str], str] = {}
        self._attempts: dict[tuple[str, str], int] = {}  # refused tries of the current batch
        self.published = 0
        self.dead_lettered = 0

    def start(self) -> None:
        """Polls once in the caller's thread, then goes on in the pipes thread: an error of the
        environment (an import, a client) fails the start; a refused batch is retried later."""
        if self.pipes:
            for pipe in self.pipes:
                try:
                    self._poll(pipe)
                except (ClientError, RuntimeError):
                    logger.exception("pipe %s: polling failed", pipe.name)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            for pipe in self.pipes:
                try:
                    self._poll(pipe)
                except Exception:  # keep polling: the next round retries the same records
                    logger.exception("pipe %s: polling failed", pipe.name)

    def _poll(self, pipe: PipeSpec) -> None:
        table = self._dynamodb.describe_table(TableName=pipe.table_name)["Table"]
        stream_arn = table["LatestStreamArn"]
        shards = self._streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            key = (pipe.name, shard["ShardId"])
            iterator = (
                self._iterators.get(key)
                or self._streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            response = self._streams.get_records(ShardIterator=iterator, Limit=pipe.batch_size)
            self._deliver(pipe, key, stream_arn, response["Records"])  # raises: stays put
            self._iterators[key] = response["NextShardIterator"]

    def _deliver(
        self, pipe: PipeSpec, key: tuple[str, str], stream_arn: str, records: list[Any]
    ) -> None:
        """One batch to the bus; a refused batch is retried, then dead-lettered."""
        try:
            self._publish(pipe, records)
        except (ClientError, RuntimeError) as error:
            attempts = self._attempts.get(key, 0) + 1
            exhausted = 0 <= pipe.max_retries < attempts
            if not exhausted or pipe.dead_letter_queue_url is None:
                self._attempts[key] = attempts
                raise
            batch = (key[1], stream_arn, records)
            self._dead_letter(pipe, pipe.dead_letter_queue_url, batch, str(error))
        self._attempts.pop(key, None)

    def _publish(self, pipe: PipeSpec, records: list[dict[str, Any]]) -> None:
        entries = [
            {
                "Source": pipe.source,
                "DetailType": pipe.detail_type,
                "Detail": render(pipe.input_template, _plain(record)),
                "EventBusName": pipe.bus_name,
            }
            for record in records
            if matches(pipe.filters, _plain(record))
        ]
        if not entries:
            return
        response = self._events.put_events(Entries=entries)  # the whole batch, as Pipes does
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {response['Entries']}")
        self.published += len(entries)

    def _dead_letter(
        self,
        pipe: PipeSpec,
        queue_url: str,
        batch: tuple[str, str, list[Any]],
        reason: str,
    ) -> None:
        shard_id, stream_arn, records = batch
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        message = {
            "context": {
                "condition": "RetryAttemptsExhausted",
                "pipe": pipe.name,
                "errorMessage": reason[:1000],
            },
            "ddbStreamBatchInfo": {
                "shardId": shard_id,
                "streamArn": stream_arn,
                "startSequenceNumber": sequence_numbers[0],
                "endSequenceNumber": sequence_numbers[-1],
                "batchSize": len(records),
            },
        }
        self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
        self.dead_lettered += len(records)
        logger.warning(
            "pipe %s: a batch of %d records dead-lettered: %s", pipe.name, len(records), reason
        )


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """The stream record as JSON (boto3 returns datetimes), as Pipes sees it."""
    loaded: dict[str, Any] = json.loads(json.dumps(record, default=str))
    return loaded
