"""Checks of an allocation request against the pool's domain limits.

The REST API validates shapes with JSON Schema; these checks hold for every
caller (API, RPC, tests) and name the field and the limit when they fail.
"""

from orionx_nova import exception
from orionx_nova.db import models
from orionx_nova.scheduler import fit

MAX_VGPUS_PER_REQUEST = 64
MAX_MEMORY_MB = 2**31 - 1  # the column is a 32-bit integer
MIN_PRIORITY, MAX_PRIORITY = 0, 100
NAME_LEN = 255

_FLAGS = {
    "preemptible": False,
    "can_preempt": False,
    "requeue": False,
    "allow_remote": True,
    "queue": True,
}
_KNOWN = {"vgpus", "native", "count", "mode", "priority", "host", "consumer", "gpus",
          "unbind_on_session_end", *_FLAGS}


def _int(value, name, low, high):
    # bool is an int in Python; a JSON true must not become 1 %.
    if isinstance(value, bool) or not isinstance(value, int):
        raise exception.InvalidRequest("%s must be an integer, not %r" % (name, value))
    if not low <= value <= high:
        raise exception.InvalidRequest("%s is %d; the limit is %d to %d" % (name, value, low, high))
    return value


def _bool(value, name):
    if not isinstance(value, bool):
        raise exception.InvalidRequest("%s must be true or false, not %r" % (name, value))
    return value


def _name(value, name):
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= NAME_LEN:
        raise exception.InvalidRequest(
            "%s must be a string of 1 to %d characters" % (name, NAME_LEN)
        )
    return value


def compute_pct(value, label):
    """A vGPU's compute share: 1 to 100 percent of one GPU, in 1 % steps."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 100:
        raise exception.InvalidRequest(
            "%s asks for %d compute_pct; the limit is %d per vGPU (one whole "
            "GPU); ask for less or use several vGPUs" % (label, value, fit.COMPUTE_PCT_PER_GPU)
        )
    return _int(value, "%s compute_pct" % label, 1, fit.COMPUTE_PCT_PER_GPU)


def memory_mb(value, label):
    """A vGPU's memory quota in MB, at least 1."""
    return _int(value, "%s memory_mb" % label, 1, MAX_MEMORY_MB)


def _vgpu_sizes(body):
    vgpus = body.get("vgpus")
    if not isinstance(vgpus, list) or not vgpus:
        raise exception.InvalidRequest(
            "vgpus must be a non-empty list of {compute_pct, memory_mb}, or set "
            "native: true with a count of whole GPUs"
        )
    if len(vgpus) > MAX_VGPUS_PER_REQUEST:
        raise exception.InvalidRequest(
            "vgpus lists %d vGPUs; the limit is %d per request"
            % (len(vgpus), MAX_VGPUS_PER_REQUEST)
        )
    sizes = []
    for index, vgpu in enumerate(vgpus):
        label = "vGPU %d" % index
        if not isinstance(vgpu, dict) or set(vgpu) - {"compute_pct", "memory_mb"}:
            raise exception.InvalidRequest(
                "%s must be an object with only compute_pct and memory_mb" % label
            )
        for key in ("compute_pct", "memory_mb"):
            if key not in vgpu:
                raise exception.InvalidRequest("%s needs %s" % (label, key))
        sizes.append((compute_pct(vgpu["compute_pct"], label), memory_mb(vgpu["memory_mb"], label)))
    return sizes


def _gpu_pins(value, count):
    """``gpus``: the GPU (uuid) each vGPU must land on, in vGPU order --
    the choice Placement made for a Nova instance -- or None."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != count:
        raise exception.InvalidRequest(
            "gpus must list one GPU uuid per vGPU (%d), in vGPU order" % count)
    for gpu in value:
        _name(gpu, "gpus entry")
    if len(set(value)) != len(value):
        raise exception.InvalidRequest(
            "gpus names a GPU twice; the vGPUs of one request land on distinct "
            "GPUs (for Nova flavors: group_policy=isolate)")
    return value


def _unbind_on_session_end(body, mode):
    """Acquire mode unbinds when its session ends, unless the caller owns
    the binding (a libvirt domain bound while it runs); reserve mode never
    does, so asking for it there is a mistake."""
    if mode != "acquire":
        if body.get("unbind_on_session_end"):
            raise exception.InvalidRequest(
                "unbind_on_session_end applies to acquire mode only; a reserve-mode allocation "
                "stays bound until it is deleted")
        return False
    return _bool(body.get("unbind_on_session_end", True), "unbind_on_session_end")


def validate(body):
    """The request ``body`` with defaults filled in, or InvalidRequest."""
    if not isinstance(body, dict):
        raise exception.InvalidRequest("the request body must be a JSON object")
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise exception.InvalidRequest(
            "unknown field(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(sorted(_KNOWN)))
        )
    spec = {key: _bool(body.get(key, default), key) for key, default in _FLAGS.items()}
    spec["native"] = _bool(body.get("native", False), "native")
    if spec["native"]:
        if "vgpus" in body:
            raise exception.InvalidRequest("give either vgpus or native with count, not both")
        count = _int(body.get("count"), "count", 1, MAX_VGPUS_PER_REQUEST)
        spec["sizes"] = [(fit.COMPUTE_PCT_PER_GPU, 0)] * count
    else:
        if "count" in body:
            raise exception.InvalidRequest("count applies only with native: true")
        spec["sizes"] = _vgpu_sizes(body)
    spec["mode"] = body.get("mode", "reserve")
    if spec["mode"] not in models.ALLOCATION_MODES:
        raise exception.InvalidRequest(
            "mode %r is not one of %s" % (spec["mode"], ", ".join(models.ALLOCATION_MODES))
        )
    spec["unbind_on_session_end"] = _unbind_on_session_end(body, spec["mode"])
    spec["priority"] = _int(body.get("priority", 50), "priority", MIN_PRIORITY, MAX_PRIORITY)
    spec["host"] = _name(body.get("host"), "host")
    spec["consumer"] = _name(body.get("consumer"), "consumer")
    spec["gpus"] = _gpu_pins(body.get("gpus"), len(spec["sizes"]))
    if spec["gpus"] is not None and spec["mode"] != "reserve":
        raise exception.InvalidRequest("gpus pins a reserve-mode allocation; drop it for "
                                       "acquire mode, which binds when the application starts")
    return spec
