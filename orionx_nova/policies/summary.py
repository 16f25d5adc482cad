"""Policy rules of ``/v1/summary``."""

from oslo_policy import policy

from orionx_nova.policies import base

SHOW = "orionx:summary:show"

rules = [
    policy.DocumentedRuleDefault(
        name=SHOW,
        check_str=base.VIEWER,
        description="Show pool totals and use: GPUs, compute and memory.",
        operations=[{"path": "/v1/summary", "method": "GET"}],
    ),
]


def list_rules():
    return rules
