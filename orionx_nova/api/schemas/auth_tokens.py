"""Request bodies of ``/v1/auth/tokens``."""

CREATE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "token create",
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
    "required": ["name", "password"],
    "additionalProperties": False,
}
