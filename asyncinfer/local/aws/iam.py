"""Local mode under IAM: the template's roles, their credentials, and the checks moto lacks.

What happens, in order (``LocalPipeline`` drives it):

1. The AWS server starts with ``--iam`` (``aws.server``): the administrator ``local-admin``
   (key ``local``/``local``) exists; enforcement is still off.
2. ``IamProvisioner.create_roles`` creates every ``AWS::IAM::Role`` of the template with its
   ``AssumeRolePolicyDocument``, inline ``Policies`` and ``ManagedPolicyArns``, and every
   ``AWS::IAM::Policy`` as an inline policy of each of its ``Roles``, all resolved by
   ``Template.resolve``: the documents the template defines, nothing added.
3. ``IamProvisioner.assume`` gets STS credentials for each function's role (as Lambda does) and
   for the SageMaker model's ``ExecutionRoleArn`` (as SageMaker does). The trust policy must
   name the service (``lambda.amazonaws.com``, ``sagemaker.amazonaws.com``); that is checked
   here, because moto's own trust check only understands ``AWS`` principals.
4. ``enable_enforcement`` turns moto's check on (``POST /moto-api/reset-auth`` with ``0``):
   from then on every call must be signed by a known key and allowed by its policies.

moto does not expire assumed-role credentials and botocore does not refresh static ones, so
the credentials hold for the whole run (``DurationSeconds`` 12 hours is asked for all the same).

Resource policies: the permissions AWS checks when CloudFormation creates a resource (a queue's
policy for an S3 notification or a subscription's dead-letter queue, a pipe's role...) are
checked before anything is created, as of each resource's creation
(``provision.creation_checks``). The topics' ``AWS::SNS::TopicPolicy`` is set on the topics and
evaluated for ``Publish`` by the AWS server (``aws.server``).

The local SageMaker runtime is ours, not moto's: ``Authorizer`` checks its
``InvokeEndpointAsync`` callers against their role's policies (the same evaluator moto uses), and
``IamLocalRuntime`` is the runtime acting as the endpoint's execution role.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from asyncinfer.local.aws.policies import IamError, as_list
from asyncinfer.local.provision.spec import EndpointSpec
from asyncinfer.local.provision.template import Template
from asyncinfer.local.sagemaker.state import LocalRuntime
from asyncinfer.local.sagemaker.wire import AcceptedInvocation, ApiError

ADMIN_ACCESS_KEY_ID = "local"
ADMIN_SECRET_ACCESS_KEY = "local"  # noqa: S105 - the local administrator's fixed, public key
ADMIN_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ADMIN_ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET_ACCESS_KEY,
}
SESSION_SECONDS = 12 * 3600  # IAM's maximum MaxSessionDuration
LAMBDA_SERVICE = "lambda.amazonaws.com"
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
INVOKE_ACTION = "sagemaker:InvokeEndpointAsync"
ACCESS_DENIED = "AccessDeniedException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class RoleCredentials:
    """Temporary credentials of one role, as ``sts:AssumeRole`` returned them."""

    role_arn: str
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


def admin_session(region: str) -> boto3.session.Session:
    return boto3.session.Session(
        region_name=region,
        aws_access_key_id=ADMIN_ACCESS_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET_ACCESS_KEY,
    )


def enable_enforcement(aws_endpoint_url: str) -> None:
    """Turns moto's IAM check on for every following request (moto's request counter)."""
    request = urllib.request.Request(  # noqa: S310 - the loopback server we started
        f"{aws_endpoint_url}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},  # a form body would not reach moto
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def trusts_service(trust_policy: Mapping[str, Any], service: str) -> bool:
    """Whether a trust policy lets ``service`` call ``sts:AssumeRole`` (unconditionally)."""
    for statement in as_list(trust_policy.get("Statement")):
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            continue
        actions = as_list(statement.get("Action"))
        if not any(re.fullmatch(a.replace("*", ".*"), "sts:AssumeRole") for a in actions):
            continue
        principal = statement.get("Principal", {})
        if principal == "*" or service in as_list(principal.get("Service")):
            return True
    return False


# --- provisioning ----------------------------------------------------------------------------


class IamProvisioner:
    """Creates the template's roles and policies and assumes roles, as the administrator."""

    def __init__(self, template: Template, *, aws_endpoint_url: str, region: str) -> None:
        self.template = template
        self.aws_endpoint_url = aws_endpoint_url
        self.region = region
        self._session = admin_session(region)
        self.skipped_managed_policies: list[str] = []

    def _client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.aws_endpoint_url)  # type: ignore[call-overload]

    def role_name(self, logical_id: str) -> str:
        return self.template.physical(logical_id).ref

    def create_roles(self) -> None:
        iam = self._client("iam")
        for logical_id, properties in self.template.of_type("AWS::IAM::Role"):
            name = self.role_name(logical_id)
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(
                    self.template.resolve(properties["AssumeRolePolicyDocument"])
                ),
                MaxSessionDuration=SESSION_SECONDS,
            )
            for policy in self.template.resolve(properties.get("Policies", [])):
                iam.put_role_policy(
                    RoleName=name,
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(policy["PolicyDocument"]),
                )
            for arn in self.template.resolve(properties.get("ManagedPolicyArns", [])):
                try:
                    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
                except iam.exceptions.NoSuchEntityException:
                    # moto knows AWS managed policies only with MOTO_IAM_LOAD_MANAGED_POLICIES;
                    # the stack attaches them to CDK's own helper functions, which local mode
                    # does not run.
                    self.skipped_managed_policies.append(f"{name}: {arn}")
        for _, properties in self.template.of_type("AWS::IAM::Policy"):
            document = json.dumps(self.template.resolve(properties["PolicyDocument"]))
            for role in properties.get("Roles", []):
                iam.put_role_policy(
                    RoleName=self.template.resolve(role),
                    PolicyName=properties["PolicyName"],
                    PolicyDocument=document,
                )

    def set_topic_policies(self) -> None:
        """Each ``AWS::SNS::TopicPolicy`` becomes its topics' ``Policy`` attribute."""
        sns = self._client("sns")
        for _, properties in self.template.of_type("AWS::SNS::TopicPolicy"):
            document = json.dumps(self.template.resolve(properties["PolicyDocument"]))
            for topic in self.template.resolve(properties["Topics"]):
                sns.set_topic_attributes(
                    TopicArn=topic, AttributeName="Policy", AttributeValue=document
                )

    def _role_logical_id(self, role_arn_expression: Any) -> str:
        logical_id = self.template.logical_id_of(role_arn_expression)
        if self.template.resources.get(logical_id, {}).get("Type") != "AWS::IAM::Role":
            raise IamError(f"{logical_id} is not a role of this template")
        return logical_id

    def function_role(self, handler: str) -> str:
        """The logical id of the role of the function with this handler."""
        for _, properties in self.template.of_type("AWS::Lambda::Function"):
            if properties.get("Handler") == handler:
                return self._role_logical_id(properties["Role"])
        raise IamError(f"no function has the handler {handler}")

    def execution_role(self) -> str:
        """The logical id of the SageMaker model's execution role."""
        for _, properties in self.template.of_type("AWS::SageMaker::Model"):
            return self._role_logical_id(properties["ExecutionRoleArn"])
        raise IamError("the template defines no SageMaker model (no execution role)")

    def assume(self, role_logical_id: str, service: str, session_name: str) -> RoleCredentials:
        """Credentials of the role, as ``service`` gets them (its trust policy must allow it)."""
        properties = self.template.resources[role_logical_id].get("Properties", {})
        trust = self.template.resolve(properties.get("AssumeRolePolicyDocument", {}))
        if not trusts_service(trust, service):
            raise IamError(
                f"the role {role_logical_id} does not trust {service}: "
                "its AssumeRolePolicyDocument must allow it sts:AssumeRole"
            )
        role_arn = self.template.physical(role_logical_id).attributes["Arn"]
        credentials = self._client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=SESSION_SECONDS
        )["Credentials"]
        return RoleCredentials(
            role_arn=role_arn,
            access_key_id=credentials["AccessKeyId"],
            secret_access_key=credentials["SecretAccessKey"],
            session_token=credentials["SessionToken"],
        )


# --- the runtime's authorization -------------------------------------------------------------


class Authorizer:
    """Authorizes calls to our own services (the SageMaker runtime) as IAM would.

    A caller is known by its access key: the administrator's, or one of the assumed roles'
    (whose session token must come with it). A role's policies are read from the AWS server
    once and evaluated with moto's evaluator (``moto.iam.access_control.IAMPolicy``), the one
    the server applies to its own services. The signature itself is not verified."""

    def __init__(
        self, aws_endpoint_url: str, region: str, roles: Iterable[RoleCredentials]
    ) -> None:
        self._iam = admin_session(region).client("iam", endpoint_url=aws_endpoint_url)
        self._roles = {role.access_key_id: role for role in roles}
        self._policies: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def authorize(self, headers: Mapping[str, str], action: str, resource: str) -> None:
        """Raises ``ApiError`` (403) unless the request's caller may do ``action``."""
        lowered = {name.lower(): value for name, value in headers.items()}
        match = _CREDENTIAL.search(lowered.get("authorization", ""))
        access_key_id = match.group(1) if match else ""
        if access_key_id == ADMIN_ACCESS_KEY_ID and "x-amz-security-token" not in lowered:
            return
        role = self._roles.get(access_key_id)
        if role is None or lowered.get("x-amz-security-token") != role.session_token:
            raise ApiError(
                UNRECOGNIZED_CLIENT,
                "The security token included in the request is invalid.",
                403,
            )
        if not self._permits(role.role_arn, action, resource):
            session = (
                f"{role.role_arn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}"
            )
            raise ApiError(
                ACCESS_DENIED,
                f"User: {session}/local is not authorized to perform: {action} on resource: "
                f"{resource} because no identity-based policy allows the {action} action",
                403,
            )

    def _permits(self, role_arn: str, action: str, resource: str) -> bool:
        # moto is local mode's optional dependency; LocalPipeline imports it before threads
        from moto.iam.access_control import IAMPolicy, PermissionResult

        permitted = False
        for document in self._role_policies(role_arn.rsplit("/", 1)[-1]):
            result = IAMPolicy(document).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return False
            permitted = permitted or result == PermissionResult.PERMITTED
        return permitted

    def _role_policies(self, role_name: str) -> list[str]:
        with self._lock:
            if role_name in self._policies:
                return self._policies[role_name]
        documents: list[str] = []
        for name in self._iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = self._iam.get_role_policy(RoleName=role_name, PolicyName=name)
            documents.append(_document_text(document["PolicyDocument"]))
        attached = self._iam.list_attached_role_policies(RoleName=role_name)
        for policy in attached["AttachedPolicies"]:
            arn = policy["PolicyArn"]
            version = self._iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = self._iam.get_policy_version(PolicyArn=arn, VersionId=version)
            documents.append(_document_text(document["PolicyVersion"]["Document"]))
        with self._lock:
            self._policies[role_name] = documents
        return documents


def _document_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


class IamLocalRuntime(LocalRuntime):
    """The local runtime under IAM: it accepts ``InvokeEndpointAsync`` only from callers whose
    policies allow it on the endpoint's ARN, and reads, writes and publishes as the endpoint's
    execution role (``credentials``)."""

    def __init__(
        self,
        endpoint: EndpointSpec,
        aws_endpoint_url: str,
        region: str,
        *,
        credentials: RoleCredentials,
        authorizer: Authorizer,
        endpoint_arn: str,
        **options: Any,
    ) -> None:
        super().__init__(
            endpoint,
            aws_endpoint_url,
            region,
            **options,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
        )
        self._authorizer = authorizer
        self._endpoint_arn = endpoint_arn
        self._denied: Counter[str] = Counter()
        self._denied_lock = threading.Lock()

    def invoke_async(
        self, endpoint_name: str, headers: Mapping[str, str], body: bytes
    ) -> AcceptedInvocation:
        try:
            self._authorizer.authorize(headers, INVOKE_ACTION, self._endpoint_arn)
        except ApiError as error:
            with self._denied_lock:
                self._denied[error.code] += 1
            raise
        return super().invoke_async(endpoint_name, headers, body)

    def stats(self) -> dict[str, Any]:
        """The runtime's counters, and ``denied``: calls refused by IAM, per error code."""
        with self._denied_lock:
            denied = dict(self._denied)
        return {**super().stats(), "denied": denied}
