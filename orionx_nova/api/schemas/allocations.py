"""Request bodies of ``/v1/allocations``."""

from orionx_nova import exception
from orionx_nova.objects import allocation_body

# The domain's own limits, so the API and the objects layer never disagree.
COMPUTE_PCT = {"type": "integer", "minimum": 1, "maximum": 100}
MEMORY_MB = {"type": "integer", "minimum": 1, "maximum": allocation_body.MAX_MEMORY_MB}
MAX_VGPUS = allocation_body.MAX_VGPUS_PER_REQUEST

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
        "unbind_on_session_end": {"type": "boolean"},
        "queue": {"type": "boolean"},
        "consumer": NAME,
        "gpus": {"type": "array", "items": NAME, "minItems": 1, "maxItems": MAX_VGPUS},
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


def check_create_shape(body):
    """vGPUs or native GPUs, never both. JSON Schema can say this only with
    messages that name no field, so this rule is checked in code."""
    if body.get("native"):
        if "vgpus" in body:
            raise exception.InvalidRequest(
                "vgpus: not allowed with native true; native requests take "
                "whole GPUs, give count instead")
        if "count" not in body:
            raise exception.InvalidRequest(
                "count: required with native true (the number of whole GPUs)")
    else:
        if "count" in body:
            raise exception.InvalidRequest(
                "count: only for native true; for vGPUs list each one in vgpus")
        if "vgpus" not in body:
            raise exception.InvalidRequest(
                "vgpus: required, e.g. [{\"compute_pct\": 25, \"memory_mb\": 4096}]"
                " (or native true with count)")
