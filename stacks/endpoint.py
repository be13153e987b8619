"""The SageMaker asynchronous endpoint: created with scale-to-zero autoscaling, or imported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Aws, CfnMapping, Duration, Fn, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from lambdas.common.s3uri import split_s3_uri
from stacks.config import ECR_IMAGE, StackConfig
from stacks.demo_model import (
    CONTAINER_ENVIRONMENT,
    SKLEARN_IMAGE_ACCOUNTS,
    SKLEARN_IMAGE_REPOSITORY,
    SKLEARN_IMAGE_TAG,
    build_model_archive,
)
from stacks.nag import acknowledge, objects_of, wildcard_resource
from stacks.notifications import EndpointTopics
from stacks.storage import FAILURE_PREFIX, OUTPUT_PREFIX

VARIANT_NAME = "AllTraffic"
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
SCALE_IN_COOLDOWN = Duration.minutes(10)
SCALE_OUT_COOLDOWN = Duration.minutes(5)
# Application Auto Scaling acts on SageMaker endpoints through this service-linked role
# (created by the service on first use); a role of our own would be ignored.
AUTOSCALING_ROLE = (
    "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


@dataclass(frozen=True)
class EndpointTarget:
    """What the functions need of an endpoint: its name, and its ARN for IAM."""

    name: str
    arn: str


def endpoint_metric(metric_name: str, endpoint_name: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=SAGEMAKER_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name},
        statistic=statistic,
        period=Duration.minutes(1),
    )


def endpoint_construct_id(instance_type: str) -> str:
    """The endpoint's construct id, and so its logical id: one per instance type.

    UpdateEndpoint fails when it would change the instance type of a variant registered with
    Application Auto Scaling, and also when it would remove such a variant (SageMaker
    developer guide, "Update endpoints that use auto scaling": deregister first, update,
    register again). CloudFormation cannot deregister before it updates, so a new instance
    type is a new endpoint instead: CloudFormation creates it (and its endpoint config), then
    its scalable target and policies (they depend on it), moves the functions, alarms and
    dashboard to it, and deletes the old target, policies and endpoint in the cleanup phase.
    A fixed ``endpoint_name`` cannot be taken twice: change it along with the instance type.
    """
    return f"Endpoint-{instance_type}"


def imported_endpoint(scope: Construct, name: str) -> EndpointTarget:
    # SageMaker reports endpoint ARNs with the name in lower case, and IAM compares ARNs
    # case-sensitively, so the policy must use the lower-case form.
    arn = Stack.of(scope).format_arn(
        service="sagemaker", resource="endpoint", resource_name=name.lower()
    )
    return EndpointTarget(name=name, arn=arn)


class AsyncEndpoint(Construct):
    """Model + EndpointConfig (async) + Endpoint, its execution role, and its autoscaling."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        input_bucket: s3.IBucket,
        output_bucket: s3.IBucket,
        topics: EndpointTopics,
        model_source_dir: Path,
        build_dir: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker execution role of the async inference endpoint",
        )
        self.output_path = f"s3://{output_bucket.bucket_name}/{OUTPUT_PREFIX}"
        self.failure_path = f"s3://{output_bucket.bucket_name}/{FAILURE_PREFIX}"
        self._allow(["s3:GetObject"], [input_bucket.arn_for_objects("*")])
        self._allow(
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [
                output_bucket.arn_for_objects(f"{OUTPUT_PREFIX}/*"),
                output_bucket.arn_for_objects(f"{FAILURE_PREFIX}/*"),
            ],
        )
        self._allow_logs()
        topics.authorize_publisher(self.role)
        acknowledge(
            self.role,
            wildcard_resource(objects_of(input_bucket, "*")),
            "SageMaker reads the InputLocation each request names; uploaders choose the keys, "
            "so any object of the input bucket may be one (GetObject only).",
        )
        for prefix in (OUTPUT_PREFIX, FAILURE_PREFIX):
            acknowledge(
                self.role,
                wildcard_resource(objects_of(output_bucket, f"{prefix}/*")),
                f"SageMaker writes each response under s3://<output bucket>/{prefix}/, in a "
                "folder and under a name chosen per request (S3OutputPathExtension and Filename, "
                "or a random <uuid>.out), so the write grant covers that prefix only.",
            )

        image = self._image(config)
        model_data_url = self._model_data(config, model_source_dir, build_dir)
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image,
                model_data_url=model_data_url,
                environment=dict(CONTAINER_ENVIRONMENT) if config.model_image_uri is None else None,
            ),
        )
        # the model's image and data are fetched with the role's policy, not the role alone
        model.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=model.attr_model_name,
                    instance_type=config.instance_type,
                    # an endpoint starts with at least one instance; autoscaling takes it to 0
                    initial_instance_count=max(1, config.min_instance_count),
                    initial_variant_weight=1,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=self.output_path,
                    s3_failure_path=self.failure_path,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=topics.success.topic_arn,
                        error_topic=topics.error.topic_arn,
                        include_inference_response_in=(
                            ["SUCCESS_NOTIFICATION_TOPIC"]
                            if config.include_inference_response
                            else None
                        ),
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=config.max_concurrent_invocations_per_instance
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            endpoint_construct_id(config.instance_type),
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
            endpoint_name=config.endpoint_name,
        )
        # SageMaker publishes a test notification while it creates the endpoint: the role's
        # policies, the key policy and the topic policies must all be in place by then.
        self.endpoint.node.add_dependency(self.role, topics)
        self.target = EndpointTarget(name=self.endpoint.attr_endpoint_name, arn=self.endpoint.ref)
        self._autoscale(config)

    def _allow(
        self, actions: list[str], resources: list[str], conditions: dict[str, object] | None = None
    ) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions)
        )

    def _allow_logs(self) -> None:
        stack = Stack.of(self)
        log_groups = "/aws/sagemaker/Endpoints/*"
        self._allow(
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            [
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=log_groups,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
        acknowledge(
            self.role,
            wildcard_resource(
                f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{log_groups}"
            ),
            "SageMaker logs to /aws/sagemaker/Endpoints/<endpoint name>; CloudFormation names "
            "the endpoint after this role exists, so the log group is matched by prefix.",
        )
        # CloudWatch has no resource-level permissions for PutMetricData; the namespace
        # condition keeps the role to SageMaker's own (/aws/sagemaker/Endpoints) metrics.
        self._allow(
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
        acknowledge(
            self.role,
            wildcard_resource("*"),
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions: AWS requires Resource '*' (PutMetricData is limited by namespace).",
        )

    def _image(self, config: StackConfig) -> str:
        stack = Stack.of(self)
        if config.model_image_uri is not None:
            image = config.model_image_uri
            parts = ECR_IMAGE.match(image)
            if parts is None:  # StackConfig only accepts ECR URIs
                raise ValueError(f"not an ECR image URI: {image}")
            account, region = parts["account"], parts["region"]
            repository = parts["repository"]
        else:
            images = CfnMapping(
                self,
                "ScikitLearnImageAccounts",
                mapping={
                    region: {"account": acct} for region, acct in SKLEARN_IMAGE_ACCOUNTS.items()
                },
            )
            account = images.find_in_map(stack.region, "account")
            region = stack.region
            repository = SKLEARN_IMAGE_REPOSITORY
            image = Fn.sub(
                "${Account}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/"
                f"{SKLEARN_IMAGE_REPOSITORY}:{SKLEARN_IMAGE_TAG}",
                {"Account": account},
            )
        self._allow(
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [
                stack.format_arn(
                    service="ecr",
                    account=account,
                    region=region,
                    resource="repository",
                    resource_name=repository,
                )
            ],
        )
        # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
        self._allow(["ecr:GetAuthorizationToken"], ["*"])
        return image

    def _model_data(
        self, config: StackConfig, model_source_dir: Path, build_dir: Path
    ) -> str | None:
        if config.model_data_url is not None:
            bucket, key = split_s3_uri(config.model_data_url)
            self._allow(["s3:GetObject"], [f"arn:{Aws.PARTITION}:s3:::{bucket}/{key}"])
            return config.model_data_url
        if config.model_image_uri is not None:
            return None  # your own image carries its model
        archive = build_model_archive(model_source_dir, build_dir)
        asset = s3_assets.Asset(self, "DemoModel", path=str(archive))
        self._allow(["s3:GetObject"], [asset.bucket.arn_for_objects(asset.s3_object_key)])
        return asset.s3_object_url

    def _autoscale(self, config: StackConfig) -> None:
        name = self.target.name
        stack = Stack.of(self)
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=config.min_instance_count,
            max_capacity=config.max_instance_count,
            role=iam.Role.from_role_arn(
                self,
                "AutoScalingRole",
                f"arn:{Aws.PARTITION}:iam::{stack.account}:{AUTOSCALING_ROLE}",
                mutable=False,
            ),
        )
        # registered once the endpoint (the variant) exists; deregistered before it is deleted
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=config.target_backlog_per_instance,
            custom_metric=endpoint_metric(
                "ApproximateBacklogSizePerInstance", name, cloudwatch.Stats.AVERAGE
            ),
            scale_in_cooldown=SCALE_IN_COOLDOWN,
            scale_out_cooldown=SCALE_OUT_COOLDOWN,
        )
        # Target tracking cannot leave zero (no instance, no per-instance backlog): this
        # policy adds the first instance as soon as requests wait without capacity.
        scale_out_from_zero = appscaling.StepScalingAction(
            self,
            "ScaleOutFromZero",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=SCALE_OUT_COOLDOWN,
            metric_aggregation_type=appscaling.MetricAggregationType.AVERAGE,
        )
        scale_out_from_zero.add_adjustment(adjustment=1, lower_bound=0)
        self.backlog_without_capacity_alarm = endpoint_metric(
            "HasBacklogWithoutCapacity", name, cloudwatch.Stats.AVERAGE
        ).create_alarm(
            self,
            "BacklogWithoutCapacity",
            alarm_description="Requests wait and no instance runs: scale out from zero.",
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )
        self.backlog_without_capacity_alarm.add_alarm_action(
            cloudwatch_actions.ApplicationScalingAction(scale_out_from_zero)
        )
