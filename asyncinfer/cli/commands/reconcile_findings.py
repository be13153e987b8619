"""``reconcile`` and ``backfill``: the input bucket's object versions against the results table.

The table promises one record per object version (README "Guarantees"). ``reconcile`` checks
it from the user's side:

* each version (ListObjectVersions, current and noncurrent) is matched with the records of its
  input location (the input index, ``by_input_keys`` or layout 1's ``by_input_location``, one
  query per key): none is a version *without a record*, more than one (e.g. one by version id
  and one by ETag) is a *duplicate*;
* a matched record that is not terminal past its deadline (``lambdas.common.deadlines``), and
  any such record the status index holds under the prefix, is *overdue*.

Versions younger than ``RECENT`` (``--min-age``) are not judged: S3 can take a minute or more
to deliver their event. ``backfill`` sends each version without a record to the ingest queue as
the event S3 itself would have sent, so it takes the pipeline's exactly-once path (deterministic
inference id, ingest's claim): sending one twice never submits it twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import groupby
from typing import Any, Protocol
from urllib.parse import quote_plus

from asyncinfer.cli.access.table import ResultsTable, TimeWindow
from asyncinfer.cli.access.versions import ObjectVersion
from lambdas.common.clock import format_timestamp
from lambdas.common.deadlines import DeadlineRules
from lambdas.common.records import UNVERSIONED, InferenceRecord, Status

RECENT = timedelta(minutes=15)
STATUS_PAGE_SIZE = 100


class Problem(StrEnum):
    MISSING = "no record"
    DUPLICATE = "more than one record"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class Finding:
    problem: Problem
    location: str
    version_id: str | None
    inference_ids: tuple[str, ...]
    detail: str


@dataclass
class ReconcileReport:
    versions: int = 0  # judged (old enough, within --since)
    recent: int = 0  # too young to judge
    recorded: int = 0  # versions with exactly one record
    findings: list[Finding] = field(default_factory=list)
    missing: list[ObjectVersion] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def count(self, problem: Problem) -> int:
        return sum(1 for finding in self.findings if finding.problem is problem)


class VersionSource(Protocol):
    def versions(self, bucket: str, prefix: str) -> Iterator[ObjectVersion]: ...


class RecordSource(Protocol):
    def for_input(self, input_location: str) -> list[InferenceRecord]: ...

    def not_terminal(
        self, status: Status, window: TimeWindow, key_prefix: str | None
    ) -> Iterator[InferenceRecord]: ...


class TableRecords:
    """The CLI's ``ResultsTable`` as a ``RecordSource``."""

    def __init__(self, table: ResultsTable) -> None:
        self._table = table

    def for_input(self, input_location: str) -> list[InferenceRecord]:
        return self._table.for_input(input_location)

    def not_terminal(
        self, status: Status, window: TimeWindow, key_prefix: str | None
    ) -> Iterator[InferenceRecord]:
        start: dict[str, str] | None = None
        while True:
            page = self._table.status_page(
                status, window, limit=STATUS_PAGE_SIZE, key_prefix=key_prefix, start_key=start
            )
            yield from page.records
            if page.last_key is None:
                return
            start = page.last_key


def _matching(version: ObjectVersion, records: Iterable[InferenceRecord]) -> list[InferenceRecord]:
    """The records of this version: by inference id, or naming the same version id."""
    found = {
        record.inference_id: record
        for record in records
        if record.inference_id == version.inference_id
        or (version.version_id != UNVERSIONED and record.input_version == version.version_id)
    }
    return list(found.values())


def _overdue(record: InferenceRecord, rules: DeadlineRules, version_id: str | None) -> Finding:
    deadline = rules.deadline(record)
    shown = format_timestamp(deadline) if deadline else "unknown"
    return Finding(
        Problem.OVERDUE,
        record.input_location or "?",
        version_id or record.input_version,
        (record.inference_id,),
        f"{record.status} since {record.updated_at}, deadline {shown}",
    )


@dataclass(frozen=True)
class Reconciliation:
    versions: VersionSource
    records: RecordSource
    rules: DeadlineRules
    now: datetime
    progress: Callable[[int], None] = lambda count: None
    min_age: timedelta | None = None  # younger versions are not judged; None: RECENT

    def run(self, bucket: str, prefix: str, since: datetime | None) -> ReconcileReport:
        report = ReconcileReport()
        overdue_ids: set[str] = set()
        listed = 0
        stream = self.versions.versions(bucket, prefix)
        for key, group in groupby(stream, key=lambda version: version.key):
            versions = list(group)
            listed += len(versions)
            self.progress(listed)
            judged = [v for v in versions if self._judged(v, since, report)]
            if not judged or key.endswith("/"):
                continue
            records = self.records.for_input(judged[0].location)
            for version in judged:
                self._check(version, records, report, overdue_ids)
        self._check_index(prefix, since, report, overdue_ids)
        return report

    def _judged(
        self, version: ObjectVersion, since: datetime | None, report: ReconcileReport
    ) -> bool:
        if since is not None and version.last_modified < since:
            return False
        min_age = RECENT if self.min_age is None else self.min_age
        if version.last_modified > self.now - min_age:
            report.recent += 1
            return False
        report.versions += 1
        return True

    def _check(
        self,
        version: ObjectVersion,
        records: list[InferenceRecord],
        report: ReconcileReport,
        overdue_ids: set[str],
    ) -> None:
        matching = _matching(version, records)
        if not matching:
            report.missing.append(version)
            report.findings.append(
                Finding(
                    Problem.MISSING,
                    version.location,
                    version.version_id,
                    (version.inference_id,),
                    f"uploaded {format_timestamp(version.last_modified)}",
                )
            )
            return
        if len(matching) > 1:
            report.findings.append(
                Finding(
                    Problem.DUPLICATE,
                    version.location,
                    version.version_id,
                    tuple(sorted(record.inference_id for record in matching)),
                    ", ".join(sorted(str(record.status) for record in matching)),
                )
            )
            return
        report.recorded += 1
        (record,) = matching
        if self.rules.overdue(record, self.now):
            overdue_ids.add(record.inference_id)
            report.findings.append(_overdue(record, self.rules, version.version_id))

    def _check_index(
        self, prefix: str, since: datetime | None, report: ReconcileReport, seen: set[str]
    ) -> None:
        """Overdue records whose version is gone (expired, deleted) are still overdue."""
        for status in (Status.SUBMITTED, Status.PENDING):
            cutoff = self.rules.cutoff(status, self.now)
            if cutoff is None:
                continue
            window = TimeWindow(
                since=format_timestamp(since) if since else None, until=format_timestamp(cutoff)
            )
            for record in self.records.not_terminal(status, window, prefix or None):
                if record.inference_id not in seen and self.rules.overdue(record, self.now):
                    seen.add(record.inference_id)
                    report.findings.append(_overdue(record, self.rules, None))


def s3_event(version: ObjectVersion, *, region: str, now: datetime) -> str:
    """The message S3 sends to SQS for this version's ObjectCreated:Put (key URL-encoded)."""
    s3_object: dict[str, Any] = {
        "key": quote_plus(version.key, safe="/"),
        "size": version.size,
        "eTag": version.etag,
    }
    if version.version_id != UNVERSIONED:
        s3_object["versionId"] = version.version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": format_timestamp(now),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "asyncinfer-backfill"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "asyncinfer-backfill",
            "bucket": {"name": version.bucket, "arn": f"arn:aws:s3:::{version.bucket}"},
            "object": s3_object,
        },
    }
    return json.dumps({"Records": [record]})


@dataclass
class BackfillReport:
    dry_run: bool
    sent: list[ObjectVersion] = field(default_factory=list)
    failed: list[ObjectVersion] = field(default_factory=list)
    skipped: int = 0  # versions that already have a record, or are too recent to judge


def finding_document(finding: Finding) -> dict[str, Any]:
    return {
        "problem": finding.problem.name.lower(),
        "input_location": finding.location,
        "version_id": finding.version_id,
        "inference_ids": list(finding.inference_ids),
        "detail": finding.detail,
    }


def summary_line(report: ReconcileReport) -> str:
    verdict = "OK" if report.ok else "NOT OK"
    return (
        f"{verdict}: {report.versions} versions checked ({report.recent} too recent to judge): "
        f"{report.count(Problem.MISSING)} without a record, "
        f"{report.count(Problem.OVERDUE)} overdue, "
        f"{report.count(Problem.DUPLICATE)} with more than one record"
    )


def report_document(report: ReconcileReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "versions_checked": report.versions,
        "too_recent": report.recent,
        "without_record": report.count(Problem.MISSING),
        "overdue": report.count(Problem.OVERDUE),
        "duplicates": report.count(Problem.DUPLICATE),
        "findings": [finding_document(finding) for finding in report.findings],
    }
