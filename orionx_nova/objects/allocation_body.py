"""The request bodies of an allocation (create and resize): their JSON
Schemas and the one check every caller goes through.

The domain owns the schemas, not the REST API: the console, the RPC
paths and tests create and resize allocations through
:mod:`orionx_nova.objects.allocations` too, and each of them gets the same
check and the same message (:mod:`.request_schema`: the field, the limit,
what to do). ``orionx_nova.api.schemas.allocations`` names them for the
API's documentation.
"""

from orionx_nova import exception
from orionx_nova.objects import request_schema
from orionx_nova.scheduler import fit

MAX_VGPUS_PER_REQUEST = 64
MAX_MEMORY_MB = 2**31 - 1  # the column is a 32-bit integer
NAME_LEN = 255

COMPUTE_PCT = {
    "type": "integer", "minimum": 1, "maximum": fit.COMPUTE_PCT_PER_GPU,
    "x-hint": "a vGPU has 1 to 100 percent of one GPU's compute; ask for less, or "
              "use several vGPUs",
}
MEMORY_MB = {
    "type": "integer", "minimum": 1, "maximum": MAX_MEMORY_MB,
    "x-hint": "a vGPU's memory quota in MB, at least 1",
}
_NAME = {"type": "string", "minLength": 1, "maxLength": NAME_LEN}
_FLAG = {"type": "boolean"}

VGPU = {
    "type": "object",
    "properties": {"compute_pct": COMPUTE_PCT, "memory_mb": MEMORY_MB},
    "required": ["compute_pct", "memory_mb"],
    "additionalProperties": False,
    "x-hint": 'each vGPU is {"compute_pct": PCT, "memory_mb": MB}',
}

# Whole native GPUs (native: true, count) or vGPUs (vgpus), never both.
_NATIVE_OR_VGPUS = {
    "if": {"properties": {"native": {"const": True}}, "required": ["native"]},
    "then": {
        "required": ["count"],
        "x-hint": "native: true asks for whole GPUs; give their number in count",
        "properties": {"vgpus": {"not": {}, "x-hint": (
            "native: true takes whole GPUs; give count instead of vgpus")}},
    },
    "else": {
        "required": ["vgpus"],
        "x-hint": 'give vgpus, e.g. [{"compute_pct": 25, "memory_mb": 4096}], or '
                  "native: true with a count of whole GPUs",
        "properties": {"count": {"not": {}, "x-hint": (
            "count is for native: true only; for vGPUs list each one in vgpus")}},
    },
}

# Acquire mode binds when an application starts; reserve mode (the default)
# holds its GPUs from creation, so only it may be pinned, and only acquire
# mode unbinds when a session ends.
_BY_MODE = {
    "if": {"properties": {"mode": {"const": "acquire"}}, "required": ["mode"]},
    "then": {"properties": {"gpus": {"not": {}, "x-hint": (
        "gpus pins a reserve-mode allocation; drop it for acquire mode, which binds "
        "when the application starts")}}},
    "else": {"properties": {"unbind_on_session_end": {"const": False, "x-hint": (
        "unbind_on_session_end applies to acquire mode only; a reserve-mode allocation "
        "stays bound until it is deleted")}}},
}

CREATE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "allocation create",
    "type": "object",
    "properties": {
        "vgpus": {"type": "array", "items": VGPU, "minItems": 1,
                  "maxItems": MAX_VGPUS_PER_REQUEST,
                  "x-hint": "split the request, or ask for fewer, larger vGPUs"},
        "native": dict(_FLAG, default=False),
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_VGPUS_PER_REQUEST,
                  "x-hint": "the number of whole GPUs of one request"},
        "mode": {"enum": ["reserve", "acquire"], "default": "reserve"},
        "priority": {"type": "integer", "minimum": 0, "maximum": 100, "default": 50,
                     "x-hint": "higher is served first and may preempt lower"},
        "preemptible": dict(_FLAG, default=False),
        "can_preempt": dict(_FLAG, default=False),
        "requeue": dict(_FLAG, default=False),
        "host": _NAME,
        "allow_remote": dict(_FLAG, default=True),
        # Default: true in acquire mode, false in reserve mode (see _BY_MODE).
        "unbind_on_session_end": _FLAG,
        "queue": dict(_FLAG, default=True),
        "consumer": _NAME,
        "gpus": {"type": "array", "items": _NAME, "minItems": 1,
                 "maxItems": MAX_VGPUS_PER_REQUEST, "uniqueItems": True,
                 "x-hint": "the vGPUs of one request land on distinct GPUs (for Nova "
                           "flavors: group_policy=isolate)"},
    },
    "allOf": [_NATIVE_OR_VGPUS, _BY_MODE],
    "additionalProperties": False,
}

RESIZE_VGPU = {
    "type": "object",
    "properties": {
        "index": {"type": "integer", "minimum": 0, "maximum": MAX_VGPUS_PER_REQUEST - 1},
        "compute_pct": COMPUTE_PCT,
        "memory_mb": MEMORY_MB,
    },
    "required": ["index"],
    "additionalProperties": False,
    "x-hint": 'each entry is {"index": N, "compute_pct"?: PCT, "memory_mb"?: MB}',
}

RESIZE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "allocation resize",
    "type": "object",
    "properties": {
        "compute_pct": COMPUTE_PCT,
        "memory_mb": MEMORY_MB,
        "vgpus": {"type": "array", "items": RESIZE_VGPU, "minItems": 1,
                  "maxItems": MAX_VGPUS_PER_REQUEST},
    },
    "minProperties": 1,
    "additionalProperties": False,
    "x-hint": "give compute_pct, memory_mb or vgpus to resize",
}


def validate(body):
    """The create ``body`` as a spec with defaults filled in (``sizes``:
    [(compute_pct, memory_mb)] per vGPU), or InvalidRequest."""
    request_schema.check(CREATE, body)
    spec = {name: body.get(name, field.get("default"))
            for name, field in CREATE["properties"].items()}
    spec["unbind_on_session_end"] = body.get("unbind_on_session_end",
                                             spec["mode"] == "acquire")
    if spec["native"]:
        spec["sizes"] = [(fit.COMPUTE_PCT_PER_GPU, 0)] * spec["count"]
    else:
        spec["sizes"] = [(v["compute_pct"], v["memory_mb"]) for v in spec["vgpus"]]
    if spec["gpus"] is not None and len(spec["gpus"]) != len(spec["sizes"]):
        # The one rule JSON Schema cannot say: two arrays of equal length.
        raise exception.InvalidRequest(
            "gpus: %d GPU uuids for %d vGPUs; list one GPU uuid per vGPU, in vGPU order"
            % (len(spec["gpus"]), len(spec["sizes"])))
    return spec


def validate_resize(body):
    """The resize ``body`` ({compute_pct?, memory_mb?, vgpus?}), or
    InvalidRequest."""
    return request_schema.check(RESIZE, body)
