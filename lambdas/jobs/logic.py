"""Jobs: a manifest in, one results file and one ``Job Completed`` event out, exactly once.

Three triggers reach ``Jobs`` (lambdas/jobs/handler.py), every one at least once and in any
order: a manifest object (``start``), a record becoming terminal (``count_outcome``, from the
``Inference Completed`` / ``Inference Failed`` events on the stack's bus) and a schedule
(``sweep``). Why each step is safe to repeat:

* **Start.** The header is created only if absent (a duplicate manifest event finds it and
  resumes, or leaves a started job alone); the entries (key -> current version -> inference id,
  the formula ingest uses: ``inference_id_for``) are resolved once and kept in the output
  bucket, so a retry reuses the same membership; shard counters and members are written only
  if absent (a retry never resets a count). Members are written *before* the records are read:
  an outcome written before that read is seen by it, one written after finds the member. Both
  may count it; counting is idempotent (next point).
* **Counting.** Outcomes land on sixteen counter shards (by inference id, ``shard_of``; each
  shard knows how many distinct ids it expects), never on one job item: one TransactWriteItems
  marks the member counted (condition: not counted yet) and adds one to its shard. A duplicate
  fails the condition and adds nothing. Only when *its* shard is full does an outcome read the
  other fifteen shards (never the job's members).
* **Completion.** ``OPEN -> COMPLETING`` is a conditional write; whoever finds the job
  ``COMPLETING`` (the winner, a retry of its message, the sweep) writes the results file, at a
  key fixed by the job's name, from terminal records (so every writer writes the same lines),
  then ``COMPLETING -> COMPLETED`` with the counts, again conditional. That transition happens
  once, so the jobs table's stream holds exactly one record of it; an EventBridge Pipe turns
  that one record into the one ``Job Completed`` event (stacks/jobs.py). No function publishes:
  a crash anywhere before the transition leaves the job ``COMPLETING`` and a retry finishes it
  (nothing was published); a crash after it changes nothing (the stream has the record). The
  pipe delivers at least once as EventBridge does; its retries are AWS's, never our code's.
* **Lost triggers.** The sweep (a schedule) looks at jobs not final: a ``STARTING`` job older
  than a start's timeout is started again (its manifest message was lost or dead-lettered);
  an ``OPEN`` job counts the terminal records of its uncounted members (an outcome event that
  never arrived), and past its deadline settles the rest as expired (an entry never ingested:
  a lost S3 event); a ``COMPLETING`` job is finished.

An entry fails at once, without waiting, when its key has no object, is not an input (under
``jobs_prefix``, a folder marker, or outside ``key_prefixes``/``key_suffixes``: ingest would
never infer it). A bad manifest fails the job at once with the reason (``STARTING -> FAILED``,
which also publishes ``Job Completed``, with status ``FAILED``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lambdas.common.clock import format_timestamp, parse_timestamp
from lambdas.common.contract import JOB_ENTRIES_FILE, JOB_RESULTS_FILE, job_folder, shard_of
from lambdas.common.keys import key_selected, under_jobs_prefix
from lambdas.common.records import TERMINAL_STATUSES, inference_id_for
from lambdas.jobs.manifest import ManifestError, job_name, parse_manifest
from lambdas.jobs.model import Entry, JobHeader, JobStatus, Member, Tally, result_line

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from lambdas.jobs.ports import JobLedger, JobObjects, RecordReader

READ_CHUNK = 1000  # records read (and lines written) per step of the results file
# a STARTING job untouched this long lost its start (the function's timeout is shorter)
START_TIMEOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class JobSettings:
    input_bucket: str
    output_bucket: str
    jobs_prefix: str
    key_prefixes: tuple[str, ...]
    key_suffixes: tuple[str, ...]
    deadline_seconds: int
    resolve_concurrency: int = 32


class Jobs:
    def __init__(
        self,
        *,
        settings: JobSettings,
        ledger: JobLedger,
        objects: JobObjects,
        records: RecordReader,
        logger: Logger,
        now: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._objects = objects
        self._records = records
        self._logger = logger
        self._now = now

    # --- start ---------------------------------------------------------------------------

    def start(self, bucket: str, key: str, version_id: str | None) -> JobHeader | None:
        """Start (or resume) the job a manifest object names; None if it names none."""
        name = job_name(key, self._settings.jobs_prefix)
        if bucket != self._settings.input_bucket or name is None:
            return None
        found = self._objects.read(bucket, key, version_id)
        if found is None:
            self._logger.warning("manifest gone before its job started", extra={"key": key})
            return None
        body, version = found
        now = self._now()
        header = self._ledger.create(
            JobHeader(
                job_name=name,
                status=JobStatus.STARTING,
                manifest_location=f"s3://{bucket}/{key}",
                manifest_version=version,
                created_at=format_timestamp(now),
                deadline_at=int(now.timestamp()) + self._settings.deadline_seconds,
            )
        )
        if header.manifest_version != version:
            self._logger.warning(
                "a job of this name exists: this manifest version starts nothing",
                extra={"job_name": name, "manifest_version": version},
            )
            return header
        if header.status is not JobStatus.STARTING:
            return header  # a duplicate event of a started job
        return self._resolve(header, body)

    def _resolve(self, header: JobHeader, body: bytes) -> JobHeader:
        name = header.job_name
        try:
            manifest = parse_manifest(body, self._settings.input_bucket)
        except ManifestError as error:
            self._fail(name, str(error))
            return self._header(name)
        entries = self._entries(name, manifest.keys)
        ids = sorted({entry.inference_id for entry in entries if entry.inference_id})
        expected = Counter(shard_of(inference_id) for inference_id in ids)
        self._ledger.add_members(name, dict(expected), ids)
        self._ledger.transition(
            name, JobStatus.STARTING, JobStatus.OPEN, {"total": len(entries), **self._touch()}
        )
        self._logger.info("job open", extra={"job_name": name, "entries": len(entries)})
        self._count_terminal(name, ids)
        self.try_complete(name)
        return self._header(name)

    def _entries(self, name: str, keys: tuple[str, ...]) -> list[Entry]:
        """The entries a first attempt resolved, or resolve them now and keep them."""
        folder = job_folder(self._settings.jobs_prefix, name)
        kept = self._objects.read_lines(self._settings.output_bucket, folder + JOB_ENTRIES_FILE)
        if kept is not None:
            return [Entry.from_line(line) for line in kept]
        with ThreadPoolExecutor(self._settings.resolve_concurrency) as pool:
            entries = list(pool.map(self._resolve_entry, keys))
        self._objects.write_lines(
            self._settings.output_bucket,
            folder + JOB_ENTRIES_FILE,
            (entry.to_line() for entry in entries),
        )
        return entries

    def _resolve_entry(self, key: str) -> Entry:
        settings = self._settings
        if under_jobs_prefix(key, settings.jobs_prefix) or key.endswith("/"):
            return Entry(key=key, failure_reason="not an input: a job's manifest or a folder")
        if not key_selected(key, settings.key_prefixes, settings.key_suffixes):
            return Entry(key=key, failure_reason="not an input: outside key_prefixes/key_suffixes")
        current = self._objects.current_version(settings.input_bucket, key)
        if current is None:
            return Entry(key=key, failure_reason="no such object in the input bucket")
        inference_id = inference_id_for(
            settings.input_bucket, key, current.version_id, current.etag
        )
        return Entry(key=key, version_id=current.version_id, inference_id=inference_id)

    def _fail(self, name: str, reason: str) -> None:
        self._logger.warning("job failed", extra={"job_name": name, "reason": reason})
        values: dict[str, str | int] = {"reason": reason, "total": 0, "completed": 0, "failed": 0}
        self._ledger.transition(
            name, JobStatus.STARTING, JobStatus.FAILED, {**values, **self._touch()}
        )

    # --- counting ------------------------------------------------------------------------

    def count_outcome(self, inference_id: str) -> int:
        """Count one terminal record in each job it belongs to; the number of jobs."""
        members = self._ledger.members_of(inference_id)
        for member in members:
            self._count(member)
        return len(members)

    def _count(self, member: Member) -> None:
        # A duplicate still checks its shard: the first delivery may have counted and then
        # died before completing the job.
        self._ledger.count(member)
        if self._ledger.shard_settled(member.job_name, member.shard):
            self.try_complete(member.job_name)

    def _count_terminal(self, name: str, ids: list[str]) -> None:
        for start in range(0, len(ids), READ_CHUNK):
            records = self._records.records(ids[start : start + READ_CHUNK])
            terminal = [r.inference_id for r in records.values() if r.status in TERMINAL_STATUSES]
            self._count_all(name, terminal)

    def _count_all(self, name: str, ids: list[str]) -> None:
        """Many counts at once (a start over inputs already done, a deadline)."""
        members = [Member(job_name=name, inference_id=inference_id) for inference_id in ids]
        with ThreadPoolExecutor(self._settings.resolve_concurrency) as pool:
            list(pool.map(self._ledger.count, members))

    # --- completion ----------------------------------------------------------------------

    def try_complete(self, name: str) -> JobHeader | None:
        header = self._ledger.header(name)
        if header is None:
            return None
        if header.status is JobStatus.OPEN:
            if not self._ledger.all_settled(name):
                return header
            self._ledger.transition(name, JobStatus.OPEN, JobStatus.COMPLETING, self._touch())
            header = self._header(name)
        if header.status is JobStatus.COMPLETING:
            self._finish(header)
            header = self._header(name)
        return header

    def _finish(self, header: JobHeader) -> None:
        """Write the results file, then ``COMPLETING -> COMPLETED`` (the one event)."""
        name = header.job_name
        bucket = self._settings.output_bucket
        folder = job_folder(self._settings.jobs_prefix, name)
        kept = self._objects.read_lines(bucket, folder + JOB_ENTRIES_FILE) or []
        entries = [Entry.from_line(line) for line in kept]
        tally = Tally()
        self._objects.write_lines(bucket, folder + JOB_RESULTS_FILE, self._lines(entries, tally))
        values: dict[str, str | int] = {
            "completed": tally.completed,
            "failed": tally.failed,
            "total": tally.total,
            "results_location": f"s3://{bucket}/{folder}{JOB_RESULTS_FILE}",
            **self._touch(),
        }
        if self._ledger.transition(name, JobStatus.COMPLETING, JobStatus.COMPLETED, values):
            self._logger.info("job completed", extra={"job_name": name, **values})

    def _lines(self, entries: list[Entry], tally: Tally) -> Iterator[str]:
        for start in range(0, len(entries), READ_CHUNK):
            chunk = entries[start : start + READ_CHUNK]
            ids = sorted({entry.inference_id for entry in chunk if entry.inference_id})
            records = self._records.records(ids) if ids else {}
            for entry in chunk:
                line = result_line(entry, records.get(entry.inference_id or ""))
                tally.add(str(line["status"]))
                yield json.dumps(line, separators=(",", ":"))

    # --- the sweep -----------------------------------------------------------------------

    def sweep(self) -> dict[str, Any]:
        """Finish what lost triggers left open (see the module doc); a summary."""
        now = self._now()
        seen: Counter[str] = Counter()
        for header in self._ledger.open_jobs():
            seen[header.status] += 1
            try:
                self._sweep_one(header, now)
            except Exception:  # one job's fault never stops the others'
                self._logger.exception("sweep of a job failed", extra={"job_name": header.job_name})
                seen["errors"] += 1
        return dict(seen)

    def _sweep_one(self, header: JobHeader, now: datetime) -> None:
        if header.status is JobStatus.STARTING:
            touched = parse_timestamp(header.updated_at or header.created_at)
            if now - touched >= START_TIMEOUT:
                self._restart(header)
            return
        if header.status is JobStatus.OPEN:
            self._recount(header, now)
        self.try_complete(header.job_name)

    def _restart(self, header: JobHeader) -> None:
        bucket, _, key = header.manifest_location.removeprefix("s3://").partition("/")
        found = self._objects.read(bucket, key, header.manifest_version)
        if found is None:
            self._fail(header.job_name, "the manifest was deleted before the job started")
            return
        self._resolve(header, found[0])

    def _recount(self, header: JobHeader, now: datetime) -> None:
        name = header.job_name
        folder = job_folder(self._settings.jobs_prefix, name)
        kept = self._objects.read_lines(self._settings.output_bucket, folder + JOB_ENTRIES_FILE)
        ids = sorted({e.inference_id for e in map(Entry.from_line, kept or []) if e.inference_id})
        open_ids = self._ledger.uncounted(name, ids)
        self._count_terminal(name, open_ids)
        if int(now.timestamp()) >= header.deadline_at:
            self._count_all(name, self._ledger.uncounted(name, open_ids))
            self._logger.warning(
                "job past its deadline: open entries settled as expired",
                extra={"job_name": name},
            )

    # --- helpers -------------------------------------------------------------------------

    def _touch(self) -> dict[str, str | int]:
        return {"updated_at": format_timestamp(self._now())}

    def _header(self, name: str) -> JobHeader:
        header = self._ledger.header(name)
        if header is None:
            raise LookupError(f"job {name} vanished")
        return header
