"""The reference the ingest handler is measured against: a handler as public samples write it.

One record after another: HeadObject, InvokeEndpointAsync, PutItem, with module-level clients
and no batching, concurrency, claim or validation. It is only a yardstick for the batch latency
figure; it is not idempotent and records nothing on failure.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3

s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker-runtime")
dynamodb = boto3.client("dynamodb")
TABLE_NAME = os.environ["TABLE_NAME"]
ENDPOINT_NAME = os.environ["ENDPOINT_NAME"]


def handler(event: dict[str, Any], context: Any) -> None:
    for message in event["Records"]:
        for record in json.loads(message["body"]).get("Records", []):
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
            location = f"s3://{bucket}/{key}"
            head = s3.head_object(Bucket=bucket, Key=key)
            response = sagemaker.invoke_endpoint_async(
                EndpointName=ENDPOINT_NAME,
                InputLocation=location,
                ContentType=head.get("ContentType", "application/octet-stream"),
                Accept="application/json",
            )
            now = datetime.now(UTC).isoformat()
            dynamodb.put_item(
                TableName=TABLE_NAME,
                Item={
                    "inference_id": {"S": response["InferenceId"]},
                    "status": {"S": "SUBMITTED"},
                    "input_location": {"S": location},
                    "output_location": {"S": response["OutputLocation"]},
                    "created_at": {"S": now},
                    "updated_at": {"S": now},
                },
            )
