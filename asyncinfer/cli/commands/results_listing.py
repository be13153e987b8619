"""``results``: records of several statuses merged newest first, paginated without a scan.

Layout 2 (``by_status_shard``): one walk over the partitions of every status asked, newest
first (``access/status_index.py``): a page costs a bounded number of requests whatever the
table holds. Layout 1 (``by_status``): each status is one stream, one Query of its key; the
page takes the newest head of the streams until it is full. The ``--next-token`` records, per
stream, the index key to resume after (or that it is exhausted), plus the resolved time
window, so relative windows (``--since 1h``) do not slide between pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from asyncinfer.cli.access.table import Page, ResultsTable, TimeWindow
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.records import InferenceRecord, Status


@dataclass(frozen=True)
class ListQuery:
    statuses: tuple[Status, ...]
    window: TimeWindow
    key_prefix: str | None
    limit: int

    def fingerprint(self, since_text: str | None, until_text: str | None) -> str:
        """What a token is valid for: the options as typed, not the resolved window."""
        shape = [sorted(self.statuses), self.key_prefix, since_text, until_text]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


ALL_STATUSES = "*"  # the cursor's one stream on a sharded table


@dataclass(frozen=True)
class StreamPosition:
    resume_key: dict[str, str] | None
    exhausted: bool


@dataclass(frozen=True)
class Cursor:
    fingerprint: str
    window: TimeWindow
    positions: dict[str, StreamPosition]  # per status (layout 1), or ALL_STATUSES (layout 2)

    def encode(self) -> str:
        document = {
            "q": self.fingerprint,
            "w": [self.window.since, self.window.until],
            "s": {
                name: {"k": position.resume_key, "d": position.exhausted}
                for name, position in self.positions.items()
            },
        }
        raw = json.dumps(document, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, fingerprint: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            document = json.loads(raw)
            since, until = document["w"]
            positions = {
                str(name): StreamPosition(resume_key=value["k"], exhausted=bool(value["d"]))
                for name, value in document["s"].items()
            }
            token_fingerprint = str(document["q"])
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise CliError("invalid --next-token", ExitCode.USAGE) from error
        if token_fingerprint != fingerprint:
            raise CliError(
                "--next-token belongs to a listing with other --status/--prefix/--since/--until",
                ExitCode.USAGE,
            )
        return cls(token_fingerprint, TimeWindow(since, until), positions)


def index_key(record: InferenceRecord) -> dict[str, str]:
    return {
        "inference_id": record.inference_id,
        "status": str(record.status),
        "updated_at": record.updated_at or "",
    }


class _StatusStream:
    """One status's records in layout 1's ``by_status``, newest first, a page at a time."""

    def __init__(
        self,
        table: ResultsTable,
        status: Status,
        query: ListQuery,
        window: TimeWindow,
        position: StreamPosition,
    ) -> None:
        self._table = table
        self._status = status
        self._query = query
        self._window = window
        # (sort value, record, resume key after it)
        self._buffer: deque[tuple[str, InferenceRecord, dict[str, str]]] = deque()
        self._fetch_key = position.resume_key
        self._more = not position.exhausted
        self.resume_key = position.resume_key

    @property
    def exhausted(self) -> bool:
        return not self._buffer and not self._more

    def peek(self) -> tuple[str, InferenceRecord] | None:
        while not self._buffer and self._more:
            page: Page = self._table.status_page(
                self._status,
                self._window,
                limit=self._query.limit,
                key_prefix=self._query.key_prefix,
                start_key=self._fetch_key,
            )
            self._buffer.extend(
                (record.updated_at or "", record, index_key(record)) for record in page.records
            )
            self._fetch_key = page.last_key
            self._more = page.last_key is not None
            if not self._buffer:  # everything on that page was filtered out: skip past it
                self.resume_key = page.last_key
        if not self._buffer:
            return None
        order, record, _ = self._buffer[0]
        return order, record

    def pop(self) -> InferenceRecord:
        _, record, key = self._buffer.popleft()
        self.resume_key = key if self._buffer else self._fetch_key
        return record

    def position(self) -> StreamPosition:
        return StreamPosition(self.resume_key, self.exhausted)


def _newest_first(head: tuple[str, InferenceRecord]) -> tuple[str, str]:
    order, record = head
    return (order, record.inference_id)


def list_records(
    table: ResultsTable,
    query: ListQuery,
    *,
    fingerprint: str,
    cursor: Cursor | None = None,
) -> tuple[list[InferenceRecord], Cursor | None]:
    """One page of records, newest first, and the cursor of the next page (None at the end)."""
    window = cursor.window if cursor else query.window
    if table.sharded:
        return _sharded_page(table, query, fingerprint, cursor, window)
    start = StreamPosition(resume_key=None, exhausted=False)
    streams = {
        status: _StatusStream(
            table,
            status,
            query,
            window,
            cursor.positions.get(status.value, StreamPosition(None, True)) if cursor else start,
        )
        for status in query.statuses
    }
    page: list[InferenceRecord] = []
    while len(page) < query.limit:
        heads = [
            (head, stream) for stream in streams.values() if (head := stream.peek()) is not None
        ]
        if not heads:
            break
        _, newest = max(heads, key=lambda pair: _newest_first(pair[0]))
        page.append(newest.pop())
    if all(stream.peek() is None for stream in streams.values()):
        return page, None
    positions = {status.value: stream.position() for status, stream in streams.items()}
    return page, Cursor(fingerprint, window, positions)


def _sharded_page(
    table: ResultsTable,
    query: ListQuery,
    fingerprint: str,
    cursor: Cursor | None,
    window: TimeWindow,
) -> tuple[list[InferenceRecord], Cursor | None]:
    """One walk of the sharded index for every status asked: one bounded page, which may be
    short when a partition holds many records of statuses not asked (its token goes on)."""
    position = cursor.positions.get(ALL_STATUSES) if cursor else None
    if position is not None and position.exhausted:
        return [], None
    page = table.status_page(
        query.statuses,
        window,
        limit=query.limit,
        key_prefix=query.key_prefix,
        start_key=position.resume_key if position else None,
    )
    if page.last_key is None:
        return page.records, None
    positions = {ALL_STATUSES: StreamPosition(page.last_key, exhausted=False)}
    return page.records, Cursor(fingerprint, window, positions)


def parse_statuses(values: Sequence[str]) -> tuple[Status, ...]:
    if not values:
        return tuple(Status)
    statuses: list[Status] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            try:
                status = Status(name)
            except ValueError as error:
                choices = ", ".join(Status)
                raise CliError(
                    f"invalid --status {part.strip()!r}: choose from {choices}", ExitCode.USAGE
                ) from error
            if status not in statuses:
                statuses.append(status)
    return tuple(statuses)
