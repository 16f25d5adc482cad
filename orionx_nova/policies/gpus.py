"""Policy rules of ``/v1/gpus``."""

from oslo_policy import policy

from orionx_nova.policies import base

PREFIX = "orionx:gpus:%s"
LIST = PREFIX % "list"
SHOW = PREFIX % "show"
SET_MODE = PREFIX % "set_mode"

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.VIEWER,
        description="List physical GPUs with their pool and use.",
        operations=[{"path": "/v1/gpus", "method": "GET"}],
    ),
    policy.DocumentedRuleDefault(
        name=SHOW,
        check_str=base.VIEWER,
        description="Show one physical GPU.",
        operations=[{"path": "/v1/gpus/{uuid}", "method": "GET"}],
    ),
    policy.DocumentedRuleDefault(
        name=SET_MODE,
        check_str=base.ADMIN,
        description="Move a physical GPU between the orionx (sliced) and the "
        "native (whole GPU) pool, or drain it first.",
        operations=[{"path": "/v1/gpus/{uuid}", "method": "PATCH"}],
    ),
]


def list_rules():
    return rules
