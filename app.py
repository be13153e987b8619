#!/usr/bin/env python3
"""The CDK app: validates every context key, then synthesizes the pipeline stack under cdk-nag.

Run by the CDK CLI (``cdk synth``, ``cdk deploy``: context arrives in ``CDK_CONTEXT_JSON``) or
directly (``python app.py -c endpoint_mode=import -c ...``). Either way the context is, from
lowest to highest precedence: ``cdk.json``, the CLI's context, then ``-c key=value`` arguments.
A bad value stops the app before synthesis with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stacks.config import ConfigError, StackConfig, check_deploy_region
from stacks.demo_model import ModelPackageError

if TYPE_CHECKING:
    from aws_cdk import App

ROOT = Path(__file__).resolve().parent
CDK_JSON = ROOT / "cdk.json"
MODEL_SOURCE_DIR = ROOT / "asyncinfer" / "model"
CONTEXT_ENV = "CDK_CONTEXT_JSON"
# the CLI moves its context into a file named by this variable when it is too large for one
CONTEXT_OVERFLOW_ENV = "CONTEXT_OVERFLOW_LOCATION_ENV"
CONFIG_ERROR_STATUS = 2
VALIDATION_FAILED_STATUS = 1
# how the CDK reports failed policy validation (cdk-nag findings) from App.synth()
VALIDATION_FAILED = "ValidationFailed"


def argument_context(argv: Sequence[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(description="Synthesize the async inference pipeline.")
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a context key (repeatable), as with `cdk synth -c`",
    )
    pairs: list[str] = parser.parse_args(argv).context
    context = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            parser.error(f"-c expects KEY=VALUE, got {pair!r}")
        context[key.strip()] = value
    return context


def file_context() -> dict[str, Any]:
    """The ``context`` of cdk.json: the defaults, also when the CLI does not run the app."""
    if not CDK_JSON.is_file():
        return {}
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def cli_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads(os.environ.get(CONTEXT_ENV) or "{}")
    overflow = os.environ.get(CONTEXT_OVERFLOW_ENV)
    if overflow:
        context.update(json.loads(Path(overflow).read_text()))
    return context


def build_app(
    arguments: Mapping[str, Any],
    *,
    outdir: str | None = None,
    model_source_dir: Path = MODEL_SOURCE_DIR,
    deploy_region: str | None = None,
) -> App:
    """Validate the context and compose the app (not synthesized yet).

    Raises ConfigError before importing the CDK, so a bad key costs no Node.js start-up.
    """
    defaults = file_context()
    config = StackConfig.from_context({**defaults, **cli_context(), **arguments})
    check_deploy_region(config, deploy_region)

    from aws_cdk import App, Validations  # only once the config is valid
    from cdk_nag import AwsSolutionsChecks

    from stacks.pipeline_stack import AsyncInferenceStack

    if outdir is None and "CDK_OUTDIR" not in os.environ:
        outdir = str(ROOT / "cdk.out")
    app = App(context=defaults, post_cli_context=dict(arguments), outdir=outdir)
    AsyncInferenceStack(
        app,
        config.stack_name,
        config=config,
        model_source_dir=model_source_dir,
        # beside the cloud assembly (build/ is git-ignored), not in the model source folder
        build_dir=Path(app.outdir).resolve().parent / "build" / config.stack_name,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main(argv: Sequence[str] | None = None) -> int:
    arguments = argument_context(sys.argv[1:] if argv is None else argv)
    try:
        app = build_app(arguments, deploy_region=os.environ.get("CDK_DEFAULT_REGION"))
    except (ConfigError, ModelPackageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return CONFIG_ERROR_STATUS
    try:
        app.synth()
    except RuntimeError as error:
        if not str(error).startswith(VALIDATION_FAILED):
            raise
        # the CDK has printed every finding above this line
        print(f"error: cdk-nag findings are not acknowledged: {error}", file=sys.stderr)
        return VALIDATION_FAILED_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())
