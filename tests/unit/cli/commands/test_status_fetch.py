"""`status` (one record, or every inference of an input) and `fetch` (output or failure)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from asyncinfer.cli import render
from lambdas.common.records import FailureStage, InferenceRecord, Status
from tests.unit.cli.conftest import Invoke, Pipeline, one_line_error, stored

FIRST = "a" * 64
SECOND = "b" * 64
MISSING = "c" * 64


def test_status_by_id_human_view(cli: Invoke, pipeline: Pipeline) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.COMPLETED,
        completed=2.5,
        latency_ms=800,
        output_location="s3://output-bucket/outputs/1.out",
        result='{"label": "setosa"}',
    )

    result = cli("status", FIRST)

    assert result.exit_code == 0, result.output
    assert FIRST in result.stdout
    assert "COMPLETED" in result.stdout
    assert "s3://output-bucket/outputs/1.out" in result.stdout
    assert '{"label": "setosa"}' in result.stdout
    assert re.search(r"end_to_end +2\.50 s", result.stdout)


def test_status_by_id_json(cli: Invoke, pipeline: Pipeline) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        completed=1,
        failure_reason="bad input",
        failure_stage=FailureStage.INFERENCE,
    )

    result = cli("status", FIRST, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["inference_id"] == FIRST
    assert document["status"] == "FAILED"
    assert document["failure_reason"] == "bad input"
    assert document["failure_stage"] == "inference"


def test_status_of_an_input_lists_every_inference_newest_first(
    cli: Invoke, pipeline: Pipeline
) -> None:
    stored(pipeline.store, FIRST, Status.COMPLETED, key="in/x.json", submitted=0, completed=1)
    stored(pipeline.store, SECOND, Status.SUBMITTED, key="in/x.json", submitted=10)
    stored(pipeline.store, MISSING, Status.COMPLETED, key="in/other.json", completed=3)

    by_uri = cli("status", "s3://input-bucket/in/x.json", "--json")
    by_key = cli("status", "in/x.json", "--json")
    human = cli("status", "in/x.json")

    assert by_uri.exit_code == 0, by_uri.output
    assert [record["inference_id"] for record in json.loads(by_uri.stdout)] == [SECOND, FIRST]
    assert json.loads(by_key.stdout) == json.loads(by_uri.stdout)
    assert human.exit_code == 0
    assert human.stdout.index(SECOND) < human.stdout.index(FIRST)


def test_status_not_found_is_one_line(cli: Invoke, pipeline: Pipeline) -> None:
    by_id = cli("status", MISSING)
    by_key = cli("status", "never/uploaded.json")

    assert by_id.exit_code == 254
    assert one_line_error(by_id) == f"inference {MISSING} not found"
    assert by_key.exit_code == 254
    assert one_line_error(by_key) == "no inference found for s3://input-bucket/never/uploaded.json"


def test_status_when_the_table_is_missing(cli: Invoke, pipeline: Pipeline) -> None:
    pipeline.dynamodb.delete_table(TableName="results")

    result = cli("status", FIRST)

    assert result.exit_code == 254
    assert one_line_error(result) == "table results not found (ResourceNotFoundException)"


def test_fetch_output_to_a_file_and_to_stdout(
    cli: Invoke, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.s3.put_object(Bucket="output-bucket", Key="outputs/1.out", Body=b'{"label": 2}')
    stored(
        pipeline.store,
        FIRST,
        Status.COMPLETED,
        completed=1,
        output_location="s3://output-bucket/outputs/1.out",
    )
    destination = tmp_path / "result.json"

    to_file = cli("fetch", FIRST, "--output", str(destination))
    to_stdout = cli("fetch", FIRST)

    assert to_file.exit_code == 0, to_file.output
    assert destination.read_bytes() == b'{"label": 2}'
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout_bytes == b'{"label": 2}'
    assert [path.name for path in tmp_path.iterdir()] == ["result.json"]


def test_fetch_failure_object_of_a_failed_inference(cli: Invoke, pipeline: Pipeline) -> None:
    pipeline.s3.put_object(Bucket="output-bucket", Key="failures/1.err", Body=b"model error")
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        completed=1,
        failure_reason="model error",
        failure_stage=FailureStage.INFERENCE,
        failure_location="s3://output-bucket/failures/1.err",
    )

    result = cli("fetch", FIRST)

    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"model error"


def test_fetch_of_an_ingest_failure_says_why_there_is_nothing(
    cli: Invoke, pipeline: Pipeline
) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        failure_reason="input larger than 1 GB",
        failure_stage=FailureStage.INGEST,
    )

    result = cli("fetch", FIRST)

    assert result.exit_code == 1
    assert one_line_error(result) == (
        f"inference {FIRST} FAILED at ingest with no failure object: input larger than 1 GB"
    )


def test_fetch_before_the_result_and_of_an_unknown_id(cli: Invoke, pipeline: Pipeline) -> None:
    stored(pipeline.store, FIRST, Status.SUBMITTED)

    in_flight = cli("fetch", FIRST)
    unknown = cli("fetch", MISSING)

    assert in_flight.exit_code == 1
    assert one_line_error(in_flight) == f"inference {FIRST} is SUBMITTED: no output yet"
    assert unknown.exit_code == 254
    assert one_line_error(unknown) == f"inference {MISSING} not found"


def test_fetch_when_the_output_object_is_gone(
    cli: Invoke, pipeline: Pipeline, tmp_path: Path
) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.COMPLETED,
        completed=1,
        output_location="s3://output-bucket/outputs/gone.out",
    )

    result = cli("fetch", FIRST, "-o", str(tmp_path / "out.json"))

    assert result.exit_code == 254
    assert one_line_error(result) == (
        "object s3://output-bucket/outputs/gone.out not found (NoSuchKey)"
    )
    assert list(tmp_path.iterdir()) == []


def test_user_text_is_shown_literally_not_as_markup(cli: Invoke, pipeline: Pipeline) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        key="in/[bold]x.json",
        completed=1,
        failure_reason="features must be [4] numbers",
        failure_stage=FailureStage.INFERENCE,
    )

    detail = cli("status", FIRST)
    listing = cli("results")

    assert "features must be [4] numbers" in detail.stdout
    assert "s3://input-bucket/in/[bold]x.json" in detail.stdout
    assert "[inference] features must be [4] numbers" in listing.stdout


def test_fetch_falls_back_to_the_inline_result(cli: Invoke, pipeline: Pipeline) -> None:
    stored(pipeline.store, FIRST, Status.COMPLETED, completed=1, result='{"label": 0}')
    pipeline.dynamodb.update_item(
        TableName="results",
        Key={"inference_id": {"S": FIRST}},
        UpdateExpression="SET result_encoding = :encoding",
        ExpressionAttributeValues={":encoding": {"S": "utf-8"}},
    )

    result = cli("fetch", FIRST)

    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b'{"label": 0}'


def test_status_accepts_any_inference_id_a_client_sent(cli: Invoke, pipeline: Pipeline) -> None:
    """An invocation made with boto3 may use any InferenceId (1-64 printable characters):
    `status` finds it as `fetch` and `results` do."""
    stored(pipeline.store, "my request #1", Status.COMPLETED, completed=1, result="ok")

    result = cli("status", "my request #1", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inference_id"] == "my request #1"


def test_status_of_nothing_is_a_usage_error(cli: Invoke, pipeline: Pipeline) -> None:
    result = cli("status", "")

    assert result.exit_code == 252
    assert "status needs an inference id" in one_line_error(result)


def test_fetch_into_an_existing_folder_names_the_file_after_the_output(
    cli: Invoke, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.s3.put_object(Bucket="output-bucket", Key="outputs/1.out", Body=b'{"label": 2}')
    stored(
        pipeline.store,
        FIRST,
        Status.COMPLETED,
        completed=1,
        output_location="s3://output-bucket/outputs/1.out",
    )

    result = cli("fetch", FIRST, "-o", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert (tmp_path / "1.out").read_bytes() == b'{"label": 2}'


def test_fetch_to_a_missing_folder_is_a_usage_error(
    cli: Invoke, pipeline: Pipeline, tmp_path: Path
) -> None:
    stored(pipeline.store, FIRST, Status.COMPLETED, completed=1, result="ok")

    result = cli("fetch", FIRST, "-o", str(tmp_path / "nonexistent" / "x"))

    assert result.exit_code == 252
    assert one_line_error(result).startswith(f"cannot write {tmp_path / 'nonexistent' / 'x'}")


def test_an_inference_failure_points_to_the_model_log(cli: Invoke, pipeline: Pipeline) -> None:
    """The reason SageMaker copies is the container's answer (the demo image: a generic HTML
    500 page); the model's own message is in the endpoint's log."""
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        completed=1,
        failure_reason="<html>500 Internal Server Error</html>",
        failure_stage=FailureStage.INFERENCE,
    )

    detail = cli("status", FIRST)
    listing = cli("results", "--status", "FAILED")

    hint = (
        "inference failures: the model's own reasons are in CloudWatch log group "
        "/aws/sagemaker/Endpoints/demo-endpoint"
    )
    assert hint in detail.stderr
    assert hint in listing.stderr


def test_the_timeline_reads_in_order_and_each_latency_says_what_it_measures() -> None:
    record = InferenceRecord(
        inference_id=FIRST,
        status=Status.COMPLETED,
        created_at="2026-11-21T05:10:20.450Z",
        submitted_at="2026-11-21T05:10:20.474Z",  # recorded once InvokeEndpointAsync returned
        received_at="2026-11-21T05:10:20.471Z",  # SageMaker's receivedTime
        completed_at="2026-11-21T05:10:20.588Z",
        latency_ms=117,
        updated_at="2026-11-21T05:10:20.604Z",
    )

    lines = render.record_detail(record).plain.splitlines()
    names = [line.split()[0] for line in lines]

    timeline = ["created_at", "received_at", "submitted_at", "completed_at", "updated_at"]
    assert [name for name in names if name in timeline] == timeline
    assert names.index("end_to_end") == names.index("latency_ms") + 1
    assert "117 ms  (SageMaker's: from receiving the request to its outcome" in "\n".join(lines)
    assert "114 ms  (this pipeline's: from submitted_at to completed_at)" in "\n".join(lines)


def test_a_listing_row_fits_80_columns_in_a_few_lines() -> None:
    page = "<!DOCTYPE HTML PUBLIC>\n<title>500 Internal Server Error</title>\n" + "x " * 300
    records = [
        InferenceRecord(
            inference_id=f"{n}" * 64,
            status=Status.FAILED,
            input_key="photos/2026 spring/" + "long-name-" * 8 + ".json",
            failure_stage=FailureStage.INFERENCE,
            failure_reason=page,
        )
        for n in range(1, 4)
    ]
    console = Console(width=80, record=True, file=io.StringIO())

    console.print(render.records_table(records, width=80))

    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 4 + 3 * 3  # borders and header, then at most 3 lines a row
