"""moto's server as a WSGI app (S3, STS, IAM, CloudWatch Logs, C19), and the two IAM answers
SDK 3.x needs that moto lacks (C11): SimulatePrincipalPolicy (not implemented by moto) and a
GetRole that finds any role, so users set nothing special (no SAGEMAKER_VALIDATE_ROLE).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

IAM_NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
# What a SageMaker execution role trusts; SDK 3.x checks it on construction (C11).
SAGEMAKER_TRUST_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


def moto_app() -> Any:
    """moto's dispatcher: picks the service of each request from its signature, as
    `moto_server` does."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def request_handler_class() -> type:
    """moto's request handler keeps header names with underscores (S3 metadata)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    handler: type = MotoRequestHandler
    return handler


def iam_action(body: bytes) -> tuple[str, dict[str, str]]:
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params.get("Action", ""), params


def simulate_principal_policy(params: dict[str, str]) -> bytes:
    """Every action is allowed for every resource: offline, the role is a formality."""
    actions = [value for key, value in sorted(params.items())
               if key.startswith("ActionNames.member.")]
    resources = [value for key, value in sorted(params.items())
                 if key.startswith("ResourceArns.member.")] or ["*"]
    members = "".join(
        f"<member><EvalActionName>{escape(action)}</EvalActionName>"
        f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
        "<EvalDecision>allowed</EvalDecision><MatchedStatements/><MissingContextValues/>"
        "</member>"
        for action in actions for resource in resources
    )
    return (
        f'<SimulatePrincipalPolicyResponse xmlns="{IAM_NAMESPACE}">'
        f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
        f"<EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    ).encode()


def ensure_role(iam_client: Callable[[], Any], role_name: str) -> None:
    """Create `role_name` in moto (trusting SageMaker) if it does not exist, so the GetRole
    that follows finds it: on SageMaker the user's role exists, here any role does."""
    client = iam_client()
    try:
        client.get_role(RoleName=role_name)
    except client.exceptions.NoSuchEntityException:
        # Another request may have created it meanwhile.
        with contextlib.suppress(client.exceptions.EntityAlreadyExistsException):
            client.create_role(RoleName=role_name,
                               AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
