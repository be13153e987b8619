"""The local AWS APIs (S3, SQS, SNS, DynamoDB, Lambda's Invoke): a moto server on a loopback port.

Run as ``python -m asyncinfer.local.aws.server --port 0``; it prints ``READY <port>`` once it
answers, and stops on SIGTERM/SIGINT.

moto's S3 event notifications omit fields that real S3 sends. The most important is
``versionId``: the pipeline derives the inference id from the object version, so without it
local mode would compute different ids than AWS. This module adds the fields S3 documents
(``versionId`` for versioned buckets, ``sequencer``, ``userIdentity``, ``requestParameters``,
``responseElements``) to moto's event before it is queued.

moto cannot run the project's functions (it would need Docker): local mode's event runner runs
them. An asynchronous ``Invoke`` (``InvocationType=Event``) of a function the runner delivers a
topic to is handed to the runner here: each SNS record of the event goes, as the SNS envelope an
SQS subscription holds, to the delivery queue local mode created for that function and the
record's topic (tagged ``asyncinfer:local:function-arn`` and ``asyncinfer:local:topic-arn`` by
``provision.resources``), where the runner invokes the function with Lambda's async retries and
on-failure destination, as AWS does for an event it accepted (Lambda developer guide, "Invoking
a Lambda function asynchronously": Lambda "places the event in a queue and returns a success
response").
Any other Invoke is moto's own.

Under IAM (``--iam``, local mode's default) the server also completes moto's authorization
(``authorization``: the administrator identity and the checks moto lacks).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from asyncinfer.local.aws.authorization import (
    complete_authorization,
    complete_missing_key_answers,
    complete_refusals,
    function_arn,
    seed_admin,
)
from asyncinfer.local.aws.transactions import keep_streams_on_rollback

LOCAL_PRINCIPAL = "AWS:AIDALOCALMODEUSER"
# Tags of a delivery queue standing in for a function's SNS subscription (``provision.resources``)
FUNCTION_TAG = "asyncinfer:local:function-arn"
TOPIC_TAG = "asyncinfer:local:topic-arn"


def _complete_s3_events() -> None:
    from moto.s3 import notifications

    original = notifications._get_s3_event
    counter = iter(range(1, sys.maxsize))
    lock = threading.Lock()

    def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        event = original(event_name, bucket, key, notification_id)
        with lock:
            sequence = next(counter)
        for record in event["Records"]:
            record.setdefault("userIdentity", {"principalId": LOCAL_PRINCIPAL})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault(
                "responseElements",
                {"x-amz-request-id": f"LOCAL{sequence:011d}", "x-amz-id-2": "local"},
            )
            s3_object = record["s3"]["object"]
            if bucket.is_versioned and getattr(key, "version_id", None):
                s3_object["versionId"] = key.version_id
            s3_object["sequencer"] = f"{sequence:016X}"
        return event

    notifications._get_s3_event = s3_event


def _envelope(sns: Any) -> dict[str, Any]:
    """An SNS record of a Lambda event as the envelope SNS delivers to an SQS subscription."""
    renamed = {"SigningCertUrl": "SigningCertURL", "UnsubscribeUrl": "UnsubscribeURL"}
    return {renamed.get(name, name): value for name, value in sns.items() if value is not None}


def _sns_records(body: Any) -> list[dict[str, Any]] | None:
    """The ``Sns`` objects of an SNS event (``None`` if the payload is not one)."""
    import json

    try:
        event = json.loads(body or b"null")
    except ValueError:
        return None
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return None
    found: list[dict[str, Any]] = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, dict) else None
        if (
            not isinstance(sns, dict)
            or record.get("EventSource") != "aws:sns"
            or not isinstance(sns.get("TopicArn"), str)
            or not isinstance(sns.get("Message"), str)
        ):
            return None
        found.append(sns)
    return found


def _hand_to_event_runner(handler: Any) -> tuple[int, dict[str, str], str] | None:
    """An async Invoke of a function local mode runs: its SNS records onto the function's
    delivery queues. ``None`` when local mode does not run the function (moto answers)."""
    import json

    from moto.sqs.models import sqs_backends

    target = function_arn(handler)
    if target is None:
        return None
    backend = sqs_backends[handler.current_account][handler.region]
    deliveries = {
        queue.tags.get(TOPIC_TAG): queue.name
        for queue in backend.queues.values()
        if queue.tags.get(FUNCTION_TAG) == target.removesuffix(":$LATEST")
    }
    if not deliveries:
        return None
    records = _sns_records(handler.body)
    unknown = (
        None if records is None else sorted({r["TopicArn"] for r in records} - set(deliveries))
    )
    if records is None or unknown:
        why = (
            "is not an SNS event"
            if records is None
            else f"names topics the function does not subscribe to: {', '.join(unknown or [])}"
        )
        message = (
            f"local mode runs {target} only for the topics it subscribes to; this "
            f"asynchronous invocation {why}"
        )
        headers = {"x-amzn-errortype": "InvalidRequestContentException", "status": "400"}
        return 400, headers, json.dumps({"Type": "User", "message": message})
    for sns in records:
        backend.send_message(deliveries[sns["TopicArn"]], json.dumps(_envelope(sns)))
    return 202, {"status": "202", "content-type": "application/json"}, ""


def _complete_lambda_invoke() -> None:
    """Async invocations of the functions local mode runs go to its event runner."""
    from moto.awslambda.responses import LambdaResponse

    original = LambdaResponse.invoke

    def invoke(self: Any) -> Any:
        if self.headers.get("X-Amz-Invocation-Type") == "Event":
            handed = _hand_to_event_runner(self)
            if handed is not None:
                return handed
        return original(self)

    LambdaResponse.invoke = invoke  # type: ignore[method-assign]


# S3 User Guide, "Working with object metadata": "the user-defined metadata is limited to 2 KB
# in size. The size of user-defined metadata is measured by taking the sum of the number of
# bytes in the UTF-8 encoding of each key and value"; "Naming Amazon S3 objects": "The object
# key name is a sequence of Unicode characters with UTF-8 encoding of up to 1,024 bytes long".
USER_METADATA_MAX_BYTES = 2048
KEY_MAX_BYTES = 1024
USER_METADATA_HEADER = "x-amz-meta-"


def s3_refusal(key: str, headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The error S3 answers a PutObject or CreateMultipartUpload with (code, message; both
    400 Bad Request, S3 API Reference "Error responses"), or None when S3 accepts it."""
    if len(key.encode("utf-8")) > KEY_MAX_BYTES:
        return "KeyTooLongError", "Your key is too long"
    size = sum(
        len(name[len(USER_METADATA_HEADER) :].encode()) + len(str(value).encode())
        for name, value in headers.items()
        if name.lower().startswith(USER_METADATA_HEADER)
    )
    if size > USER_METADATA_MAX_BYTES:
        return (
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size",
        )
    return None


def _enforce_s3_limits() -> None:
    """moto stores any key length and any amount of user metadata; S3 refuses both."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    put_object = S3Response.put_object
    key_post = S3Response._key_response_post

    def checked_put(self: Any) -> Any:
        refusal = s3_refusal(self.parse_key_name(), dict(self.headers))
        if refusal is not None:
            raise S3ClientError(*refusal)
        return put_object(self)

    def checked_post(self: Any, *arguments: Any) -> Any:
        request, _, _, query, key = arguments  # moto's (request, body, bucket, query, key)
        if "uploads" in query:  # CreateMultipartUpload: the object's key and metadata
            refusal = s3_refusal(key, dict(request.headers))
            if refusal is not None:
                raise S3ClientError(*refusal)
        return key_post(self, *arguments)

    setattr(S3Response, "put_object", checked_put)  # noqa: B010 - a method replaced
    setattr(S3Response, "_key_response_post", checked_post)  # noqa: B010


def _serialize_dynamodb_writes() -> None:
    """One DynamoDB write at a time, as AWS applies a conditional write atomically.

    moto 5.2.5 evaluates a ``ConditionExpression`` and then writes (``dynamodb/models/
    __init__.py`` ``update_item``: ``get_item``, check, update) with no lock, so two concurrent
    writes to one item can both pass a condition only one of them would pass on AWS ("condition
    expressions ... the write succeeds only if the condition holds", DynamoDB developer guide,
    "Condition expressions"). The table's stream then shows both (two terminal transitions of
    one record). A process-wide lock around the writing operations restores the atomicity.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def _limit_put_events() -> None:
    """``PutEvents`` refuses more than 10 entries or 256 KB per call (``aws.eventbridge``);
    moto checks the count only."""
    from moto.events.exceptions import ValidationException
    from moto.events.models import EventsBackend

    from asyncinfer.local.aws.eventbridge import put_events_refusal

    original = EventsBackend.put_events

    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        refusal = put_events_refusal(events)
        if refusal is not None:
            raise ValidationException(refusal)
        return original(self, events)

    EventsBackend.put_events = put_events  # type: ignore[method-assign]


# The services local mode calls. moto's server builds a service's application (importing its
# models, responses and their dependencies) on the first request for it, in the request's
# thread: two first requests at once import the same modules in two threads, and one can meet
# a partially initialized module (``ImportError: cannot import name 'HTTPAdapter' from
# partially initialized module 'requests.adapters'``). Building them before serving avoids it.
LOCAL_SERVICES = (
    "s3",
    "sqs",
    "sns",
    "dynamodb",
    "dynamodbstreams",
    "events",
    "iam",
    "sts",
    "lambda",
    "kms",
    "logs",
    "cloudwatch",
)


def _lighten_request_handling() -> None:
    """Two costs moto's server pays on every request, neither an AWS behaviour: sampled in the
    soak, the two held more of the server's busy time than moto's handling of the requests.

    - moto finds a request's service by testing the host against ``list_of_moto_modules()``,
      which lists moto's package folder and stats each entry, every time: the folder does not
      change while the server runs, so it is read once;
    - werkzeug writes its access log (one line per request, kept: ``aws.log``) through a
      colorama wrapper of stderr; a plain handler writes the same lines.
    """
    import logging

    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    setattr(backends, "list_of_moto_modules", lambda: modules)  # noqa: B010 - read once
    access_log = logging.getLogger("werkzeug")
    access_log.setLevel(logging.INFO)
    access_log.addHandler(logging.StreamHandler(sys.stderr))


def _import_services() -> None:
    from moto.moto_server.werkzeug_app import create_backend_app

    for service in LOCAL_SERVICES:
        create_backend_app(service)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--iam",
        action="store_true",
        help="seed the local-admin identity and complete moto's authorization checks "
        "(enforcement starts with POST /moto-api/reset-auth)",
    )
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer

    _complete_s3_events()
    _complete_lambda_invoke()
    _limit_put_events()
    _enforce_s3_limits()
    if args.iam:
        seed_admin()
        complete_authorization()
        complete_missing_key_answers()
        complete_refusals()
    keep_streams_on_rollback()  # before the lock wraps the method: it runs inside the lock
    _serialize_dynamodb_writes()
    _lighten_request_handling()
    _import_services()
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"READY {server.get_host_and_port()[1]}", flush=True)
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()
