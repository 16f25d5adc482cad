"""Policy rules of ``/v1/nodes``."""

from oslo_policy import policy

from orionx_nova.policies import base

PREFIX = "orionx:nodes:%s"
LIST = PREFIX % "list"
SHOW = PREFIX % "show"

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.VIEWER,
        description="List the hosts of the pool and their state.",
        operations=[{"path": "/v1/nodes", "method": "GET"}],
    ),
    policy.DocumentedRuleDefault(
        name=SHOW,
        check_str=base.VIEWER,
        description="Show one host of the pool.",
        operations=[{"path": "/v1/nodes/{uuid}", "method": "GET"}],
    ),
]


def list_rules():
    return rules
