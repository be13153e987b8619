"""The servers the handler benchmarks call, built from the synthesized template.

``LocalPipeline`` without its functions (``run_functions=False``): a moto server (S3, SQS, SNS,
DynamoDB) with the template's resources, the demo model server, and the local SageMaker async
runtime, each in its own process (``runtime_process=True``), so the handler being timed shares
its interpreter with none of them. The benchmarks deliver the queue's and topic's messages to
the handlers themselves.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.lambda_runner.execution import lambda_environment
from asyncinfer.local.processes import LocalModeError
from asyncinfer.local.provision.spec import FunctionSpec, LocalPipelineSpec
from asyncinfer.local.session import LOCAL_CREDENTIALS, LocalOptions, LocalPipeline
from bench.settings import REPO_ROOT, Settings, local_dir

REGION = "us-east-1"
STARTUP_TIMEOUT_SECONDS = 120.0


class BenchStack:
    """Use as a context manager; ``spec`` describes the running stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pipeline = LocalPipeline(
            LocalOptions(
                state_dir=local_dir(settings),
                region=REGION,
                context=dict(settings.context),
                runtime_options={
                    "faults": FaultSettings(added_latency_ms=settings.added_latency_ms)
                },
                enforce_iam=False,
                startup_timeout_seconds=STARTUP_TIMEOUT_SECONDS,
                run_functions=False,
                runtime_process=True,
            )
        )
        self.log_dir = self._pipeline.log_dir

    @property
    def spec(self) -> LocalPipelineSpec:
        if self._pipeline.spec is None:
            raise LocalModeError("the benchmark stack is not running")
        return self._pipeline.spec

    @property
    def admin_url(self) -> str:
        return self.spec.runtime_endpoint_url + "/_local"

    def __enter__(self) -> BenchStack:
        self._pipeline.start()
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def function_environment(self, function: FunctionSpec) -> dict[str, str]:
        """What the function's Lambda container would have, pointed at the local servers."""
        spec = self.spec
        base = LOCAL_CREDENTIALS | {
            "AWS_ENDPOINT_URL": spec.aws_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": spec.runtime_endpoint_url,
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return lambda_environment(function, base, REGION)

    def stop(self) -> None:
        self._pipeline.stop()


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
