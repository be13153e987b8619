"""Shapes AWS documents, written out as literals (never read from the code under test), for the
tests on either side of a wire to hold the code to."""

from __future__ import annotations

# The keys of an asynchronous inference's SNS notification, success or error, in the order the
# SageMaker developer guide's example notifications show them.
NOTIFICATION_KEYS = [
    "awsRegion",
    "eventTime",
    "receivedTime",
    "invocationStatus",
    "requestParameters",
    "responseParameters",
    "inferenceId",
    "eventVersion",
    "eventSource",
    "eventName",
]
