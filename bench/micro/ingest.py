"""The ingest child: figures 1 and 2 for the ingest function."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import boto3

from asyncinfer.local.lambda_runner.execution import trace_header
from bench.measure import interleaved, profile_by_package, timed
from bench.micro.plan import (
    OBJECT_BODY,
    OBJECT_CONTENT_TYPE,
    WAIT_SECONDS,
    IngestMeasurements,
    Plan,
    Profile,
)
from bench.micro.replay import (
    RecordingClient,
    RuntimeAdmin,
    counting_ingested_bytes,
    lambda_context,
    progress,
    substituted,
)


@dataclass(frozen=True)
class Upload:
    key: str
    version_id: str | None
    message: dict[str, Any]  # the SQS message S3 sent for it, as ReceiveMessage returned it


class InputObjects:
    """Uploads objects to the input bucket and collects the SQS messages S3 sends for them."""

    def __init__(self, plan: Plan) -> None:
        session = boto3.session.Session()
        self._s3 = session.client("s3")
        self._sqs = session.client("sqs")
        self._plan = plan
        self.queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=plan.ingest_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

    def upload(self, keys: list[str]) -> dict[str, Upload]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            versions = dict(zip(keys, pool.map(self._put, keys), strict=True))
        messages = self._messages_for(set(keys))
        return {key: Upload(key, versions[key], messages[key]) for key in keys}

    def _put(self, key: str) -> str | None:
        response = self._s3.put_object(
            Bucket=self._plan.input_bucket,
            Key=key,
            Body=OBJECT_BODY,
            ContentType=OBJECT_CONTENT_TYPE,
        )
        return response.get("VersionId")

    def _messages_for(self, keys: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        # S3 (moto) sends them as fast as the machine lets it: give up only when none arrives
        # for WAIT_SECONDS, however many are still on their way
        deadline = time.monotonic() + WAIT_SECONDS
        while len(found) < len(keys):
            if time.monotonic() > deadline:
                raise TimeoutError(f"S3 sent {len(found)} of {len(keys)} notifications")
            before = len(found)
            received = self._sqs.receive_message(
                QueueUrl=self._plan.ingest_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=43_200,  # never redelivered during the benchmark
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for message in received:
                body = json.loads(message["Body"])
                for record in body.get("Records", []):
                    key = unquote_plus(record["s3"]["object"]["key"])
                    if key in keys:
                        found[key] = dict(message)
            if len(found) > before:
                deadline = time.monotonic() + WAIT_SECONDS
        return found

    def event(self, uploads: list[Upload]) -> dict[str, Any]:
        """The Lambda SQS event the event source mapping would send for these messages."""
        from asyncinfer.local.lambda_runner.event_shapes import sqs_record

        return {
            "Records": [
                sqs_record(upload.message, self.queue_arn, self._plan.region)  # type: ignore[arg-type]
                for upload in uploads
            ]
        }


def _object_version(upload: Upload) -> Any:
    from lambdas.ingest.events import ObjectVersion, S3EventNotification, parse_notification

    notification = parse_notification(upload.message["Body"])
    assert isinstance(notification, S3EventNotification)
    return ObjectVersion.from_record(notification.records[0])


# A small input is read at its version (GetObject) and sent inline (README "Exactly the version
# that was uploaded"); the bench's inputs are all small.
_RECORD_CALLS = ["put_item", "get_object", "invoke_endpoint_async", "update_item"]


class IngestBench:
    """The ingest handler, the naive handler and the bare calls, on the same servers."""

    def __init__(self, plan: Plan) -> None:
        from bench import naive
        from lambdas.ingest import handler as ingest
        from lambdas.ingest.clients import create_clients
        from lambdas.ingest.config import IngestConfig

        self.plan = plan
        self.ingest = ingest
        self.naive = naive
        self.admin = RuntimeAdmin(plan.admin_url)
        self.objects = InputObjects(plan)
        self.config = IngestConfig.from_environ(os.environ)
        self.rounds = plan.warmup + plan.repetitions
        self.submitted_ids: list[str] = []
        # Clients configured as the handler's own, for the bare calls.
        self.clients = create_clients(max_pool_connections=self.config.submit_concurrency)
        self._client_of = {
            "put_item": self.clients.dynamodb,
            "update_item": self.clients.dynamodb,
            "get_object": self.clients.s3,
            "invoke_endpoint_async": self.clients.sagemaker_runtime,
        }
        self.pool = ThreadPoolExecutor(
            max_workers=self.config.submit_concurrency, thread_name_prefix="bare"
        )
        self.batches = self._upload()
        self.template, self.recorded = self._record_calls()

    def _upload(self) -> dict[str, list[list[Upload]]]:
        size, rounds, profiles = self.plan.batch_size, self.rounds, self.plan.profile_repetitions

        def keys(group: str, count: int, per_batch: int) -> list[list[str]]:
            return [[f"bench/{group}/{r}/{i}.json" for i in range(per_batch)] for r in range(count)]

        groups = {
            "real": keys("real", rounds, size),
            "naive": keys("naive", rounds, size),
            "latency-bare": keys("latency-bare", rounds, size),
            "overhead-real": keys("overhead-real", rounds, size),
            "overhead-bare": keys("overhead-bare", rounds, size),
            "single-real": keys("single-real", rounds, 1),
            "single-bare": keys("single-bare", rounds, 1),
            "profile-handler": keys("profile-handler", profiles, size),
            "profile-submit": keys("profile-submit", profiles, size),
            "template": [["bench/template.json"]],
        }
        every_key = [key for group in groups.values() for batch in group for key in batch]
        progress(f"uploading {len(every_key)} objects")
        uploads = self.objects.upload(every_key)
        return {
            name: [[uploads[key] for key in batch] for batch in group]
            for name, group in groups.items()
        }

    def _record_calls(self) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        """The calls the handler's logic makes for one record (the template object)."""
        from aws_lambda_powertools import Logger

        from lambdas.common.store import RecordStore
        from lambdas.ingest.clients import S3InputReader, S3ObjectInspector, SageMakerAsyncInvoker
        from lambdas.ingest.logic import Outcome, Submitter

        dynamodb = RecordingClient(self.clients.dynamodb)
        s3 = RecordingClient(self.clients.s3)
        sagemaker = RecordingClient(self.clients.sagemaker_runtime)
        capture = Submitter(
            config=self.config,
            store=RecordStore(dynamodb, self.config.table_name),  # type: ignore[arg-type]
            inspector=S3ObjectInspector(s3),  # type: ignore[arg-type]
            reader=S3InputReader(s3),  # type: ignore[arg-type]
            invoker=SageMakerAsyncInvoker(sagemaker),  # type: ignore[arg-type]
            logger=Logger(service="bench-capture"),
        )
        template = _object_version(self.batches["template"][0][0])
        result = capture.submit(
            template, trace_id=_lambda_trace_id(), remaining_seconds=lambda: 60.0
        )
        if result.outcome is not Outcome.SUBMITTED:
            raise RuntimeError(f"the template object was not submitted: {result}")
        calls = [*dynamodb.calls, *s3.calls, *sagemaker.calls]
        if sorted(name for name, _ in calls) != sorted(_RECORD_CALLS):
            raise RuntimeError(f"unexpected calls for one record: {[n for n, _ in calls]}")
        return template, sorted(calls, key=lambda call: _RECORD_CALLS.index(call[0]))

    # one run of each kind

    def bare_calls(self, upload: Upload) -> Callable[[], None]:
        """The recorded calls, for another object (prepared now, made when called)."""
        target = _object_version(upload)
        replacements = {self.template.inference_id: target.inference_id}
        # The Filename holds the id's first 28 hex digits (lambdas/common/output_naming.py).
        replacements[self.template.inference_id[:28]] = target.inference_id[:28]
        replacements[self.template.key] = target.key
        if self.template.version_id and target.version_id:
            replacements[self.template.version_id] = target.version_id
        calls = [(name, substituted(arguments, replacements)) for name, arguments in self.recorded]
        self.submitted_ids.append(target.inference_id)

        def run() -> None:
            for name, arguments in calls:
                getattr(self._client_of[name], name)(**arguments)

        return run

    def bare_batch(self, batch: list[Upload]) -> float:
        """A batch's calls on a pool as large as the handler's, each record's in sequence."""
        runs = [self.bare_calls(upload) for upload in batch]

        def run_all() -> None:
            for future in [self.pool.submit(run) for run in runs]:
                future.result()

        return timed(run_all)

    def handler_run(self, batch: list[Upload]) -> float:
        event = self.objects.event(batch)
        context = lambda_context(self.plan)
        seconds = timed(lambda: self.ingest.handler(event, context))
        self.submitted_ids.extend(_object_version(upload).inference_id for upload in batch)
        return seconds

    def naive_run(self, batch: list[Upload]) -> float:
        event = self.objects.event(batch)
        context = lambda_context(self.plan)
        return timed(lambda: self.naive.handler(event, context))

    def invoke_once(self) -> float:
        arguments = dict(self.recorded[2][1], InferenceId=uuid.uuid4().hex)
        return timed(lambda: self.clients.sagemaker_runtime.invoke_endpoint_async(**arguments))

    # the figures

    def batch_latency(self) -> dict[str, list[float]]:
        """Figure 1: the runtime adds a fixed latency to every InvokeEndpointAsync."""
        progress(f"batch latency: {self.rounds} rounds, {self.plan.added_latency_ms} ms added")
        self.admin.set_added_latency(self.plan.added_latency_ms)
        invokes: list[float] = []

        def invoke_samples(_: int) -> float:
            samples = [self.invoke_once() for _ in range(self.plan.invoke_samples)]
            invokes.extend(samples)
            return min(samples)

        samples = interleaved(
            self.rounds,
            {
                "handler": lambda r: self.handler_run(self.batches["real"][r]),
                "naive": lambda r: self.naive_run(self.batches["naive"][r]),
                "bare": lambda r: self.bare_batch(self.batches["latency-bare"][r]),
                "invoke": invoke_samples,
            },
            self.admin.wait_idle,
        )
        samples["invoke"] = invokes[self.plan.warmup * self.plan.invoke_samples :]
        return samples

    def overhead(self) -> tuple[dict[str, list[float]], float]:
        """Figure 2, without added latency: only the handler around the calls differs.
        Also returns the handler's log bytes per record."""
        progress(f"ingest overhead: {self.rounds} rounds, no added latency")
        self.admin.set_added_latency(0)
        log_bytes = [0]

        def logged_handler_run(batch: list[Upload]) -> float:
            with counting_ingested_bytes(log_bytes):
                return self.handler_run(batch)

        batches = self.batches
        samples = interleaved(
            self.rounds,
            {
                "handler": lambda r: logged_handler_run(batches["overhead-real"][r]),
                "bare": lambda r: self.bare_batch(batches["overhead-bare"][r]),
                "single-handler": lambda r: self.handler_run(batches["single-real"][r]),
                "single-bare": lambda r: timed(self.bare_calls(batches["single-bare"][r][0])),
            },
            self.admin.wait_idle,
        )
        return samples, log_bytes[0] / (self.rounds * self.plan.batch_size)

    def fixed_cost(self) -> list[float]:
        """An SQS event whose one message is an s3:TestEvent: an invocation making no call."""
        event = self.objects.event(self.batches["real"][0][:1])
        event["Records"][0]["body"] = json.dumps(
            {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": self.plan.input_bucket}
        )
        return [
            timed(lambda: self.ingest.handler(event, lambda_context(self.plan)))
            for _ in range(self.rounds)
        ]

    def profiles(self) -> tuple[Profile, Profile]:
        """Where the handler's thread spends its time over whole batches, and where one
        record's work (``Submitter.submit``, on the pool in the handler) spends it."""
        progress("profiles")
        batches = iter(self.batches["profile-handler"])
        handler_profile = profile_by_package(
            lambda: self.handler_run(next(batches)), self.plan.profile_repetitions
        )
        self.admin.wait_idle()
        submitter = self.ingest.runtime().submitter
        targets = iter(
            _object_version(upload) for batch in self.batches["profile-submit"] for upload in batch
        )

        def submit_a_batch() -> None:
            for _ in range(self.plan.batch_size):
                target = next(targets)
                submitter.submit(
                    target, trace_id=_lambda_trace_id(), remaining_seconds=lambda: 60.0
                )
                self.submitted_ids.append(target.inference_id)

        submit_profile = profile_by_package(submit_a_batch, self.plan.profile_repetitions)
        self.admin.wait_idle()
        return handler_profile, submit_profile

    def stored_items(self) -> dict[str, dict[str, Any]]:
        """A claim as written, and the same record once SUBMITTED (DynamoDB JSON)."""
        submitted = self.clients.dynamodb.get_item(
            TableName=self.config.table_name,
            Key={"inference_id": {"S": self.template.inference_id}},
        )["Item"]
        return {"PENDING": self.recorded[0][1]["Item"], "SUBMITTED": dict(submitted)}


def _lambda_trace_id() -> str:
    """The X-Ray trace id the handler finds in Lambda (``_X_AMZN_TRACE_ID``'s ``Root``), which
    ingest sends and records in ``custom_attributes``: 35 characters, not the 64 of the
    inference id the submitter falls back to without one (the stored items' sizes)."""
    from lambdas.ingest.attributes import xray_trace_id

    return xray_trace_id(os.environ["_X_AMZN_TRACE_ID"]) or ""


def measure_ingest(plan: Plan) -> IngestMeasurements:
    # Lambda sets it for every invocation (local mode's workers too); one for the child is the
    # same size
    os.environ["_X_AMZN_TRACE_ID"] = trace_header()
    bench = IngestBench(plan)
    latency = bench.batch_latency()
    overhead, log_bytes_per_record = bench.overhead()
    fixed = bench.fixed_cost()
    handler_profile, submit_profile = bench.profiles()
    bench.pool.shutdown()
    skip = plan.warmup
    return IngestMeasurements(
        batch_seconds=latency["handler"][skip:],
        naive_batch_seconds=latency["naive"][skip:],
        bare_batch_seconds=latency["bare"][skip:],
        invoke_seconds=latency["invoke"],
        overhead_batch_handler_seconds=overhead["handler"][skip:],
        overhead_batch_bare_seconds=overhead["bare"][skip:],
        overhead_single_handler_seconds=overhead["single-handler"][skip:],
        overhead_single_bare_seconds=overhead["single-bare"][skip:],
        fixed_seconds=fixed[skip:],
        submit_concurrency=bench.config.submit_concurrency,
        log_bytes_per_record=log_bytes_per_record,
        items=bench.stored_items(),
        handler_profile=handler_profile,
        submit_profile=submit_profile,
        submitted_ids=bench.submitted_ids,
    )
