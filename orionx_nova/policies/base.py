"""Rules every other policy module builds on: who counts as a viewer, an
operator and an admin of the pool.

Roles nest, so a rule written for viewers also admits operators and admins.
Deployments whose Keystone uses other role names override these three rules
in policy.yaml instead of every rule that uses them.
"""

from oslo_policy import policy

ADMIN = "rule:orionx:admin"
OPERATOR = "rule:orionx:operator"
VIEWER = "rule:orionx:viewer"

rules = [
    policy.RuleDefault(
        "orionx:admin",
        "role:admin",
        description="Pool administrators: everything, across every project.",
    ),
    policy.RuleDefault(
        "orionx:operator",
        "role:operator or " + ADMIN,
        description="Operators: create, resize, bind and preempt allocations "
        "of their own project.",
    ),
    policy.RuleDefault(
        "orionx:viewer",
        "role:viewer or " + OPERATOR,
        description="Viewers: read the pool and their own project's allocations.",
    ),
]


def list_rules():
    return rules
