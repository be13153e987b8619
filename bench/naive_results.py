"""The yardstick for the results function's cold start: a results handler as public samples
write it.

SNS delivers SageMaker's notification; the handler reads it and records the outcome with one
UpdateItem, on a module-level client. No validation, no ordering rules (an out-of-order or
duplicated notification can overwrite a later state), no inline result, no metrics: only a
yardstick for ``cold_start_vs_naive_results_handler`` (bench/coldstart.py).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")
TABLE_NAME = os.environ["TABLE_NAME"]


def handler(event: dict[str, Any], context: Any) -> None:
    for record in event["Records"]:
        message = json.loads(record["Sns"]["Message"])
        if message.get("eventName") != "InferenceResult":
            continue  # the TestNotification sent after the endpoint is created
        completed = message["invocationStatus"] == "Completed"
        location = (message.get("responseParameters") or {}).get(
            "outputLocation" if completed else "failureLocation", ""
        )
        dynamodb.update_item(
            TableName=TABLE_NAME,
            Key={"inference_id": {"S": message["inferenceId"]}},
            UpdateExpression="SET #s = :s, output_location = :o, failure_reason = :f, "
            "updated_at = :u",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": "COMPLETED" if completed else "FAILED"},
                ":o": {"S": location},
                ":f": {"S": message.get("failureReason", "")},
                ":u": {"S": datetime.now(UTC).isoformat()},
            },
        )
