"""Applies the SageMaker notifications of one SNS event as outcomes in the results table.

Each notification is recorded by the code every function that records outcomes shares
(``lambdas.common.outcomes``: ordering, inline results, metrics). What is this function's
own is the event: every record is processed, and a message that cannot be parsed, or whose
write fails, makes the invocation fail after the others, so Lambda's asynchronous retries and
then the function's on-failure destination keep it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lambdas.common.outcomes import Disposition, OutcomeRecorder

if TYPE_CHECKING:
    from lambdas.results.envelope import SageMakerSnsRecord


class UnprocessedNotificationsError(Exception):
    """Some records of an SNS event failed; raised after the others were processed."""

    def __init__(self, failures: Sequence[tuple[str, Exception]], total: int) -> None:
        details = "; ".join(
            f"{message_id}: {type(error).__name__}: {error}" for message_id, error in failures
        )
        super().__init__(f"{len(failures)} of {total} notifications not processed: {details}")
        self.failures = list(failures)


class NotificationProcessor(OutcomeRecorder):
    """The outcome recorder, applied to every record of an SNS event."""

    def process_records(self, records: Sequence[SageMakerSnsRecord]) -> list[Disposition]:
        """Processes every record; raises ``UnprocessedNotificationsError`` at the end if any
        failed (the processed ones are idempotent when Lambda retries the event)."""
        dispositions: list[Disposition] = []
        failures: list[tuple[str, Exception]] = []
        for record in records:
            with self._logger.append_context_keys(sns_message_id=record.Sns.MessageId):
                try:
                    dispositions.append(self.process_message(record.Sns.Message))
                except Exception as error:  # logged where it happened, with its context
                    failures.append((record.Sns.MessageId, error))
        if failures:
            raise UnprocessedNotificationsError(failures, len(records)) from failures[0][1]
        return dispositions
