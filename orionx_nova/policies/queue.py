"""Policy rules of ``/v1/queue``."""

from oslo_policy import policy

from orionx_nova.policies import base

LIST = "orionx:queue:list"

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.VIEWER,
        description="List queued allocations in the order they will be served "
        "(non-admins see only their own project's entries).",
        operations=[{"path": "/v1/queue", "method": "GET"}],
    ),
]


def list_rules():
    return rules
