"""The stack's queues: all encrypted (SQS-managed keys) and TLS-only."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

DEAD_LETTER_RETENTION = Duration.days(14)  # SQS's maximum: time to inspect and redrive


def secure_queue(
    scope: Construct,
    construct_id: str,
    *,
    retention_period: Duration,
    visibility_timeout: Duration | None = None,
    redrive: sqs.DeadLetterQueue | None = None,
) -> sqs.Queue:
    """Every queue of the stack: SQS-managed encryption, TLS-only."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention_period,
        visibility_timeout=visibility_timeout,
        dead_letter_queue=redrive,
    )


def dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    return secure_queue(scope, construct_id, retention_period=DEAD_LETTER_RETENTION)
