"""What every command shares: the global options, the target (discovered once, announced on
stderr) and the data-access objects built for it."""

from __future__ import annotations

from functools import cached_property

from rich.console import Console

from asyncinfer.cli.access.clients import AwsClients
from asyncinfer.cli.access.jobs import JobsTable
from asyncinfer.cli.access.messaging import Functions, Queues
from asyncinfer.cli.access.objects import Objects
from asyncinfer.cli.access.table import ResultsTable
from asyncinfer.cli.errors import CliError
from asyncinfer.cli.render import emit
from asyncinfer.cli.target import GlobalOptions, Target, discover
from lambdas.common.contract import INPUT_LOCATION_INDEX, STATUS_INDEX, StackOutput


class CliContext:
    def __init__(self, options: GlobalOptions, *, stdout: Console, stderr: Console) -> None:
        self.options = options
        self.stdout = stdout
        self.stderr = stderr
        self._max_pool_connections = 10

    def size_connection_pool(self, connections: int) -> None:
        """Call before the first AWS call when a command runs that many requests at once."""
        self._max_pool_connections = max(connections, 10)

    @cached_property
    def target(self) -> Target:
        target = discover(self.options)
        emit(self.stderr, target.describe())
        return target

    @cached_property
    def clients(self) -> AwsClients:
        return AwsClients(self.target, max_pool_connections=self._max_pool_connections)

    @cached_property
    def table(self) -> ResultsTable:
        return ResultsTable(
            self.clients.dynamodb,
            self.target.output(StackOutput.RESULTS_TABLE_NAME),
            input_location_index=self.target.optional_output(StackOutput.INPUT_LOCATION_INDEX_NAME)
            or INPUT_LOCATION_INDEX,
            status_index=self.target.optional_output(StackOutput.STATUS_INDEX_NAME) or STATUS_INDEX,
        )

    @cached_property
    def objects(self) -> Objects:
        return Objects(self.clients.s3)

    @cached_property
    def queues(self) -> Queues:
        return Queues(self.clients.sqs)

    @cached_property
    def functions(self) -> Functions:
        return Functions(self.clients.awslambda)

    @cached_property
    def jobs(self) -> JobsTable:
        """The jobs table (docs/jobs.md); a stack without jobs is a service error."""
        name = self.target.optional_output(StackOutput.JOBS_TABLE_NAME)
        if name is None:
            raise CliError(
                "this stack has no jobs (publish_events and an output bucket are needed)"
            )
        return JobsTable(self.clients.dynamodb, name)
