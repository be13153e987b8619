"""The handler benchmarks (figures 1-3), each run in a child process with its function's
environment: ``python -m bench.micro PLAN_JSON OUT_JSON`` (the plan names the function).

The child imports the real handler, feeds it real events (SQS messages that S3 sent for real
objects; SNS envelopes of the notifications the local runtime published) and times it against
a reference measured in the same process, interleaved with it, against the same servers. The
handler's log output (stdout) goes to a file, as it goes to CloudWatch Logs on AWS.

Between two timed runs the child waits until the local runtime has processed every accepted
request, so no run competes with the background work another run started.

The handler modules (and ``bench.naive``, which builds its clients at import) are imported
inside the measuring functions: the parent imports this module too, without a function's
environment.

Bare calls: the reference of the overhead figures is the exact list of calls the handler's
own logic makes for one record, recorded once through recording clients (``RecordingClient``)
and replayed for other records with their ids, keys and versions substituted. They go through
clients configured as the handler's (``create_clients`` and the results handler's client
config), so the only difference left is the handler around them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus

import boto3
from pydantic import BaseModel, Field

from bench.measure import interleaved, profile_by_package, timed
from bench.settings import REPO_ROOT
from bench.stack import log_tail
from lambdas.common.contract import LocalOutput, StackOutput

if TYPE_CHECKING:
    from asyncinfer.local.spec import FunctionSpec
    from bench.settings import Settings
    from bench.stack import BenchStack

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


class ResultsMeasurements(BaseModel):
    handler_seconds: list[float]
    bare_seconds: list[float]
    fixed_seconds: list[float]  # a TestNotification: parsed, logged, no call
    inline_from_notification: bool
    log_bytes_per_invocation: float
    items: dict[str, dict[str, Any]]
    profile: Profile


# --- helpers shared by both children ------------------------------------------------------


class RuntimeAdmin:
    """The local runtime's admin API: fault settings and the idle check."""

    def __init__(self, admin_url: str) -> None:
        self._url = admin_url

    def _request(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._url + path, data=data, method="POST" if data else "GET"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def set_added_latency(self, milliseconds: int) -> None:
        self._request("/faults", {"added_latency_ms": milliseconds})

    def wait_idle(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            stats = self._request("/stats")
            if stats["queue_depth"] == 0 and stats["in_flight"] == 0:
                return
            time.sleep(0.01)
        raise TimeoutError("the local runtime did not drain its queue")


class RecordingClient:
    """A boto3 client that records the keyword arguments of every call it passes on."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(**arguments: Any) -> Any:
            self.calls.append((name, copy.deepcopy(arguments)))
            return attribute(**arguments)

        return call


def substituted(value: Any, replacements: dict[str, str]) -> Any:
    """``value`` with every replacement applied inside every string it holds."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {key: substituted(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [substituted(item, replacements) for item in value]
    return value


@contextlib.contextmanager
def counting_stdout_bytes(total: list[int]) -> Iterator[None]:
    """Adds what the block wrote to stdout (a file: the handler's log) to ``total[0]``."""
    sys.stdout.flush()
    before = os.fstat(sys.stdout.fileno()).st_size
    try:
        yield
    finally:
        sys.stdout.flush()
        total[0] += os.fstat(sys.stdout.fileno()).st_size - before


def lambda_context(plan: Plan) -> Any:
    from asyncinfer.local.workers import LambdaContext, function_arn

    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", plan.function)
    return LambdaContext(
        aws_request_id=str(uuid.uuid4()),
        deadline_epoch_ms=int(time.time() * 1000) + 15 * 60 * 1000,
        function_name=name,
        memory_limit_in_mb=str(plan.memory_mb),
        invoked_function_arn=function_arn(plan.region, name),
        log_group_name=f"/aws/lambda/{name}",
        log_stream_name="bench",
    )


def progress(message: str) -> None:
    print(f"[bench.micro] {message}", file=sys.stderr, flush=True)


# --- the ingest child ---------------------------------------------------------------------


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
        deadline = time.monotonic() + WAIT_SECONDS
        while len(found) < len(keys):
            if time.monotonic() > deadline:
                raise TimeoutError(f"S3 sent {len(found)} of {len(keys)} notifications")
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
        return found

    def event(self, uploads: list[Upload]) -> dict[str, Any]:
        """The Lambda SQS event the event source mapping would send for these messages."""
        from asyncinfer.local.runner import sqs_record

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


_RECORD_CALLS = ["put_item", "head_object", "invoke_endpoint_async", "update_item"]


class IngestBench:
    """The ingest handler, the naive handler and the bare calls, on the same servers."""

    def __init__(self, plan: Plan) -> None:
        from bench import naive
        from lambdas.ingest import handler as ingest
        from lambdas.ingest.clients import create_clients
        from lambdas.ingest.config import load_config

        self.plan = plan
        self.ingest = ingest
        self.naive = naive
        self.admin = RuntimeAdmin(plan.admin_url)
        self.objects = InputObjects(plan)
        self.config = load_config(os.environ)
        self.rounds = plan.warmup + plan.repetitions
        self.submitted_ids: list[str] = []
        # Clients configured as the handler's own, for the bare calls.
        self.clients = create_clients(
            boto3.session.Session(), max_pool_connections=self.config.submit_concurrency
        )
        self._client_of = {
            "put_item": self.clients.dynamodb,
            "update_item": self.clients.dynamodb,
            "head_object": self.clients.s3,
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
        from lambdas.ingest.clients import S3ObjectInspector, SageMakerAsyncInvoker
        from lambdas.ingest.logic import Outcome, Submitter

        dynamodb = RecordingClient(self.clients.dynamodb)
        s3 = RecordingClient(self.clients.s3)
        sagemaker = RecordingClient(self.clients.sagemaker_runtime)
        capture = Submitter(
            config=self.config,
            store=RecordStore(dynamodb, self.config.table_name),  # type: ignore[arg-type]
            inspector=S3ObjectInspector(s3),  # type: ignore[arg-type]
            invoker=SageMakerAsyncInvoker(sagemaker),  # type: ignore[arg-type]
            logger=Logger(service="bench-capture"),
        )
        template = _object_version(self.batches["template"][0][0])
        result = capture.submit(
            template, trace_id=template.inference_id, remaining_seconds=lambda: 60.0
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
            with counting_stdout_bytes(log_bytes):
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
                    target, trace_id=target.inference_id, remaining_seconds=lambda: 60.0
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


def measure_ingest(plan: Plan) -> IngestMeasurements:
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


# --- the results child --------------------------------------------------------------------


def _notifications(plan: Plan, wanted: set[str], count: int) -> list[dict[str, Any]]:
    """SNS events for ``count`` notifications of ``wanted`` inference ids, from the success
    topic's delivery queue (the runtime published them while the ingest benchmark ran)."""
    from asyncinfer.local.runner import parse_sns_envelope, sns_event

    sqs = boto3.client("sqs")
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while len(events) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"found {len(events)} of {count} notifications of submitted ids")
        received = sqs.receive_message(
            QueueUrl=plan.success_delivery_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=43_200,
        ).get("Messages", [])
        for message in received:
            envelope = parse_sns_envelope(message["Body"])
            notification = json.loads(envelope["Message"])
            if notification.get("inferenceId") in wanted:
                wanted.discard(notification["inferenceId"])
                events.append(sns_event(envelope, f"{plan.success_topic_arn}:bench"))
    return events[:count]


def measure_results(plan: Plan) -> ResultsMeasurements:
    from aws_lambda_powertools import Metrics

    from lambdas.common.store import RecordStore
    from lambdas.results import handler as results
    from lambdas.results.config import ResultsConfig
    from lambdas.results.logic import NotificationProcessor
    from lambdas.results.outputs import S3OutputReader

    admin = RuntimeAdmin(plan.admin_url)
    admin.wait_idle()
    rounds = plan.warmup + plan.repetitions
    needed = 1 + 2 * rounds + plan.profile_repetitions
    progress(f"collecting {needed} notifications")
    events = iter(_notifications(plan, set(plan.submitted_ids), needed))
    template_event = next(events)
    template_message = template_event["Records"][0]["Sns"]["Message"]
    template_id = json.loads(template_message)["inferenceId"]

    config = ResultsConfig.from_environ(os.environ)
    dynamodb = boto3.client("dynamodb", config=results.DYNAMODB_CLIENT_CONFIG)
    recorder = RecordingClient(dynamodb)
    capture = NotificationProcessor(
        config=config,
        store=RecordStore(recorder, config.table_name),  # type: ignore[arg-type]
        outputs=S3OutputReader(boto3.client("s3", config=results.S3_CLIENT_CONFIG)),
        metrics=Metrics(),
    )
    capture.process_message(template_message)
    if [name for name, _ in recorder.calls] != ["update_item"]:
        raise RuntimeError(f"unexpected calls for one notification: {recorder.calls}")
    update = recorder.calls[0][1]
    inline_from_notification = "responseBody" in json.loads(template_message)

    handler_events = [next(events) for _ in range(rounds)]
    bare_ids = [
        json.loads(next(events)["Records"][0]["Sns"]["Message"])["inferenceId"]
        for _ in range(rounds)
    ]
    log_bytes = [0]

    def handler_run(repetition: int) -> float:
        event = handler_events[repetition]
        context = lambda_context(plan)
        with counting_stdout_bytes(log_bytes):
            return timed(lambda: results.handler(event, context))

    def bare_run(repetition: int) -> float:
        arguments = substituted(update, {template_id: bare_ids[repetition]})
        return timed(lambda: dynamodb.update_item(**arguments))

    progress(f"results overhead: {rounds} rounds")
    samples = interleaved(rounds, {"handler": handler_run, "bare": bare_run}, lambda: None)

    test_event = copy.deepcopy(template_event)
    test_event["Records"][0]["Sns"]["Message"] = json.dumps(
        {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}
    )
    fixed = [
        timed(lambda: results.handler(test_event, lambda_context(plan))) for _ in range(rounds)
    ]
    profile_events = iter([next(events) for _ in range(plan.profile_repetitions)])
    profile = profile_by_package(
        lambda: results.handler(next(profile_events), lambda_context(plan)),
        plan.profile_repetitions,
    )
    completed_item = dynamodb.get_item(
        TableName=config.table_name, Key={"inference_id": {"S": template_id}}
    )["Item"]
    skip = plan.warmup
    return ResultsMeasurements(
        handler_seconds=samples["handler"][skip:],
        bare_seconds=samples["bare"][skip:],
        fixed_seconds=fixed[skip:],
        inline_from_notification=inline_from_notification,
        log_bytes_per_invocation=log_bytes[0] / rounds,
        items={"COMPLETED": dict(completed_item)},
        profile=profile,
    )


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 2:
        raise SystemExit("usage: python -m bench.micro PLAN_JSON OUT_JSON")
    plan = Plan.model_validate_json(Path(arguments[0]).read_text())
    measured: BaseModel = (
        measure_ingest(plan) if plan.function == "ingest" else measure_results(plan)
    )
    Path(arguments[1]).write_text(measured.model_dump_json())


if __name__ == "__main__":
    main()


# --- the parent's side ----------------------------------------------------------------------


def run_children(
    stack: BenchStack, settings: Settings
) -> tuple[IngestMeasurements, ResultsMeasurements]:
    """Runs the ingest child, then the results child (it uses the notifications the runtime
    published for the records the ingest child submitted)."""
    spec = stack.spec
    common = {
        "region": spec.region,
        "admin_url": stack.admin_url,
        "input_bucket": spec.outputs[StackOutput.INPUT_BUCKET_NAME],
        "ingest_queue_url": spec.ingest.queue_url,
        "success_delivery_queue_url": spec.outputs[LocalOutput.SUCCESS_DELIVERY_QUEUE_URL],
        "success_topic_arn": spec.endpoint.success_topic_arn or "",
        "table_name": spec.outputs[StackOutput.RESULTS_TABLE_NAME],
        "added_latency_ms": settings.added_latency_ms,
        "batch_size": settings.batch_size,
        "invoke_samples": settings.invoke_samples_per_repetition,
        "profile_repetitions": settings.profile_repetitions,
    }
    ingest_plan = Plan(
        function="ingest",
        memory_mb=spec.ingest.function.memory_mb,
        warmup=settings.ingest_warmup,
        repetitions=settings.ingest_repetitions,
        **common,
    )
    ingest = IngestMeasurements.model_validate_json(
        _run_child(stack, settings, spec.ingest.function, ingest_plan)
    )
    results_function = spec.results[0].function
    results_plan = Plan(
        function="results",
        memory_mb=results_function.memory_mb,
        warmup=settings.results_warmup,
        repetitions=settings.results_repetitions,
        submitted_ids=ingest.submitted_ids,
        **common,
    )
    results = ResultsMeasurements.model_validate_json(
        _run_child(stack, settings, results_function, results_plan)
    )
    return ingest, results


def _run_child(stack: BenchStack, settings: Settings, function: FunctionSpec, plan: Plan) -> str:
    directory = settings.work_dir
    plan_path = directory / f"{plan.function}-plan.json"
    out_path = directory / f"{plan.function}-measurements.json"
    log_path = stack.log_dir / f"{plan.function}-handler.log"
    plan_path.write_text(plan.model_dump_json())
    out_path.unlink(missing_ok=True)
    with log_path.open("w") as log:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.micro", str(plan_path), str(out_path)],
            env=stack.function_environment(function),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
    if completed.returncode != 0 or not out_path.is_file():
        raise RuntimeError(
            f"the {plan.function} benchmark failed ({completed.returncode}); "
            f"end of {log_path}:\n{log_tail(log_path)}"
        )
    return out_path.read_text()
