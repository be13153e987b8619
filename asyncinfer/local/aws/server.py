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
from typing import Any

from asyncinfer.local.aws.authorization import (
    complete_authorization,
    complete_missing_key_answers,
    function_arn,
    seed_admin,
)

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
    if args.iam:
        seed_admin()
        complete_authorization()
        complete_missing_key_answers()
    _serialize_dynamodb_writes()
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
