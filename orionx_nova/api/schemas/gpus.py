"""Request bodies of ``/v1/gpus``."""

SET_MODE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "gpu set-mode",
    "type": "object",
    "properties": {
        "mode": {"enum": ["native", "orionx"]},
        "drain": {"type": "boolean"},
    },
    "required": ["mode"],
    "additionalProperties": False,
}
