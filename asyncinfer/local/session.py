"""Starts and stops the whole local pipeline: AWS APIs, model server, runtime and event runner.

By default local mode runs under IAM (``asyncinfer.local.aws.iam``): the functions and the runtime
act with their template roles' credentials, everything else as the local administrator.

Everything lives under one state folder (``.local/`` by default): the synthesized template,
the logs of every component, and ``state.json``, which tells the CLI where local mode answers.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from asyncinfer.local.aws.iam import (
    LAMBDA_SERVICE,
    SAGEMAKER_SERVICE,
    Authorizer,
    IamLocalRuntime,
    IamProvisioner,
    RoleCredentials,
    enable_enforcement,
)
from asyncinfer.local.aws.pipes import PipeRunner, pipe_specs
from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.lambda_runner.runner import EventRunner
from asyncinfer.local.overrides import with_function_environment, with_schedule_period
from asyncinfer.local.processes import (
    RUNTIME_MODULE,
    STARTUP_TIMEOUT_SECONDS,
    STOP_TIMEOUT_SECONDS,
    LocalModeError,
    ServerProcesses,
    StateDirLock,
    project_root,
    runtime_arguments,
)
from asyncinfer.local.provision.creation_checks import check_creation
from asyncinfer.local.provision.resources import FUNCTION_NAMES, Provisioner
from asyncinfer.local.provision.spec import EndpointSpec, LocalPipelineSpec
from asyncinfer.local.provision.synth import synthesize
from asyncinfer.local.provision.template import Template
from asyncinfer.local.sagemaker.state import LocalRuntime
from lambdas.common.clock import utc_now

MODEL_SERVER_MODULE = "asyncinfer.local.sagemaker.model_server"

# The local administrator (``aws.authorization.LOCAL_ADMIN_KEY``): provisioning, the CLI, tests.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}
STATE_DIR_VARIABLE = "ASYNCINFER_LOCAL_DIR"
IAM_VARIABLE = "ASYNCINFER_LOCAL_IAM"  # "off" runs local mode without IAM (for debugging)


# What the pipes thread and the runtime's request threads import lazily (moto is local mode's
# optional dependency, and the CLI imports this module without it): imported by ``start``
# before any thread starts, since two threads importing moto's dependencies at once can meet a
# partially initialized module (``ImportError: cannot import name 'HTTPAdapter' from
# partially initialized module 'requests.adapters'``).
LAZY_IMPORTS = ("moto.iam.access_control", "moto.events.models")


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_VARIABLE, ".local")).resolve()


def default_enforce_iam() -> bool:
    return os.environ.get(IAM_VARIABLE, "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass
class LocalOptions:
    state_dir: Path = field(default_factory=default_state_dir)
    region: str = "us-east-1"
    model_url: str | None = None  # the user's own model server instead of the demo model
    context: dict[str, str] = field(default_factory=dict)  # CDK context overrides
    runtime_options: dict[str, Any] = field(default_factory=dict)  # e.g. fault injection
    runner_options: dict[str, Any] = field(default_factory=dict)  # e.g. duplicate_delivery_rate
    # per function name ("ingest", "results", "reconciler"): variables set over the template's,
    # e.g. AWS_ENDPOINT_URL_DYNAMODB to put a fault-injecting proxy in front of one function's
    # table
    function_environment: dict[str, dict[str, str]] = field(default_factory=dict)
    # IAM enforcement: each function and the runtime act as their template role (README)
    enforce_iam: bool = field(default_factory=default_enforce_iam)
    # edits the synthesized template before local mode reads it (tests: a grant removed)
    template_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # A local-only speed-up: every scheduled rule (the reconciler's rate(N minutes), from the
    # reconcile_every_minutes context) fires every this many seconds instead. None: the
    # template's rate, as on AWS.
    schedule_period_seconds: float | None = None
    startup_timeout_seconds: float = STARTUP_TIMEOUT_SECONDS
    # The handler benchmarks (bench/stack.py) call the handlers themselves and time them: no
    # event runner, no pipes, and the runtime in its own process, so that the timed handler
    # shares its interpreter with no server. A runtime process takes only ``faults`` from
    # ``runtime_options`` and runs without IAM.
    run_functions: bool = True
    runtime_process: bool = False


class LocalPipeline:
    """The pipeline on one machine. Use as a context manager, or ``start()`` and ``stop()``."""

    def __init__(
        self, options: LocalOptions, progress: Callable[[str], None] = lambda _: None
    ) -> None:
        self.options = options
        self._progress = progress
        self._servers = ServerProcesses(self.log_dir)
        self._lock = StateDirLock(options.state_dir)
        self.runtime: LocalRuntime | None = None
        self.runner: EventRunner | None = None
        self.pipes: PipeRunner | None = None
        self.spec: LocalPipelineSpec | None = None
        self.model_url = ""
        self.role_credentials: dict[str, RoleCredentials] = {}

    @property
    def state_file(self) -> Path:
        return self.options.state_dir / "state.json"

    @property
    def log_dir(self) -> Path:
        return self.options.state_dir / "logs"

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalPipelineSpec:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalPipelineSpec:
        options = self.options
        for module in LAZY_IMPORTS:
            importlib.import_module(module)
        if options.runtime_process and options.enforce_iam:
            raise LocalModeError("a runtime in its own process runs without IAM (enforce_iam)")
        self._lock.acquire()  # before anything touches the folder another local mode uses
        self.log_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + options.startup_timeout_seconds
        # The servers depend on nothing that follows: they import and bind while the app is
        # synthesized and the stack provisioned (seconds each on two cores, in sequence).
        self._progress("starting the AWS APIs (moto server)")
        aws_server = self._servers.launch(
            "aws", "asyncinfer.local.aws.server", ["--iam"] if options.enforce_iam else []
        )
        model_server = None
        if options.model_url is None:
            self._progress("starting the demo model server")
            model_server = self._servers.launch("model", MODEL_SERVER_MODULE, [])
        self._progress("synthesizing the CDK app")
        synthesized = synthesize(project_root(), options.state_dir / "cdk.out", options.context)
        aws_endpoint_url = aws_server.ready("/moto-api/", deadline)
        template = Template(
            self._load_template(synthesized.template_path, synthesized.stack_name),
            stack_name=synthesized.stack_name,
            region=options.region,
            aws_endpoint_url=aws_endpoint_url,
        )
        os.environ.update(LOCAL_CREDENTIALS | {"AWS_DEFAULT_REGION": options.region})
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)  # the administrator is an IAM user
        provisioner = Provisioner(
            template, aws_endpoint_url=aws_endpoint_url, region=options.region
        )
        if options.enforce_iam:
            # what AWS validates at a resource's creation, as of then (before creating anything)
            check_creation(template)
        self._progress("creating the stack's buckets, queues, topics and table")
        provisioner.create_resources()
        if options.enforce_iam:
            self._assume_roles(template, aws_endpoint_url)
        self.model_url = options.model_url or ""
        if model_server is not None:
            self.model_url = model_server.ready("/ping", deadline)
        endpoint = provisioner.endpoint_spec(self.model_url)
        self._progress(f"starting the SageMaker async runtime for endpoint {endpoint.name}")
        runtime_url = self._start_runtime(endpoint, aws_endpoint_url, provisioner, deadline)
        # each function's workers act as its role; the caller's variables still win
        overrides: dict[str, dict[str, str]] = {
            name: self.role_credentials[name].environment()
            for name in FUNCTION_NAMES.values()
            if name in self.role_credentials
        }
        for name, extra in options.function_environment.items():
            overrides[name] = {**overrides.get(name, {}), **extra}
        spec = with_schedule_period(
            with_function_environment(
                provisioner.build_spec(endpoint=endpoint, runtime_endpoint_url=runtime_url),
                overrides,
            ),
            options.schedule_period_seconds,
        )
        if options.enforce_iam:
            enable_enforcement(aws_endpoint_url)
        self.spec = spec
        if options.run_functions:
            self._start_functions(spec, template)
        self._refuse_startup_tracebacks()
        self._write_state(spec)
        return spec

    def _refuse_startup_tracebacks(self) -> None:
        """A traceback in a server's log while starting fails the start (and the tests)."""
        logs = self._servers.tracebacks()
        if logs:
            raise LocalModeError(f"a local server logged a traceback while starting: {logs}")

    def _assume_roles(self, template: Template, aws_endpoint_url: str) -> None:
        iam = IamProvisioner(
            template, aws_endpoint_url=aws_endpoint_url, region=self.options.region
        )
        self._progress("creating the stack's roles and assuming them (IAM enforced)")
        iam.create_roles()
        iam.set_topic_policies()
        # every function local mode runs acts as its own role (FUNCTION_NAMES: handler -> name)
        self.role_credentials = {
            name: iam.assume(iam.function_role(handler), LAMBDA_SERVICE, name)
            for handler, name in FUNCTION_NAMES.items()
        }
        self.role_credentials["endpoint"] = iam.assume(
            iam.execution_role(), SAGEMAKER_SERVICE, "SageMaker"
        )

    def _start_runtime(
        self,
        endpoint: EndpointSpec,
        aws_endpoint_url: str,
        provisioner: Provisioner,
        deadline: float,
    ) -> str:
        """Starts the runtime (in this process, or in its own) and returns its URL."""
        options = self.options
        if options.runtime_process:
            faults = options.runtime_options.get("faults") or FaultSettings()
            arguments = runtime_arguments(endpoint, aws_endpoint_url, options.region, faults)
            if options.run_functions:  # the endpoint's test notifications, for the functions
                arguments.append("--test-notification")
            return self._servers.start(
                "runtime", RUNTIME_MODULE, arguments, "/_local/stats", deadline
            )
        if options.enforce_iam:
            self.runtime = IamLocalRuntime(
                endpoint,
                aws_endpoint_url=aws_endpoint_url,
                region=options.region,
                credentials=self.role_credentials["endpoint"],
                authorizer=Authorizer(
                    aws_endpoint_url,
                    options.region,
                    [self.role_credentials[name] for name in FUNCTION_NAMES.values()],
                ),
                endpoint_arn=provisioner.endpoint_arn(),
                **options.runtime_options,
            )
        else:
            self.runtime = LocalRuntime(
                endpoint,
                aws_endpoint_url=aws_endpoint_url,
                region=options.region,
                **options.runtime_options,
            )
        self.runtime.start()
        return self.runtime.url

    def _start_functions(self, spec: LocalPipelineSpec, template: Template) -> None:
        """The event runner, the pipes, and the endpoint's test notifications they receive."""
        self._progress("starting the event runner (ingest, jobs, results and scheduled functions)")
        self.runner = EventRunner(
            [spec.ingest, *spec.queues, *spec.results, *spec.schedules],
            aws_endpoint_url=spec.aws_endpoint_url,
            region=self.options.region,
            base_environment=self.function_environment(spec),
            log_dir=self.log_dir,
            failure_destinations=spec.failure_destinations,
            **self.options.runner_options,
        )
        self.runner.start()
        # the result-event pipes (moto stores pipes but runs none: asyncinfer/local/aws/pipes.py)
        self.pipes = PipeRunner(
            pipe_specs(template), aws_endpoint_url=spec.aws_endpoint_url, region=self.options.region
        )
        self.pipes.start()
        if self.runtime is not None:
            self.runtime.publish_test_notifications()

    def _load_template(self, path: Path, stack_name: str) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(path.read_text())
        if self.options.template_transform is not None:
            body = self.options.template_transform(body)
            (self.options.state_dir / f"{stack_name}.local.template.json").write_text(
                json.dumps(body, indent=1)
            )
        return body

    def function_environment(self, spec: LocalPipelineSpec) -> dict[str, str]:
        """What a Lambda container would have, pointed at the local services."""
        return LOCAL_CREDENTIALS | {
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_REGION": spec.region,
            "AWS_ENDPOINT_URL": spec.aws_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": spec.runtime_endpoint_url,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PATH": os.environ.get("PATH", ""),
        }

    def client_environment(self) -> dict[str, str]:
        """The variables that point the AWS CLI and this project's CLI at local mode."""
        if self.spec is None:
            raise LocalModeError("local mode is not running")
        return LOCAL_CREDENTIALS | {
            "AWS_DEFAULT_REGION": self.spec.region,
            "AWS_ENDPOINT_URL": self.spec.aws_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.spec.runtime_endpoint_url,
            STATE_DIR_VARIABLE: str(self.options.state_dir),
        }

    def _write_state(self, spec: LocalPipelineSpec) -> None:
        state = {
            "region": spec.region,
            "aws_endpoint_url": spec.aws_endpoint_url,
            "runtime_endpoint_url": spec.runtime_endpoint_url,
            "model_url": self.model_url,
            "admin_url": f"{spec.runtime_endpoint_url}/_local",
            "outputs": spec.outputs,
            "pid": os.getpid(),
            "started_at": utc_now().isoformat(timespec="seconds"),
            "iam_enforced": self.options.enforce_iam,
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.state_file)

    def stop(self) -> None:
        """Stops every component, newest first; safe to call more than once. Only the owner
        of the state folder (the lock's holder) removes its state file."""
        if self._lock.held:
            self.state_file.unlink(missing_ok=True)
        if self.pipes is not None:
            self.pipes.stop()
            self.pipes = None
        if self.runner is not None:
            self.runner.stop(timeout=STOP_TIMEOUT_SECONDS)
            self.runner = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        self._servers.stop()
        self._lock.release()
