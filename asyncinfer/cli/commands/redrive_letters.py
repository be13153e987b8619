"""``redrive``'s run: dead letters back to where they came from, never deleting before the copy
is sent. ``redrive_sources`` says where each source's messages go and what each becomes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asyncinfer.cli.access.messaging import Functions, OutgoingMessage, QueueMessage, Queues
from asyncinfer.cli.commands.redrive_sources import (
    Copy,
    RedriveSource,
    UnroutableMessage,
    copies_for,
)
from asyncinfer.cli.errors import AwsCallError, cli_error_for

HOLD_SECONDS = 300  # how long a message we looked at stays invisible while the run goes on
IDLE_ROUNDS = 3  # receives in a row that bring nothing new before the queue counts as drained


@dataclass(frozen=True)
class MovedMessage:
    message_id: str  # the dead letter's SQS message id
    inference_ids: tuple[str, ...]  # the inferences it concerns, when the body names them


@dataclass
class RedriveReport:
    source: RedriveSource
    dry_run: bool
    moved: list[MovedMessage] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (message id, why)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _moved(message: QueueMessage, copies: list[Copy]) -> MovedMessage:
    ids = tuple(copy.inference_id for copy in copies if copy.inference_id)
    return MovedMessage(message.message_id, ids)


class Redriver:
    def __init__(
        self,
        queues: Queues,
        functions: Functions,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._queues = queues
        self._functions = functions
        self._sleep = sleep

    def run(self, source: RedriveSource, *, dry_run: bool) -> RedriveReport:
        """Drain ``source`` once. Every message looked at and not moved is made visible again
        at the end; a moved message is deleted only after all its copies were accepted."""
        report = RedriveReport(source, dry_run)
        seen: set[str] = set()
        held: list[str] = []
        idle_rounds = 0
        try:
            while idle_rounds < IDLE_ROUNDS:
                batch = self._queues.receive(source.queue_url, visibility_timeout=HOLD_SECONDS)
                fresh = [message for message in batch if message.message_id not in seen]
                held.extend(
                    message.receipt_handle for message in batch if message.message_id in seen
                )
                if not fresh:
                    if not batch and self._queues.depth(source.queue_url).visible == 0:
                        break
                    idle_rounds += 1
                    self._sleep(0.1 * idle_rounds)
                    continue
                idle_rounds = 0
                seen.update(message.message_id for message in fresh)
                held.extend(self._move(source, fresh, report, dry_run=dry_run))
        finally:
            if held:
                self._queues.release(source.queue_url, held)
        return report

    def _move(
        self,
        source: RedriveSource,
        messages: list[QueueMessage],
        report: RedriveReport,
        *,
        dry_run: bool,
    ) -> list[str]:
        """Copy then delete one received batch; returns the receipts to release."""
        keep: list[str] = []
        planned: list[tuple[QueueMessage, list[Copy]]] = []
        for message in messages:
            try:
                copies = copies_for(source, message)
            except UnroutableMessage as reason:
                report.skipped.append((message.message_id, str(reason)))
                keep.append(message.receipt_handle)
                continue
            planned.append((message, copies))
        if dry_run:
            for message, copies in planned:
                report.moved.append(_moved(message, copies))
                keep.append(message.receipt_handle)
            return keep
        errors = self._send(planned)
        done: list[str] = []
        for message, copies in planned:
            error = errors.get(message.message_id)
            if error is not None:
                report.failed.append((message.message_id, error))
                keep.append(message.receipt_handle)
                continue
            report.moved.append(_moved(message, copies))
            done.append(message.receipt_handle)
        self._queues.delete(source.queue_url, done)
        return keep

    def _send(self, planned: list[tuple[QueueMessage, list[Copy]]]) -> dict[str, str]:
        """Send every copy; returns message id -> error for the messages not fully copied."""
        errors: dict[str, str] = {}
        by_queue: dict[str, list[tuple[str, Copy]]] = {}
        for message, copies in planned:
            for copy in copies:
                if copy.queue_url is not None:
                    by_queue.setdefault(copy.queue_url, []).append((message.message_id, copy))
                elif message.message_id not in errors:  # one failed copy keeps the message
                    try:
                        self._functions.invoke_async(copy.function_name or "", copy.event)
                    except AwsCallError as error:
                        errors[message.message_id] = cli_error_for(error).format_message()
        for queue_url, entries in by_queue.items():
            outgoing = [OutgoingMessage(copy.body, copy.queue_attributes) for _, copy in entries]
            try:
                rejected = self._queues.send(queue_url, outgoing)
            except AwsCallError as error:
                reason = cli_error_for(error).format_message()
                errors.update((message_id, reason) for message_id, _ in entries)
                continue
            for position in rejected:
                errors[entries[position][0]] = f"{queue_url} rejected the copy"
        return errors
