"""The servers the handler benchmarks call, built from the synthesized template.

A moto server (S3, SQS, SNS, DynamoDB) with the template's resources, the demo model server,
and the local SageMaker async runtime, each in its own process (so the handler being timed
shares its interpreter with none of them). Unlike ``LocalPipeline`` there is no event runner:
the benchmarks deliver the queue's and topic's messages to the handlers themselves.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import TracebackType

from asyncinfer.local.lambda_runner.context import lambda_environment
from asyncinfer.local.pipeline import LOCAL_CREDENTIALS, LocalModeError, ServerProcesses
from asyncinfer.local.provision import Provisioner
from asyncinfer.local.spec import EndpointSpec, FunctionSpec, LocalPipelineSpec
from asyncinfer.local.synth import synthesize
from asyncinfer.local.template import Template
from bench.settings import REPO_ROOT, Settings, local_dir

REGION = "us-east-1"
STARTUP_TIMEOUT_SECONDS = 120.0


def runtime_arguments(endpoint: EndpointSpec, aws_endpoint_url: str, latency_ms: int) -> list[str]:
    """The command line of ``asyncinfer.local.runtime`` for the template's endpoint."""
    arguments = [
        "--aws-endpoint-url",
        aws_endpoint_url,
        "--region",
        REGION,
        "--endpoint-name",
        endpoint.name,
        "--output-path",
        endpoint.output_path,
        "--failure-path",
        endpoint.failure_path,
        "--max-concurrent-invocations-per-instance",
        str(endpoint.max_concurrent_invocations_per_instance),
        "--instance-count",
        str(endpoint.instance_count),
        "--model-url",
        endpoint.model_url,
        "--faults",
        json.dumps({"added_latency_ms": latency_ms}),
    ]
    for option, topic in (
        ("--success-topic-arn", endpoint.success_topic_arn),
        ("--error-topic-arn", endpoint.error_topic_arn),
    ):
        if topic:
            arguments += [option, topic]
    if endpoint.include_response_body:
        arguments.append("--include-response-body")
    return arguments


class BenchStack:
    """Use as a context manager; ``spec`` describes the running stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log_dir = settings.work_dir / "logs"
        self._servers = ServerProcesses(self.log_dir, log_mode="w")
        self._spec: LocalPipelineSpec | None = None

    @property
    def spec(self) -> LocalPipelineSpec:
        if self._spec is None:
            raise LocalModeError("the benchmark stack is not running")
        return self._spec

    @property
    def admin_url(self) -> str:
        return self.spec.runtime_endpoint_url + "/_local"

    def __enter__(self) -> BenchStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        synthesized = synthesize(
            REPO_ROOT, local_dir(self.settings) / "cdk.out", self.settings.context
        )
        aws_url = self._servers.start(
            "aws", "asyncinfer.local.aws_server", [], "/moto-api/", deadline
        )
        template = Template.load(
            synthesized.template_path,
            stack_name=synthesized.stack_name,
            region=REGION,
            aws_endpoint_url=aws_url,
        )
        os.environ.update(LOCAL_CREDENTIALS | {"AWS_DEFAULT_REGION": REGION})
        os.environ.pop("AWS_PROFILE", None)
        provisioner = Provisioner(template, aws_endpoint_url=aws_url, region=REGION)
        provisioner.create_resources()
        model_url = self._servers.start(
            "model", "asyncinfer.local.model_server", [], "/ping", deadline
        )
        endpoint = provisioner.endpoint_spec(model_url)
        runtime_url = self._servers.start(
            "runtime",
            "asyncinfer.local.runtime",
            runtime_arguments(endpoint, aws_url, self.settings.added_latency_ms),
            "/_local/stats",
            deadline,
        )
        self._spec = provisioner.build_spec(endpoint=endpoint, runtime_endpoint_url=runtime_url)

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
        self._servers.stop()


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
