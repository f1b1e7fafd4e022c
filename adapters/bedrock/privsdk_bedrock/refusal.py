"""The exception a guarded Bedrock client raises for a refused request.

It is both :class:`privsdk.PolicyViolation` and botocore's
:class:`~botocore.exceptions.ClientError` (error code ``PolicyViolation``), so
an app's existing ``except ClientError`` handlers catch it, and
``e.response["Error"]["Code"]`` names it. ``e.response["ResponseMetadata"]``
has the keys boto3's error handling reads: ``HTTPStatusCode`` is 403, as for a
request AWS itself denies (and as google-genai's refusal says); ``RequestId``
is empty, since nothing was sent. Its message is the decision's reason: names of
requirements and offerings, never the request's content. Importing this
module imports botocore, not boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from privsdk.errors import PolicyViolation as _PolicyViolation

if TYPE_CHECKING:
    from privsdk.decision import Decision

CODE = "PolicyViolation"
#: The HTTP status a refusal reports: AWS's (and Google's) for a request it denies.
STATUS = 403


class PolicyViolation(_PolicyViolation, ClientError):  # type: ignore[misc]
    """A request privsdk refused before a byte was sent; catchable as ``botocore.exceptions.ClientError``."""

    def __init__(self, decision: Decision, operation_name: str = "Bedrock"):
        # Neither base's __init__: privsdk's would reach ClientError's through the MRO with the wrong arguments.
        self.decision = decision
        self.reason = decision.reason or f"{decision.target} refused for tenant {decision.tenant}"
        Exception.__init__(self, self.reason)
        self.operation_name = operation_name
        self.response: dict[str, Any] = {  # ClientError's shape, as botocore builds it from an error answer
            "Error": {"Code": CODE, "Message": self.reason},
            "ResponseMetadata": {"RequestId": "", "HTTPStatusCode": STATUS, "HTTPHeaders": {}, "RetryAttempts": 0},
        }

    def __str__(self) -> str:
        # botocore's ClientError wording, with the operation the guard saw (set after construction).
        return f"An error occurred ({CODE}) when calling the {self.operation_name} operation: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.decision, self.operation_name))


def refuse(violation: _PolicyViolation) -> PolicyViolation:
    """The botocore-flavoured refusal for the guard's plain one."""
    return PolicyViolation(violation.decision)
