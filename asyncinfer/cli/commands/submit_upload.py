"""``submit``: which files become which keys, concurrent uploads, and following the results."""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from asyncinfer.cli.access.objects import Objects, UploadedObject
from asyncinfer.cli.access.table import ResultsTable
from asyncinfer.cli.errors import AwsCallError, CliError, ExitCode, cli_error_for
from lambdas.common.contract import OutputNaming
from lambdas.common.output_naming import output_name
from lambdas.common.records import TERMINAL_STATUSES, InferenceRecord, inference_id_for
from lambdas.ingest.payload import sends_inline

MAX_INPUT_LOCATION_CHARS = 1024  # InvokeEndpointAsync's InputLocation limit
NOT_SEEN = "UPLOADED"  # uploaded, but the pipeline has written no record yet


@dataclass(frozen=True)
class FileToSubmit:
    path: Path
    key: str
    size: int


def _selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not any(fnmatch.fnmatchcase(relative, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(relative, pattern) for pattern in exclude)


def collect_files(
    paths: Sequence[Path],
    *,
    prefix: str = "",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[FileToSubmit]:
    """Files and folders (recursively) to keys, as ``aws s3 cp --recursive`` names them.

    A file given by name becomes ``prefix + name``; a file found in a folder becomes
    ``prefix + its path relative to that folder``. Globs match that relative path (``*``
    crosses folders: ``--include '*.json'`` selects JSON files at any depth).
    """
    selected: dict[str, FileToSubmit] = {}
    for path in paths:
        if path.is_dir():
            candidates = [
                (Path(folder) / name, (Path(folder) / name).relative_to(path).as_posix())
                for folder, _, names in os.walk(path)
                for name in names
            ]
        elif path.is_file():
            candidates = [(path, path.name)]
        else:
            raise CliError(f"no such file or folder: {path}", ExitCode.USAGE)
        for file_path, relative in sorted(candidates, key=lambda pair: pair[1]):
            if not file_path.is_file() or not _selected(relative, include, exclude):
                continue
            key = prefix + relative
            previous = selected.get(key)
            if previous is not None and previous.path.resolve() != file_path.resolve():
                raise CliError(
                    f"{previous.path} and {file_path} would both be uploaded as {key}",
                    ExitCode.USAGE,
                )
            selected[key] = FileToSubmit(file_path, key, file_path.stat().st_size)
    return list(selected.values())


def check_locations(
    bucket: str, files: Sequence[FileToSubmit], inline_input_max_bytes: int | None
) -> None:
    """Refuses a file whose request would carry an InputLocation over the API's limit: one the
    stack sends inline (``inline_input_max_bytes``; None for a stack that predates the
    setting, which sent nothing inline) carries no location, whatever its key's length."""
    for item in files:
        location = f"s3://{bucket}/{item.key}"
        if len(location) <= MAX_INPUT_LOCATION_CHARS:
            continue
        if inline_input_max_bytes is not None and sends_inline(item.size, inline_input_max_bytes):
            continue
        raise CliError(
            f"{item.path}: s3://{bucket}/{item.key[:40]}... is longer than the "
            f"{MAX_INPUT_LOCATION_CHARS} characters SageMaker accepts as InputLocation, and "
            f"at {item.size} bytes the stack sends it by location (inline only up to "
            f"{inline_input_max_bytes or 0} bytes)",
            ExitCode.USAGE,
        )


def content_type_for(path: Path, override: str | None) -> str | None:
    return override or mimetypes.guess_type(path.name)[0]


@dataclass(frozen=True)
class OutputPlacement:
    """Where the stack's ``output_naming`` will have SageMaker write an input's output.

    Only an expectation, printed so a person knows where to look: the record's
    ``output_location`` (the ``OutputLocation`` SageMaker's response returned) is authoritative.
    ``naming`` is None for a stack deployed before the setting existed.
    """

    naming: OutputNaming | None
    output_path: str | None  # None for an imported endpoint: its S3OutputPath is not ours

    @classmethod
    def from_outputs(cls, naming: str | None, output_path: str | None) -> OutputPlacement:
        known = naming if naming in tuple(OutputNaming) else None
        return cls(OutputNaming(known) if known else None, output_path)

    def expected(self, key: str, inference_id: str) -> str | None:
        """``<S3OutputPath>/<the key's folder, encoded>/<Filename>``; None when SageMaker picks."""
        if self.naming is not OutputNaming.INPUT:
            return None
        name = output_name(key, inference_id)
        base = (self.output_path or "<S3OutputPath>").rstrip("/")
        return "/".join(part for part in (base, name.extension, name.filename) if part)


@dataclass(frozen=True)
class Submitted:
    file: FileToSubmit
    uploaded: UploadedObject | None = None
    inference_id: str | None = None
    error: str | None = None
    expected_output: str | None = None  # OutputPlacement.expected: the record is authoritative

    @property
    def input_location(self) -> str:
        return f"s3://{self.uploaded.bucket}/{self.file.key}" if self.uploaded else ""


def _submit_one(
    objects: Objects,
    bucket: str,
    item: FileToSubmit,
    content_type: str | None,
    metadata: Mapping[str, str],
) -> Submitted:
    try:
        uploaded = objects.upload(
            bucket,
            item.key,
            item.path,
            content_type=content_type_for(item.path, content_type),
            metadata=metadata,
        )
    except AwsCallError as error:
        return Submitted(item, error=cli_error_for(error).format_message())
    except OSError as error:
        return Submitted(item, error=f"{item.path}: {error.strerror or error}")
    inference_id = inference_id_for(bucket, item.key, uploaded.version_id, uploaded.etag)
    return Submitted(item, uploaded=uploaded, inference_id=inference_id)


class UploadInterrupted(Exception):
    """Ctrl-C during uploads: what did get uploaded, so its ids can still be printed."""

    def __init__(self, finished: list[Submitted]) -> None:
        super().__init__(f"interrupted after {len(finished)} uploads")
        self.finished = finished


def upload_all(
    objects: Objects,
    bucket: str,
    files: Sequence[FileToSubmit],
    *,
    content_type: str | None,
    metadata: Mapping[str, str],
    concurrency: int,
    on_done: Callable[[Submitted], None],
) -> list[Submitted]:
    """Upload with a bounded pool; results come back in the order of ``files``."""
    outcomes: dict[str, Submitted] = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload")
    futures: list[Future[Submitted]] = []
    try:
        futures = [
            pool.submit(_submit_one, objects, bucket, item, content_type, metadata)
            for item in files
        ]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[outcome.file.key] = outcome
            on_done(outcome)
    except KeyboardInterrupt:
        # Uploads not yet started are dropped; the ones in flight finish and are reported.
        pool.shutdown(wait=True, cancel_futures=True)
        finished = [
            future.result() for future in futures if future.done() and not future.cancelled()
        ]
        raise UploadInterrupted(finished) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [outcomes[item.key] for item in files]


@dataclass
class FollowState:
    """What `submit --wait` knows about the inferences it follows."""

    inference_ids: list[str]
    records: dict[str, InferenceRecord] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    timed_out: bool = False

    def status_of(self, inference_id: str) -> str:
        record = self.records.get(inference_id)
        return str(record.status) if record else NOT_SEEN

    def counts(self) -> Counter[str]:
        return Counter(self.status_of(inference_id) for inference_id in self.inference_ids)

    @property
    def pending(self) -> list[str]:
        return [
            inference_id
            for inference_id in self.inference_ids
            if self.status_of(inference_id) not in TERMINAL_STATUSES
        ]

    @property
    def failed(self) -> list[InferenceRecord]:
        return [record for record in self.records.values() if record.status == "FAILED"]


def follow(
    table: ResultsTable,
    inference_ids: Sequence[str],
    *,
    timeout_seconds: float,
    poll_seconds: float,
    on_poll: Callable[[FollowState], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowState:
    """Poll the table (BatchGetItem) until every inference is terminal or time is up."""
    state = FollowState(list(inference_ids))
    started = clock()
    while True:
        waiting = state.pending
        if waiting:
            state.records.update(table.get_many(waiting))
        state.elapsed_seconds = clock() - started
        on_poll(state)
        if not state.pending:
            return state
        if state.elapsed_seconds >= timeout_seconds:
            state.timed_out = True
            return state
        sleep(min(poll_seconds, max(timeout_seconds - state.elapsed_seconds, 0.0)))
