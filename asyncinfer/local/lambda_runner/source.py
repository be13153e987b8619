"""What an event source is to the runner: the interface both sources implement, their
counters, and the SQS limits both live by."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Protocol

MAX_MESSAGES_PER_RECEIVE = 10  # SQS ReceiveMessage limit
MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200  # SQS limit: 12 hours
PAUSE_AFTER_AWS_ERROR_SECONDS = 1.0


@dataclass(frozen=True)
class SourceStats:
    """Counters of one source since ``start()``.

    ``batches`` counts invocations; ``messages_delivered`` the records handed to the handler
    (redeliveries and retries included); ``succeeded`` the messages done with;
    ``failed`` failed deliveries (each redelivery or attempt counts); ``retried`` deliveries
    that were a redelivery (SQS) or a retry attempt (SNS); ``moved_to_dlq`` messages sent to
    the dead-letter queue (SQS: failed on their last allowed receive, which the queue's
    redrive policy moves; SNS: moved by the runner, as SNS does); ``dropped`` SNS messages that
    exhausted their attempts with no dead-letter queue (Lambda discards those); ``abandoned``
    messages given back untouched (at ``stop()``, or when their dead-letter queue cannot be
    reached); ``worker_restarts`` workers lost to a crash, a kill or a timeout; ``duplicated``
    copies sent back to the queue by the ``duplicate_delivery_rate`` fault knob.
    """

    source: str
    function_name: str
    batches: int = 0
    messages_delivered: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    moved_to_dlq: int = 0
    dropped: int = 0
    abandoned: int = 0
    worker_restarts: int = 0
    duplicated: int = 0


_COUNTERS = tuple(f.name for f in fields(SourceStats) if f.name not in ("source", "function_name"))


class Counters:
    """The live counters of one source; ``snapshot()`` reads them all at once."""

    def __init__(self, source: str, function_name: str) -> None:
        self._source = source
        self._function_name = function_name
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, increment in increments.items():
                self._counts[name] += increment

    def snapshot(self) -> SourceStats:
        with self._lock:
            return SourceStats(
                source=self._source, function_name=self._function_name, **self._counts
            )


class EventSource(Protocol):
    """One source of events for one function: an SQS event source mapping (``sqs``), an
    SNS subscription (``sns``) or an EventBridge schedule (``schedule``).

    The runner ``start``s every source, then at ``stop()`` sets the shared stop event, ``join``s
    each one until a deadline (``time.monotonic()`` seconds), closes the worker pools and
    finally ``close``s each source.
    """

    @property
    def key(self) -> str:
        """What the runner's ``stats()`` lists it under: the queue URL, topic or rule ARN."""
        ...

    @property
    def counters(self) -> Counters: ...

    def start(self) -> None:
        """Check the wiring and start receiving (in threads of its own)."""
        ...

    def join(self, deadline: float) -> None:
        """Wait, until ``deadline`` at most, for its threads to finish their deliveries."""
        ...

    def close(self) -> None:
        """Release what it holds; called once, after the last ``join``."""
        ...
