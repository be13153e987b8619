"""Beside figure 4: what a container's first invocation costs after the handler's import.

The import figure counts what happens before the first event. Whatever a handler defers out of
its import (the Tracer and the X-Ray SDK, pydantic schemas built on first use, Powertools'
batch processor) is not saved, only moved into the first invocation, so a cold start costs the
import plus the first invocation. This times both in one fresh interpreter, in the goal's mode
(tracing on, as deployed): the import, then one invocation with a representative event (one
S3 notification in an SQS batch for ingest; one ``Completed`` notification in an SNS event for
results, its result inline as the stack's default ``include_inference_response`` delivers it),
``time.process_time`` around each.

The invocation runs with the function's environment and its own botocore clients, pointed
(``AWS_ENDPOINT_URL``) at a local stub that answers every request 403 ``AccessDenied``. So it
does all a real first invocation does up to its first AWS call (validating the configuration,
creating the clients, the Tracer's subsegments, parsing the event, building the record, signing
and sending the request) and then fails as a denied call fails, without waiting for any
network: the stub's own CPU time is this process's, not counted. Past that first call, a real
invocation does more (further calls), the same before and after any change to the import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ENDPOINT_NAME = "bench-endpoint"
INPUT_BUCKET = "bench-input"
ACCOUNT = "123456789012"
# What each function's configuration requires, besides what the import probe already sets.
FUNCTION_ENVIRONMENT = {
    "ingest": {"TABLE_NAME": "bench", "ENDPOINT_NAME": ENDPOINT_NAME, "INPUT_BUCKET": INPUT_BUCKET},
    "results": {"TABLE_NAME": "bench", "ENDPOINT_NAME": ENDPOINT_NAME},
}
# The yardsticks (bench/naive.py, bench/naive_results.py): the module each asset folder holds,
# and the function whose event and environment they take.
NAIVE = {"naive": "ingest", "naive_results": "results"}
HANDLER_MODULES = {
    "ingest": "lambdas.ingest.handler",
    "results": "lambdas.results.handler",
    **{name: name for name in NAIVE},
}
_MARKER = "first-call:"
_PROBE = f"""
import json, sys, time
event = json.loads(sys.stdin.read())
cpu = time.process_time()
import {{module}} as entry
imported = time.process_time() - cpu


class Context:
    function_name = "{{function}}"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:{ACCOUNT}:function:{{function}}"
    aws_request_id = "8d1f6a52-2d2c-4b84-b1a0-63b0f2c3a6d1"

    def get_remaining_time_in_millis(self):
        return 60_000


cpu = time.process_time()
try:
    entry.handler(event, Context())
except Exception:
    pass  # the denied call fails the results invocation; the cost is what is measured
invoked = time.process_time() - cpu
print("{_MARKER}", imported, invoked)
"""


class _Refusing(BaseHTTPRequestHandler):
    """Every AWS request: 403 AccessDenied (not retried by botocore), in either protocol."""

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.headers.get("X-Amz-Target"):  # JSON protocol (DynamoDB)
            content_type = "application/x-amz-json-1.0"
            body = json.dumps({"__type": "AccessDeniedException", "message": "bench"}).encode()
        else:  # REST-XML (S3) and the rest
            content_type = "application/xml"
            body = b"<Error><Code>AccessDenied</Code><Message>bench</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def refusing_endpoint() -> Iterator[str]:
    """A local endpoint URL that refuses every AWS request, for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def first_event(function: str) -> dict[str, Any]:
    """A representative first event: what the stack delivers to ``function``."""
    if function == "ingest":
        notification = {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": "2026-11-21T11:59:59.123Z",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": INPUT_BUCKET},
                        "object": {"key": "in/a.json", "size": 10, "eTag": "0" * 32},
                    },
                }
            ]
        }
        message = {
            "messageId": "5f1a8a52-2d2c-4b84-b1a0-63b0f2c3a6d1",
            "receiptHandle": "bench",
            "body": json.dumps(notification),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:ingest",
            "awsRegion": "us-east-1",
        }
        return {"Records": [message]}
    result = {
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
        "eventTime": "2026-11-21T10:00:03.125Z",
        "receivedTime": "2026-11-21T10:00:00.250Z",
        "invocationStatus": "Completed",
        "inferenceId": "0f" * 32,
        "requestParameters": {"endpointName": ENDPOINT_NAME, "inputLocation": "s3://in/a.json"},
        "responseParameters": {"contentType": "application/json", "outputLocation": "s3://o/k"},
        # the stack's default include_inference_response: the result comes inline
        "responseBody": {"content": "eyJsYWJlbCI6IDB9", "encoding": "BASE64", "message": ""},
    }
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:success"
    sns: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": "8d1f6a52-2d2c-4b84-b1a0-63b0f2c3a6d1",
        "TopicArn": topic,
        "Subject": None,
        "Message": json.dumps(result),
        "Timestamp": "2026-11-21T10:00:03.200Z",
        "SignatureVersion": "1",
        "Signature": "bench",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {},
    }
    record = {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic}:1",
        "Sns": sns,
    }
    return {"Records": [record]}


def first_call_seconds(
    function: str, asset: Path, environment: dict[str, str], endpoint_url: str
) -> tuple[float, float]:
    """One fresh interpreter's CPU seconds to import ``function``'s handler (or a yardstick's,
    ``NAIVE``), then to run its first invocation. ``environment`` is the import probe's (mode
    included)."""
    served = NAIVE.get(function, function)
    probe = _PROBE.format(function=function, module=HANDLER_MODULES[function])
    completed = subprocess.run(
        [sys.executable, "-B", "-c", probe],
        cwd=asset,
        env={
            **environment,
            **FUNCTION_ENVIRONMENT[served],
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL": endpoint_url,
            # an invocation's trace header, as Lambda sets it with active tracing
            "_X_AMZN_TRACE_ID": "Root=1-6740a1b2-aaaabbbbccccdddd00001111;Parent=1;Sampled=1",
        },
        input=json.dumps(first_event(served)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [line] = [line for line in completed.stdout.splitlines() if line.startswith(_MARKER)]
    imported, invoked = line.removeprefix(_MARKER).split()
    return float(imported), float(invoked)
