"""``asyncinfer local up``: local mode in the foreground, with how to point clients at it."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from asyncinfer.cli.commands.common import parse_context, require_local_extra
from asyncinfer.local.processes import LocalModeError
from asyncinfer.local.provision.synth import SynthError
from asyncinfer.local.provision.template import TemplateError
from asyncinfer.local.session import (
    LocalOptions,
    LocalPipeline,
    default_enforce_iam,
    default_state_dir,
)
from lambdas.common.contract import StackOutput

local_app = typer.Typer(help="Run the whole pipeline on this machine (no AWS account, no Docker).")
console = Console(stderr=True)

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Folder for local state and logs [default: .local]"),
]
ModelUrl = Annotated[
    str | None,
    typer.Option("--model-url", help="Your own model server (container contract) instead."),
]

Context = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        "-c",
        help="CDK context key=value, as cdk -c (repeatable; an empty value: the default).",
    ),
]

EnforceIam = Annotated[
    bool | None,
    typer.Option(
        "--iam/--no-iam",
        help="Enforce the template's IAM policies [default: on; ASYNCINFER_LOCAL_IAM=off]",
    ),
]


def _options(
    state_dir: Path | None,
    model_url: str | None,
    enforce_iam: bool | None = None,
    context: list[str] | None = None,
) -> LocalOptions:
    return LocalOptions(
        state_dir=(state_dir or default_state_dir()).resolve(),
        model_url=model_url,
        context=parse_context(context or []),
        enforce_iam=default_enforce_iam() if enforce_iam is None else enforce_iam,
    )


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]local mode: {error}[/red]")
    return typer.Exit(code=1)


@local_app.command("up")
def up(
    state_dir: StateDir = None,
    model_url: ModelUrl = None,
    iam: EnforceIam = None,
    context: Context = None,
) -> None:
    """Start local mode in the foreground; Ctrl-C stops everything cleanly."""
    require_local_extra()
    options = _options(state_dir, model_url, iam, context)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: stop_requested.set())
    pipeline = LocalPipeline(options, progress=lambda step: console.print(f"… {step}"))
    try:
        with pipeline:
            assert pipeline.spec is not None
            spec = pipeline.spec
            console.print("[green]local mode is up[/green]")
            console.print(f"  AWS APIs (moto)      {spec.aws_endpoint_url}")
            console.print(f"  SageMaker runtime    {spec.runtime_endpoint_url}")
            console.print(f"  model server         {pipeline.model_url}")
            console.print(f"  endpoint             {spec.endpoint.name}")
            console.print(
                f"  input bucket         {spec.outputs.get(StackOutput.INPUT_BUCKET_NAME)}"
            )
            console.print(
                f"  results table        {spec.outputs.get(StackOutput.RESULTS_TABLE_NAME)}"
            )
            console.print(f"  state and logs       {pipeline.options.state_dir}")
            enforced = "enforced" if pipeline.options.enforce_iam else "OFF (--no-iam)"
            console.print(f"  IAM                  {enforced}")
            console.print("Point the AWS CLI and `asyncinfer` at it with:")
            for name, value in pipeline.client_environment().items():
                console.print(f"  export {name}={value}", highlight=False)
            console.print("Ctrl-C stops local mode.")
            stop_requested.wait()
            console.print("… stopping")
    except (LocalModeError, SynthError, TemplateError) as error:
        raise _fail(error) from error
