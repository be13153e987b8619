"""The local AWS APIs (S3, SQS, SNS, DynamoDB): a moto server on a loopback port.

Run as ``python -m asyncinfer.local.aws_server --port 0``; it prints ``READY <port>`` once it
answers, and stops on SIGTERM/SIGINT.

moto's S3 event notifications omit fields that real S3 sends. The most important is
``versionId``: the pipeline derives the inference id from the object version, so without it
local mode would compute different ids than AWS. This module adds the fields S3 documents
(``versionId`` for versioned buckets, ``sequencer``, ``userIdentity``, ``requestParameters``,
``responseElements``) to moto's event before it is queued.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

LOCAL_PRINCIPAL = "AWS:AIDALOCALMODEUSER"


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
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer

    _complete_s3_events()
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
