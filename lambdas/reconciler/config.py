"""The reconciler's settings: read from the environment once, validated, then passed down.

Each field's alias is its environment variable (``lambdas.common.contract.Env``); see
``lambdas.common.environment`` for how they are loaded. It shares ``TABLE_NAME``,
``ENDPOINT_NAME``, ``RETENTION_DAYS`` and ``INLINE_RESULT_MAX_BYTES`` with the results function
(both record outcomes through ``lambdas.common.outcomes``, whose ``OutcomeConfig`` reads
them) and ``REQUEST_TTL_SECONDS``/``INVOCATION_TIMEOUT_SECONDS`` with the ingest function
(they set the deadline of a submitted request). ``SUBMITTED_MARGIN_SECONDS`` (default 1800,
``lambdas.common.deadlines.SUBMITTED_MARGIN``) is the margin added to them; the stack sets that
default, local-mode tests set it small so that records fall due within seconds.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from lambdas.common.contract import (
    INVOCATION_TIMEOUT_SECONDS_DEFAULT,
    INVOCATION_TIMEOUT_SECONDS_MAX,
    INVOCATION_TIMEOUT_SECONDS_MIN,
    REQUEST_TTL_SECONDS_DEFAULT,
    REQUEST_TTL_SECONDS_MAX,
    REQUEST_TTL_SECONDS_MIN,
    STATUS_INDEX,
    Env,
    Service,
)
from lambdas.common.deadlines import (
    DEAD_LETTER_RETENTION_SECONDS_DEFAULT,
    INGEST_QUEUE_RETENTION_SECONDS_DEFAULT,
    SUBMITTED_MARGIN,
    DeadlineRules,
)
from lambdas.common.outcomes import OutcomeConfig

SQS_RETENTION_SECONDS_MIN = 60
SQS_RETENTION_SECONDS_MAX = 14 * 24 * 3600
# DynamoDB reads and writes per run stay small and steady: see README "Reconciler".
PAGE_SIZE_DEFAULT = 50
MAX_RECORDS_DEFAULT = 500


class ReconcilerConfig(OutcomeConfig):
    function = Service.RECONCILER

    status_index: str = Field(default=STATUS_INDEX, alias=Env.STATUS_INDEX, min_length=1)
    # how far the review of the sharded status index has gone (layout 2; "" in layout 1)
    state_table: str = Field(default="", alias=Env.RECONCILER_STATE_TABLE)
    # The bucket the endpoint writes outputs and failures to; "" when the reconciler may not
    # read it (import mode without output_bucket_name): locations are then not checked.
    output_bucket: str = Field(default="", alias=Env.OUTPUT_BUCKET)
    request_ttl_seconds: int = Field(
        default=REQUEST_TTL_SECONDS_DEFAULT,
        alias=Env.REQUEST_TTL_SECONDS,
        ge=REQUEST_TTL_SECONDS_MIN,
        le=REQUEST_TTL_SECONDS_MAX,
    )
    invocation_timeout_seconds: int = Field(
        default=INVOCATION_TIMEOUT_SECONDS_DEFAULT,
        alias=Env.INVOCATION_TIMEOUT_SECONDS,
        ge=INVOCATION_TIMEOUT_SECONDS_MIN,
        le=INVOCATION_TIMEOUT_SECONDS_MAX,
    )
    ingest_queue_retention_seconds: int = Field(
        default=INGEST_QUEUE_RETENTION_SECONDS_DEFAULT,
        alias=Env.INGEST_QUEUE_RETENTION_SECONDS,
        ge=SQS_RETENTION_SECONDS_MIN,
        le=SQS_RETENTION_SECONDS_MAX,
    )
    dead_letter_retention_seconds: int = Field(
        default=DEAD_LETTER_RETENTION_SECONDS_DEFAULT,
        alias=Env.DEAD_LETTER_RETENTION_SECONDS,
        ge=SQS_RETENTION_SECONDS_MIN,
        le=SQS_RETENTION_SECONDS_MAX,
    )
    page_size: int = Field(default=PAGE_SIZE_DEFAULT, alias=Env.RECONCILE_PAGE_SIZE, ge=1, le=1000)
    max_records: int = Field(
        default=MAX_RECORDS_DEFAULT, alias=Env.RECONCILE_MAX_RECORDS, ge=1, le=100_000
    )
    submitted_margin_seconds: int = Field(
        default=int(SUBMITTED_MARGIN.total_seconds()),
        alias=Env.SUBMITTED_MARGIN_SECONDS,
        ge=0,
        le=SQS_RETENTION_SECONDS_MAX,
    )

    @property
    def rules(self) -> DeadlineRules:
        return DeadlineRules(
            request_ttl_seconds=self.request_ttl_seconds,
            invocation_timeout_seconds=self.invocation_timeout_seconds,
            ingest_queue_retention_seconds=self.ingest_queue_retention_seconds,
            dead_letter_retention_seconds=self.dead_letter_retention_seconds,
            submitted_margin=timedelta(seconds=self.submitted_margin_seconds),
        )
