"""Policy rules of the console's user administration (``/ui/users``):
accounts of ``[api] auth_strategy = local``."""

from oslo_policy import policy

from orionx_nova.policies import base

PREFIX = "orionx:users:%s"
LIST = PREFIX % "list"
CREATE = PREFIX % "create"
UPDATE = PREFIX % "update"
DELETE = PREFIX % "delete"

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.ADMIN,
        description="List the pool's local user accounts and their roles.",
        operations=[{"path": "/ui/users", "method": "GET"}],
    ),
    policy.DocumentedRuleDefault(
        name=CREATE,
        check_str=base.ADMIN,
        description="Create a local user account with a role and project.",
        operations=[{"path": "/ui/users", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=UPDATE,
        check_str=base.ADMIN,
        description="Change a local user's role.",
        operations=[{"path": "/ui/users/{name}/role", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=DELETE,
        check_str=base.ADMIN,
        description="Delete a local user account and its tokens.",
        operations=[{"path": "/ui/users/{name}/delete", "method": "POST"}],
    ),
]


def list_rules():
    return rules
