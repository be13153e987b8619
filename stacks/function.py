"""What the pipeline functions share: runtime, packaging, layer, role, logs and tracing."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, Fn, IgnoreMode, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.common.contract import METRICS_NAMESPACE, Service
from stacks.config import RemovalChoice, StackConfig
from stacks.nag import acknowledge, wildcard_resource

# Pinned once for every function: the Powertools layer below is built for exactly this pair.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python313-arm64"
REPO_ROOT = Path(__file__).resolve().parent.parent

RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def removal_policy(config: StackConfig) -> RemovalPolicy:
    if config.removal_policy is RemovalChoice.DESTROY:
        return RemovalPolicy.DESTROY
    return RemovalPolicy.RETAIN


def asset_exclusions(function: str) -> list[str]:
    """gitignore rules keeping only ``lambdas/__init__.py``, ``lambdas/common`` and the function
    (no function imports another: what two share lives in ``lambdas/common``)."""
    return [
        "/*",
        "!/lambdas/",
        "/lambdas/*",
        "!/lambdas/__init__.py",
        "!/lambdas/common/",
        f"!/lambdas/{function}/",
        "__pycache__/",
        "*.pyc",
    ]


def powertools_layer_arn(version: int) -> str:
    """The public Powertools layer in the region the stack deploys to (a deploy-time value)."""
    return Fn.sub(
        "arn:${AWS::Partition}:lambda:${AWS::Region}:"
        f"{POWERTOOLS_LAYER_ACCOUNT}:layer:{POWERTOOLS_LAYER_NAME}:{version}"
    )


class PipelineFunction(Construct):
    """One function with its own role and log group; the caller adds its permissions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        service: Service,
        description: str,
        environment: Mapping[str, str],
        timeout_seconds: int,
        memory_mb: int,
        on_failure: lambda_.IDestination | None = None,
        retry_attempts: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"The {service} function of the async inference pipeline",
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=RETENTION_DAYS[config.log_retention_days],
            removal_policy=removal_policy(config),
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=f"lambdas.{service}.handler.handler",
            code=lambda_.Code.from_asset(
                str(REPO_ROOT),
                exclude=asset_exclusions(service),
                ignore_mode=IgnoreMode.GIT,
            ),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools", powertools_layer_arn(config.powertools_layer_version)
                )
            ],
            role=self.role,
            log_group=self.log_group,
            # JSON lets Lambda filter by level before CloudWatch Logs ingests (and bills) a
            # line: the function's lines below log_level, and at system_log_level WARN its own
            # start and report lines of every invocation (stacks/config.py).
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel(config.log_level.value),
            system_log_level_v2=lambda_.SystemLogLevel(config.system_log_level.value),
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                # Lambda's AWS_LAMBDA_LOG_LEVEL wins in Powertools; kept equal, since Powertools
                # warns when they differ.
                "POWERTOOLS_LOG_LEVEL": config.log_level.value,
            },
            on_failure=on_failure,
            retry_attempts=retry_attempts,
        )

        acknowledge(
            self.role,
            wildcard_resource("*"),
            "xray:PutTraceSegments and xray:PutTelemetryRecords (added by active tracing) have "
            "no resource-level permissions: AWS requires Resource '*'.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Pinned to {LAMBDA_RUNTIME.name}: the public Powertools layer "
            f"{POWERTOOLS_LAYER_NAME} that this function loads is built for exactly this runtime "
            "and architecture; a newer runtime needs its matching layer.",
        )

    def allow(self, actions: list[str], resources: list[str]) -> None:
        self.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))
