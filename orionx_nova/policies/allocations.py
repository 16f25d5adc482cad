"""Policy rules of ``/v1/allocations``.

Every rule here is checked against the caller's own project; only callers
that pass ``all_projects`` see and touch other projects' allocations.
"""

from oslo_policy import policy

from orionx_nova.policies import base

PREFIX = "orionx:allocations:%s"
LIST = PREFIX % "list"
SHOW = PREFIX % "show"
CREATE = PREFIX % "create"
DELETE = PREFIX % "delete"
RESIZE = PREFIX % "resize"
BIND = PREFIX % "bind"
UNBIND = PREFIX % "unbind"
PREEMPT = PREFIX % "preempt"
SESSION = PREFIX % "session"
ALL_PROJECTS = PREFIX % "all_projects"

_ONE = "/v1/allocations/{uuid}"

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.VIEWER,
        description="List allocations (the caller's project's, unless "
        "all_projects passes).",
        operations=[{"path": "/v1/allocations", "method": "GET"}],
    ),
    policy.DocumentedRuleDefault(
        name=SHOW,
        check_str=base.VIEWER,
        description="Show one allocation and its vGPUs.",
        operations=[{"path": _ONE, "method": "GET"}],
    ),
    policy.DocumentedRuleDefault(
        name=CREATE,
        check_str=base.OPERATOR,
        description="Request vGPUs or whole native GPUs for the caller's project.",
        operations=[{"path": "/v1/allocations", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=DELETE,
        check_str=base.OPERATOR,
        description="Release an allocation and its capacity.",
        operations=[{"path": _ONE, "method": "DELETE"}],
    ),
    policy.DocumentedRuleDefault(
        name=RESIZE,
        check_str=base.OPERATOR,
        description="Change the compute share and memory quota of an "
        "allocation's vGPUs in place.",
        operations=[{"path": _ONE, "method": "PATCH"}],
    ),
    policy.DocumentedRuleDefault(
        name=BIND,
        check_str=base.OPERATOR,
        description="Bind an acquire-mode allocation to physical GPUs while "
        "an application runs.",
        operations=[{"path": _ONE + "/bind", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=UNBIND,
        check_str=base.OPERATOR,
        description="Release the physical GPUs of an acquire-mode allocation, "
        "keeping the allocation.",
        operations=[{"path": _ONE + "/unbind", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=PREEMPT,
        check_str=base.OPERATOR,
        description="Evict a running allocation now (it becomes preempted, or "
        "queued again when it asked for requeue).",
        operations=[{"path": _ONE + "/preempt", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=SESSION,
        check_str=base.OPERATOR,
        description="Get the session tokens and endpoints with which a guest "
        "reaches the vGPUs of a bound allocation.",
        operations=[{"path": _ONE + "/session", "method": "POST"}],
    ),
    policy.RuleDefault(
        name=ALL_PROJECTS,
        check_str=base.ADMIN,
        description="See and act on allocations of every project, not only "
        "the caller's own.",
    ),
]


def list_rules():
    return rules
