"""What the local AWS server (``server``) adds to moto's authorization under IAM (``--iam``, local
mode's default):

- an administrator identity exists from the first request: the IAM user ``local-admin`` with
  the access key ``local``/``local`` (``LOCAL_ADMIN_KEY``) and an inline ``*:*`` policy. It is
  seeded into moto's IAM backend directly, because the IAM API cannot choose a key's id;
- moto authorizes DynamoDB and SNS calls against resource ``*``, so an ARN-scoped grant never
  matches. Here each call is authorized on the ARNs AWS uses: the table
  (``arn:aws:dynamodb:R:A:table/T``), the index for a ``Query``/``Scan`` with ``IndexName``
  (``.../table/T/index/I``, as AWS authorizes it), every table of a batch or transaction, and the
  topic for SNS (``Publish`` on ``TopicArn``/``TargetArn``, ``Subscribe``, attributes...);
- moto authorizes Lambda's ``Invoke`` as ``lambda:Invoke`` on ``*``; AWS authorizes it as
  ``lambda:InvokeFunction`` on the function's ARN (``arn:aws:lambda:R:A:function:F``, with
  ``:QUALIFIER`` for a qualified call; Service Authorization Reference, "Actions defined by AWS
  Lambda"), and so does this server, for every call on a function;
- ``GetObject``/``HeadObject`` on a missing key answer 403 ``AccessDenied`` when the caller may
  not ``s3:ListBucket`` the bucket, as S3 does (S3 API reference, HeadObject "Permissions":
  "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403").

Enforcement itself is moto's request counter: the server starts with it off so that local mode
can create the template's roles and assume them as their services would (moto's own trust-policy
check cannot evaluate a ``Service`` principal), then turns it on with ``POST /moto-api/reset-auth``
(``0``); see ``asyncinfer.local.aws.iam``.
"""

from __future__ import annotations

from typing import Any

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account (template.LOCAL_ACCOUNT_ID)
LOCAL_ADMIN_USER = "local-admin"
LOCAL_ADMIN_KEY = ("local", "local")  # what LOCAL_CREDENTIALS, the CLI and the tests sign with
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
# DynamoDB operations that name several tables: authorized on each, as AWS does.
_BATCH_OPERATIONS = frozenset({"BatchGetItem", "BatchWriteItem"})
_TRANSACT_OPERATIONS = frozenset({"TransactGetItems", "TransactWriteItems"})
# A transaction is authorized as its parts: "Permissions for Put, Update, Delete, and Get actions
# are governed by the permissions used for the underlying PutItem, UpdateItem, DeleteItem, and
# GetItem operations" (DynamoDB developer guide, "Using IAM with DynamoDB transactions").
_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "Get": "GetItem",
    "ConditionCheck": "ConditionCheckItem",
}
# Lambda API operations whose IAM action has another name (Service Authorization Reference).
_LAMBDA_IAM_ACTIONS = {"Invoke": "InvokeFunction", "InvokeWithResponseStream": "InvokeFunction"}
# moto's authorization errors (XML) as the JSON protocols of DynamoDB and Lambda name them
_JSON_ERROR_CODES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def seed_admin() -> None:
    """The administrator: an IAM user with a ``*:*`` policy and the fixed key ``local``."""
    import json

    from moto.iam.models import iam_backends

    backend = iam_backends[LOCAL_ACCOUNT_ID]["aws"]
    backend.create_user(region_name="us-east-1", user_name=LOCAL_ADMIN_USER, tags=[])
    backend.put_user_policy(LOCAL_ADMIN_USER, "administrator", json.dumps(ADMIN_POLICY))
    key = backend.create_access_key(LOCAL_ADMIN_USER)
    backend.access_keys.pop(key.physical_resource_id, None)
    key.access_key_id, key.secret_access_key = LOCAL_ADMIN_KEY
    backend.access_keys[key.physical_resource_id] = key


def _dynamodb_resources(handler: Any) -> list[str]:  # noqa: PLR0911 - one answer per shape
    """The ARNs AWS authorizes a DynamoDB call on (``*`` for account-level calls)."""
    body = getattr(handler, "body", None) or {}
    operation = handler._get_action()
    prefix = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/"
    if operation in _BATCH_OPERATIONS:
        return [prefix + name for name in body.get("RequestItems", {})] or ["*"]
    if operation in _TRANSACT_OPERATIONS:  # authorized per part: _transaction_parts
        return []
    if "ResourceArn" in body:
        return [str(body["ResourceArn"])]
    table = body.get("TableName")
    if not table:
        return ["*"]
    if str(table).startswith("arn:"):
        return [str(table)]
    index = body.get("IndexName")
    if index and operation in ("Query", "Scan"):
        return [f"{prefix}{table}/index/{index}"]
    return [prefix + str(table)]


def _transaction_parts(handler: Any) -> list[tuple[str, str]]:
    """(IAM action, table ARN) of each part of a transaction; empty for other calls."""
    if handler._get_action() not in _TRANSACT_OPERATIONS:
        return []
    body = getattr(handler, "body", None) or {}
    prefix = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/"
    parts: set[tuple[str, str]] = set()
    for item in body.get("TransactItems", []):
        if not isinstance(item, dict) or not item:
            continue
        kind, part = next(iter(item.items()))
        action = _TRANSACT_ITEM_ACTIONS.get(str(kind), str(kind))
        parts.add((action, prefix + str(part.get("TableName", ""))))
    return sorted(parts)


def _request_class_for(action: str) -> type:
    """moto's IAM request, authorizing ``action`` (a DynamoDB one) instead of the call's own."""
    from moto.iam.access_control import IAMRequest

    class PartIAMRequest(IAMRequest):
        def __init__(self, **kwargs: Any) -> None:  # moto passes every argument by name
            kwargs["action"] = action
            super().__init__(**kwargs)

    return PartIAMRequest


def _sns_resource(handler: Any) -> str:
    """The topic an SNS call acts on (``*`` for account-level calls such as ListTopics)."""
    for parameter in ("TopicArn", "TargetArn", "ResourceArn"):
        value = handler._get_param(parameter)
        if value:
            return str(value)
    subscription = handler._get_param("SubscriptionArn")
    if subscription and subscription.count(":") >= 6:
        return str(subscription).rsplit(":", 1)[0]
    name = handler._get_param("Name")
    if name and handler._get_action() == "CreateTopic":
        return f"arn:aws:sns:{handler.region}:{handler.current_account}:{name}"
    return "*"


def function_arn(handler: Any) -> str | None:
    """The ARN a Lambda call on a function acts on (``None`` for other calls).

    ``FunctionName`` may be a name, a full ARN or a partial ARN (``A:function:F``), each with a
    ``:QUALIFIER``, or the qualifier may come as ``?Qualifier=``; the answer carries it."""
    from urllib.parse import unquote

    parts = handler.path.split("/functions/", 1)
    if len(parts) != 2 or not parts[1].strip("/"):
        return None
    name = unquote(parts[1].split("/", 1)[0])
    if name.startswith("arn:"):
        fields = name.split(":")
        base, qualifier = ":".join(fields[:7]), ":".join(fields[7:])
    elif ":function:" in name:
        account, _, rest = name.partition(":function:")
        function, _, qualifier = rest.partition(":")
        base = f"arn:aws:lambda:{handler.region}:{account}:function:{function}"
    else:
        function, _, qualifier = name.partition(":")
        base = f"arn:aws:lambda:{handler.region}:{handler.current_account}:function:{function}"
    qualifier = qualifier or handler.querystring.get("Qualifier", [""])[0]
    return f"{base}:{qualifier}" if qualifier else base


def _lambda_request_class() -> type:
    """moto's IAM request, with the IAM action of operations named otherwise in the API."""
    from moto.iam.access_control import IAMRequest

    class LambdaIAMRequest(IAMRequest):
        def __init__(self, **kwargs: Any) -> None:  # moto passes every argument by name
            action = kwargs["action"]
            kwargs["action"] = _LAMBDA_IAM_ACTIONS.get(action, action)
            super().__init__(**kwargs)

    return LambdaIAMRequest


def complete_authorization() -> None:
    """Authorizes DynamoDB, SNS and Lambda calls on their real ARNs instead of moto's ``*``."""
    from moto.awslambda.responses import LambdaResponse
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import _RESTError
    from moto.dynamodb.responses import DynamoHandler
    from moto.sns.responses import SNSResponse

    lambda_request = _lambda_request_class()

    original = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def dynamodb(self: Any, resource: str = "*") -> None:
        checks: list[tuple[Any, str]] = [
            (lambda arn: original(self, arn), arn) for arn in _dynamodb_resources(self)
        ]
        checks += [
            (
                lambda arn, action=action: self._authenticate_and_authorize_action(
                    _request_class_for(action), arn
                ),
                arn,
            )
            for action, arn in _transaction_parts(self)
        ]
        for check, arn in checks:
            try:
                check(arn)
            except _RESTError as error:
                # DynamoDB answers every authorization error with HTTP 400
                raise _json_error(error, arn, status=400) from None

    def sns(self: Any, resource: str = "*") -> None:
        topic_arn = _sns_resource(self)
        original(self, topic_arn)
        if _enforcing() and self._get_action() in ("Publish", "PublishBatch"):
            _check_topic_policy(self, topic_arn)

    def awslambda(self: Any, resource: str = "*") -> None:
        arn = function_arn(self) or resource
        try:
            self._authenticate_and_authorize_action(lambda_request, arn)
        except _RESTError as error:
            # Lambda keeps moto's HTTP status (AccessDeniedException: 403)
            raise _json_error(error, arn, status=error.code) from None

    DynamoHandler._authenticate_and_authorize_normal_action = dynamodb  # type: ignore[method-assign]
    SNSResponse._authenticate_and_authorize_normal_action = sns  # type: ignore[method-assign]
    LambdaResponse._authenticate_and_authorize_normal_action = awslambda  # type: ignore[method-assign]


def _json_error(error: Any, arn: str, *, status: int) -> Exception:
    """moto's authorization error (XML) as a JSON protocol's error: its code, the denied
    resource named as AWS names it, and the service's HTTP status."""
    from moto.core.exceptions import JsonRESTError

    code = _JSON_ERROR_CODES.get(error.error_type, error.error_type)
    message = error.message
    if code == "AccessDeniedException":
        message = f"{message} on resource: {arn}"
    denied = JsonRESTError(code, message)
    denied.code = status
    return denied


def _caller_arn(handler: Any) -> tuple[str, str]:
    """``aws:PrincipalArn`` of the caller (the role for an assumed role) and the caller's ARN."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    # moto's get_access_key() only recognizes 20-character AKIA-style ids, not ``local``
    authorization = handler.headers.get("Authorization", "")
    access_key_id = authorization.partition("Credential=")[2].partition("/")[0]
    account = handler.current_account
    for role in sts_backends[account]["aws"].assumed_roles:
        if role.access_key_id == access_key_id:
            return role.role_arn, role.arn
    for user in iam_backends[account]["aws"].users.values():
        if any(key.access_key_id == access_key_id for key in user.access_keys):
            return user.arn, user.arn
    return "", ""


def _check_topic_policy(handler: Any, topic_arn: str) -> None:
    """A topic policy's explicit deny applies to ``Publish`` (moto ignores topic policies).

    Loopback HTTP stands in for TLS: ``aws:SecureTransport`` is ``true``."""
    import json

    from moto.core.exceptions import AccessDeniedError
    from moto.sns.models import sns_backends

    from asyncinfer.local.aws.policies import resource_policy_decision

    topic = sns_backends[handler.current_account][handler.region].topics.get(topic_arn)
    if topic is None:
        return
    principal_arn, caller_arn = _caller_arn(handler)
    decision = resource_policy_decision(
        json.loads(topic.policy),
        "sns:Publish",
        topic_arn,
        {"arn": principal_arn, "account": handler.current_account},
        {"aws:PrincipalArn": principal_arn, "aws:SecureTransport": "true"},
    )
    if decision == "deny":
        raise AccessDeniedError(
            user_arn=f"{caller_arn} (denied by the topic policy of {topic_arn})",
            action="sns:Publish",
        )


def _enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def complete_missing_key_answers() -> None:
    """A missing key is 403 for a caller who may not list the bucket, as on S3."""
    from moto.s3.exceptions import MissingKey, S3AccessDeniedError, S3ClientError
    from moto.s3.responses import S3Response

    original = S3Response._key_response

    def may_list(self: Any, bucket: str) -> bool:
        action = self.data.get("Action")
        self.data["Action"] = "ListBucket"
        try:
            self._authenticate_and_authorize_s3_action(bucket_name=bucket)
        except S3ClientError:
            return False
        finally:
            self.data["Action"] = action
        return True

    def key_response(self: Any, request: Any, full_url: str) -> Any:
        method = request.method
        versioned = "versionId=" in full_url
        try:
            response = original(self, request, full_url)
        except MissingKey:
            if (
                method == "GET"
                and not versioned
                and _enforcing()
                and not may_list(self, self.bucket_name)
            ):
                raise S3AccessDeniedError() from None
            raise
        if (
            method == "HEAD"
            and not versioned
            and isinstance(response, tuple)
            and response[0] == 404
            and _enforcing()
            and not may_list(self, self.bucket_name)
        ):
            return 403, {}, ""
        return response

    S3Response._key_response = key_response  # type: ignore[method-assign]


def complete_refusals() -> None:
    """Refusals AWS answers with a 403 where moto, enforcing, fails with a 500.

    * A request with no ``Authorization`` header: S3 answers ``AccessDenied`` (403) to an
      anonymous request on a resource that is not public (S3 API reference, "Error responses");
      the other services ``MissingAuthenticationToken`` (403). moto reads the header
      unconditionally (``KeyError``). A presigned URL (credentials in the query) is refused
      too: local mode does not authenticate presigned requests under IAM.
    * ``sts:AssumeRole`` is allowed only by the role's trust policy: moto's trust check
      understands ``AWS`` principals only and fails on a ``Service`` one (``TypeError``); here
      the trust policy is evaluated by ``policies.resource_policy_decision``, so a role that
      trusts only a service refuses the administrator with ``AccessDenied`` (403), as STS does
      (IAM user guide, "Granting a user permissions to switch roles": both the caller's policy
      and the role's trust policy must allow it).
    """
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import _RESTError
    from moto.iam.access_control import IAMRequest
    from moto.s3.exceptions import S3AccessDeniedError
    from moto.s3.responses import S3Response

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if _enforcing() and "Authorization" not in self.headers:
            if isinstance(self, S3Response):
                raise S3AccessDeniedError()
            missing = _RESTError(
                "MissingAuthenticationToken", "Request is missing Authentication Token"
            )
            missing.code = 403
            raise missing
        original(self, iam_request_cls, resource)

    def trusted(self: Any, role_arn: str) -> bool:
        import json

        from asyncinfer.local.aws.policies import IamError, resource_policy_decision

        role = self.backend.get_role_by_arn(role_arn)
        try:
            decision = resource_policy_decision(
                json.loads(role.assume_role_policy_document),
                "sts:AssumeRole",
                role_arn,
                {"arn": self._access_key.arn, "account": self.account_id},
                {"aws:PrincipalArn": self._access_key.arn},
            )
        except IamError:  # a condition local mode cannot judge: not trusted
            return False
        return decision == "allow"

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate  # type: ignore[method-assign]
    IAMRequest._check_role_trust_relationship = trusted  # type: ignore[method-assign]
