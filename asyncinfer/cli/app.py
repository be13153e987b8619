"""The ``asyncinfer`` command line: submit inputs, follow them, read and repair the results.

Commands stay thin: parse options, call the data-access and logic modules, hand plain values
to ``render``. Every failure becomes one line on stderr (see ``errors``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from typer import _click  # Typer vendors Click (0.26+): its Context and usage errors live here
from typer.core import TyperGroup

from asyncinfer import __version__
from asyncinfer.cli import render
from asyncinfer.cli.commands import (
    backfill,
    demo,
    fetch,
    job,
    jobs,
    local,
    reconcile,
    redrive,
    results,
    status,
    submit,
    table,
    watch,
)
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import AwsCallError, cli_error_for, usage_error
from asyncinfer.cli.target import GlobalOptions, local_dir_from_env, local_extra_missing


class AsyncInferGroup(TyperGroup):
    """Turns usage and botocore errors into the one-line form, wherever they are raised."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: _click.Context | None = None,
        **extra: Any,
    ) -> _click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _click.exceptions.NoArgsIsHelpError:
            raise
        except _click.exceptions.UsageError as error:
            raise usage_error(error) from None

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _click.exceptions.NoArgsIsHelpError:
            raise
        except _click.exceptions.UsageError as error:
            raise usage_error(error) from None
        except (AwsCallError, BotoCoreError, ClientError) as error:
            raise cli_error_for(error) from None


app = typer.Typer(
    name="asyncinfer",
    cls=AsyncInferGroup,
    help="Submit files to a SageMaker asynchronous inference pipeline and read the results.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"asyncinfer {__version__}")
        raise typer.Exit


@app.callback()
def global_options(
    ctx: typer.Context,
    *,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
            help="AWS region of the stack.",
            show_envvar=True,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", envvar="AWS_PROFILE", help="AWS named profile."),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            envvar="ASYNCINFER_STACK",
            help="CloudFormation stack to target. Without it, a running local mode is used.",
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="Override the AWS endpoint URL of every service."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Global options, as in the AWS CLI."""
    options = GlobalOptions(
        region=region,
        profile=profile,
        stack=stack,
        endpoint_url=endpoint_url,
        local_dir=local_dir_from_env(),
    )
    ctx.obj = CliContext(options, stdout=render.stdout_console(), stderr=render.stderr_console())


for command in (
    submit.submit,
    status.status,
    results.results,
    fetch.fetch,
    watch.watch,
    redrive.redrive,
    reconcile.reconcile,
    backfill.backfill,
    jobs.jobs,
):
    app.command()(command)
# without the `local` extra (an installed CLI), local mode cannot run: not listed in --help
local_mode_listed = not local_extra_missing()
app.command(hidden=not local_mode_listed)(demo.demo)
app.add_typer(local.local_app, name="local", hidden=not local_mode_listed)
app.add_typer(job.job_app, name="job")
app.add_typer(table.table_app, name="table")
