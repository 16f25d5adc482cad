"""Rules every other policy module builds on: who counts as a viewer, an
operator and an admin of the pool.

Roles nest, so a rule written for viewers also admits operators and admins.
Keystone's default roles count too (member as operator, reader as viewer),
so a cloud works without creating new roles. Deployments with other role
names override these three rules in policy.yaml, not every rule using them.
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
        "role:operator or role:member or " + ADMIN,
        description="Operators (Keystone: member): create, resize, bind and "
        "preempt allocations of their own project.",
    ),
    policy.RuleDefault(
        "orionx:viewer",
        "role:viewer or role:reader or " + OPERATOR,
        description="Viewers (Keystone: reader): read the pool and their own "
        "project's allocations.",
    ),
]


def list_rules():
    return rules
