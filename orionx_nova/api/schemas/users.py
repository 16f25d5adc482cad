"""Request bodies of ``/v1/users``."""

from orionx_nova.objects import users

NAME = {"type": "string", "minLength": 1, "maxLength": users.NAME_MAX_CHARS}
ROLE = {"enum": list(users.ROLES)}

CREATE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "user create",
    "type": "object",
    "properties": {
        "name": NAME,
        "password": {"type": "string", "minLength": users.MIN_PASSWORD_CHARS,
                     "maxLength": 1024},
        "role": ROLE,
        "project_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
    },
    "required": ["name", "password", "role"],
    "additionalProperties": False,
}

UPDATE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "user update",
    "type": "object",
    "properties": {
        "role": ROLE,
        # Only false: an admin ends a lockout; wrong passwords start one.
        "locked": {"const": False, "x-hint": (
            "an admin can only end a lockout; wrong passwords start one")},
    },
    "minProperties": 1,
    "x-hint": "give role, or locked: false to end a lockout",
    "additionalProperties": False,
}
