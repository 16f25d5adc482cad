"""Request bodies of ``/v1/allocations``."""

COMPUTE_PCT = {"type": "integer", "minimum": 1, "maximum": 100}
MEMORY_MB = {"type": "integer", "minimum": 1}
# One request never spans more vGPUs than a large node has GPUs; the bound
# keeps a typo (100000) from turning into a long scheduling pass.
MAX_VGPUS = 64

VGPU = {
    "type": "object",
    "properties": {"compute_pct": COMPUTE_PCT, "memory_mb": MEMORY_MB},
    "required": ["compute_pct", "memory_mb"],
    "additionalProperties": False,
}

NAME = {"type": "string", "minLength": 1, "maxLength": 255}

CREATE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "allocation create",
    "type": "object",
    "properties": {
        "vgpus": {"type": "array", "items": VGPU, "minItems": 1, "maxItems": MAX_VGPUS},
        "native": {"type": "boolean"},
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_VGPUS},
        "mode": {"enum": ["reserve", "acquire"]},
        "priority": {"type": "integer", "minimum": 0, "maximum": 100},
        "preemptible": {"type": "boolean"},
        "can_preempt": {"type": "boolean"},
        "requeue": {"type": "boolean"},
        "host": NAME,
        "allow_remote": {"type": "boolean"},
        "queue": {"type": "boolean"},
        "consumer": NAME,
    },
    "additionalProperties": False,
}

RESIZE_VGPU = {
    "type": "object",
    "properties": {
        "index": {"type": "integer", "minimum": 0, "maximum": MAX_VGPUS - 1},
        "compute_pct": COMPUTE_PCT,
        "memory_mb": MEMORY_MB,
    },
    "required": ["index"],
    "additionalProperties": False,
}

RESIZE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "allocation resize",
    "type": "object",
    "properties": {
        "compute_pct": COMPUTE_PCT,
        "memory_mb": MEMORY_MB,
        "vgpus": {"type": "array", "items": RESIZE_VGPU, "minItems": 1,
                  "maxItems": MAX_VGPUS},
    },
    "additionalProperties": False,
}
