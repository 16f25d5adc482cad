"""Policy rules of user administration (``/v1/users`` and the console's
``/ui/users``): accounts of ``[api] auth_strategy = local``."""

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
        operations=[{"path": "/v1/users", "method": "GET"},
                    {"path": "/v1/users/{name}", "method": "GET"},
                    {"path": "/ui/users", "method": "GET"}],
    ),
    policy.DocumentedRuleDefault(
        name=CREATE,
        check_str=base.ADMIN,
        description="Create a local user account with a role and project.",
        operations=[{"path": "/v1/users", "method": "POST"},
                    {"path": "/ui/users", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=UPDATE,
        check_str=base.ADMIN,
        description="Change a local user's role, or end its lockout.",
        operations=[{"path": "/v1/users/{name}", "method": "PATCH"},
                    {"path": "/ui/users/{name}/role", "method": "POST"},
                    {"path": "/ui/users/{name}/unlock", "method": "POST"}],
    ),
    policy.DocumentedRuleDefault(
        name=DELETE,
        check_str=base.ADMIN,
        description="Delete a local user account and its tokens.",
        operations=[{"path": "/v1/users/{name}", "method": "DELETE"},
                    {"path": "/ui/users/{name}/delete", "method": "POST"}],
    ),
]


def list_rules():
    return rules
