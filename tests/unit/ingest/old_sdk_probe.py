"""Run in a subprocess with the Lambda runtime's SDK first on sys.path (see test_service_models).

Builds the ingest function's clients the way the function does, sends InvokeEndpointAsync with
the 2026 members to a loopback server that records what arrives, and prints one JSON line. The
S3 and DynamoDB clients, on the pruned models the asset ships (``lambdas.common.pruned_models``),
send a HeadObject and a PutItem there too.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore
from botocore.exceptions import ParamValidationError

from lambdas.ingest.clients import SageMakerAsyncInvoker, create_clients
from lambdas.ingest.values import InvocationRequest

received: list[dict[str, Any]] = []


class Recorder(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # S3 HeadObject
        received.append({"method": "HEAD", "path": self.path, "headers": dict(self.headers)})
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", "7")
        self.send_header("ETag", '"0123"')
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        received.append(
            {"path": self.path, "headers": dict(self.headers.items()), "body": body.hex()}
        )
        if self.headers.get("X-Amz-Target"):  # DynamoDB
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id", "generated")
        extension = self.headers.get("X-Amzn-SageMaker-S3OutputPathExtension")
        filename = self.headers.get("X-Amzn-SageMaker-Filename", "uuid.out")
        folder = f"s3://out/results/{extension}" if extension else "s3://out/results"
        payload = json.dumps({"InferenceId": inference_id}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Amzn-SageMaker-OutputLocation", f"{folder}/{filename}")
        self.send_header("X-Amzn-SageMaker-FailureLocation", f"{folder}/uuid-error.out")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    # How local mode points the function at its runtime; botocore reads it per client.
    for service in ("SAGEMAKER_RUNTIME", "S3", "DYNAMODB"):
        os.environ[f"AWS_ENDPOINT_URL_{service}"] = endpoint_url
    result: dict[str, Any] = {"botocore": botocore.__version__, "botocore_file": botocore.__file__}

    # The runtime's own model: botocore refuses the new members before sending anything.
    plain = boto3.session.Session().client("sagemaker-runtime")
    try:
        plain.invoke_endpoint_async(EndpointName="ep", InputLocation="s3://in/k", Filename="x")
        result["plain_refused"] = False
    except ParamValidationError as error:
        result["plain_refused"] = True
        result["plain_error"] = str(error)

    # The ingest function's clients, on a session that finds the bundled model first.
    clients = create_clients(max_pool_connections=2)
    # Through the function's own invoker, as the Submitter calls it (optional members sent
    # only when set).
    invoker = SageMakerAsyncInvoker(clients.sagemaker_runtime)
    common = {
        "endpoint_name": "ep",
        "content_type": "application/json",
        "accept": "application/json",
        "custom_attributes": "trace_id=probe",
        "request_ttl_seconds": 60,
        "invocation_timeout_seconds": 60,
        "output_path_extension": "a/b!20c",
    }
    inline = invoker.invoke(
        InvocationRequest(
            inference_id="a" * 64,
            body=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
            filename="aaaaaaaaaaaaaaaaaaaaaaaaaaaa.out",
            **common,  # type: ignore[arg-type]
        )
    )
    by_location = invoker.invoke(
        InvocationRequest(
            inference_id="b" * 64,
            input_location="s3://in/a/b c/k.json",
            filename="bbbbbbbbbbbbbbbbbbbbbbbbbbbb.out",
            **common,  # type: ignore[arg-type]
        )
    )
    result["responses"] = [
        {
            "InferenceId": response.inference_id,
            "OutputLocation": response.output_location,
            "FailureLocation": response.failure_location,
        }
        for response in (inline, by_location)
    ]
    head = clients.s3.head_object(Bucket="in", Key="a/k.csv")
    clients.dynamodb.put_item(TableName="t", Item={"inference_id": {"S": "a" * 64}})
    result["head_object"] = {"ContentType": head["ContentType"], "ETag": head["ETag"]}
    result["pruned_models"] = [
        client.meta.service_model.operation_names for client in (clients.s3, clients.dynamodb)
    ]
    result["received"] = received
    server.shutdown()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
