"""The deployed stack the CLI targets: its CloudFormation outputs name everything else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import ClientError

from asyncinfer.cli.errors import AwsCallError, CliError

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_cloudformation.client import CloudFormationClient


def stack_outputs(
    session: boto3.Session, stack_name: str, region: str, endpoint_url: str | None
) -> dict[str, str]:
    client: CloudFormationClient = session.client(
        "cloudformation",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )
    return read_stack_outputs(client, stack_name, region)


def read_stack_outputs(
    client: CloudFormationClient, stack_name: str, region: str
) -> dict[str, str]:
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            raise CliError(f"stack {stack_name} not found in {region}") from error
        raise AwsCallError(f"stack {stack_name}", error) from error
    if not stacks:
        raise CliError(f"stack {stack_name} not found in {region}")
    return {
        output["OutputKey"]: output["OutputValue"]
        for output in stacks[0].get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }
