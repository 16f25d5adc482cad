"""Request body of ``POST /v1/allocations/{uuid}/session``."""

from orionx_nova.objects import data_plane_sessions

CREATE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "data-plane session create",
    "type": "object",
    "properties": {
        "host": {"type": "string", "minLength": 1, "maxLength": 255},
        "ttl_s": {"type": "integer", "minimum": 1, "maximum": data_plane_sessions.MAX_TTL_S},
    },
    "additionalProperties": False,
}
