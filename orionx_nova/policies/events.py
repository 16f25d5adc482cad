"""Policy rules of ``/v1/events``."""

from oslo_policy import policy

from orionx_nova.policies import base

LIST = "orionx:events:list"

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.VIEWER,
        description="List pool events: state changes, preemptions, nodes going down.",
        operations=[{"path": "/v1/events", "method": "GET"}],
    ),
]


def list_rules():
    return rules
