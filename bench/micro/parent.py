"""The parent's side: one child process per function, with that function's environment."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from bench.micro.plan import (
    CHILD_TIMEOUT_SECONDS,
    IngestMeasurements,
    Plan,
    ResultsMeasurements,
)
from bench.settings import REPO_ROOT
from bench.stack import log_tail
from lambdas.common.contract import LocalOutput, StackOutput

if TYPE_CHECKING:
    from asyncinfer.local.provision.spec import FunctionSpec
    from bench.settings import Settings
    from bench.stack import BenchStack


def run_children(
    stack: BenchStack, settings: Settings
) -> tuple[IngestMeasurements, ResultsMeasurements]:
    """Runs the ingest child, then the results child (it uses the notifications the runtime
    published for the records the ingest child submitted)."""
    spec = stack.spec
    common = {
        "region": spec.region,
        "admin_url": stack.admin_url,
        "input_bucket": spec.outputs[StackOutput.INPUT_BUCKET_NAME],
        "ingest_queue_url": spec.ingest.queue_url,
        "success_delivery_queue_url": spec.outputs[LocalOutput.SUCCESS_DELIVERY_QUEUE_URL],
        "success_topic_arn": spec.endpoint.success_topic_arn or "",
        "table_name": spec.outputs[StackOutput.RESULTS_TABLE_NAME],
        "added_latency_ms": settings.added_latency_ms,
        "batch_size": settings.batch_size,
        "invoke_samples": settings.invoke_samples_per_repetition,
        "profile_repetitions": settings.profile_repetitions,
    }
    ingest_plan = Plan(
        function="ingest",
        memory_mb=spec.ingest.function.memory_mb,
        warmup=settings.ingest_warmup,
        repetitions=settings.ingest_repetitions,
        **common,
    )
    ingest = IngestMeasurements.model_validate_json(
        _run_child(stack, settings, spec.ingest.function, ingest_plan)
    )
    results_function = spec.results[0].function
    results_plan = Plan(
        function="results",
        memory_mb=results_function.memory_mb,
        warmup=settings.results_warmup,
        repetitions=settings.results_repetitions,
        submitted_ids=ingest.submitted_ids,
        **common,
    )
    results = ResultsMeasurements.model_validate_json(
        _run_child(stack, settings, results_function, results_plan)
    )
    return ingest, results


def _run_child(stack: BenchStack, settings: Settings, function: FunctionSpec, plan: Plan) -> str:
    directory = settings.work_dir
    plan_path = directory / f"{plan.function}-plan.json"
    out_path = directory / f"{plan.function}-measurements.json"
    log_path = stack.log_dir / f"{plan.function}-handler.log"
    plan_path.write_text(plan.model_dump_json())
    out_path.unlink(missing_ok=True)
    with log_path.open("w") as log:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.micro", str(plan_path), str(out_path)],
            env=stack.function_environment(function),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
    if completed.returncode != 0 or not out_path.is_file():
        raise RuntimeError(
            f"the {plan.function} benchmark failed ({completed.returncode}); "
            f"end of {log_path}:\n{log_tail(log_path)}"
        )
    return out_path.read_text()
