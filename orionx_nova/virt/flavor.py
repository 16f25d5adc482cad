"""What a flavor asks of the pool, read from its extra specs, and the rules
a vGPU flavor must follow. Used by the Nova driver at spawn (pure Python,
no Nova import) and by the extra-spec validator.

A vGPU is one numbered request group holding both its compute and its
memory, so Placement takes them from one GPU::

    resources1:CUSTOM_VGPU_COMPUTE=25
    resources1:CUSTOM_VGPU_MEMORY_MB=4096

several vGPUs are several groups with ``group_policy=isolate``; a whole
native GPU is ``resourcesN:CUSTOM_NATIVE_GPU=1``; the ``REMOTE`` classes ask
for the same through the pool's sharing provider.
"""

import dataclasses
import re

from orionx_nova.placement import names
from orionx_nova.virt import guest_xml

_RESOURCE_KEY = re.compile(r"^resources(?P<group>[a-zA-Z0-9_-]{0,64}):(?P<rc>[A-Z0-9_]+)$")
_OURS = set(names.ALL_CLASSES)
_COMPUTE = {names.VGPU_COMPUTE: False, names.REMOTE_VGPU_COMPUTE: True}
_MEMORY = {names.VGPU_MEMORY_MB: False, names.REMOTE_VGPU_MEMORY_MB: True}
_NATIVE = {names.NATIVE_GPU: False, names.REMOTE_NATIVE_GPU: True}

TRANSPORTS = ("auto", "vsock", "serial")
PRIORITY_RANGE = (0, 100)


class FlavorError(ValueError):
    """A flavor whose OrionX extra specs cannot work; the message names the
    key, the rule and the fix."""


@dataclasses.dataclass
class VGpuRequest:
    group: str
    compute_pct: int
    memory_mb: int
    native: bool = False
    remote: bool = False


@dataclasses.dataclass
class FlavorRequest:
    vgpus: list
    priority: int = 50
    preemptible: bool = False
    transport: str = "auto"
    shmem_size_mb: int = guest_xml.DEFAULT_SHMEM_SIZE_MB


def _int(key, value, low, high=None):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FlavorError("%s=%r is not an integer" % (key, value)) from None
    if number < low or (high is not None and number > high):
        limit = "%d to %d" % (low, high) if high is not None else "at least %d" % low
        raise FlavorError("%s=%d is out of range; the limit is %s" % (key, number, limit))
    return number


def _our_groups(extra_specs):
    """{group: {resource class: amount}} of our classes."""
    groups = {}
    for key, value in extra_specs.items():
        match = _RESOURCE_KEY.match(key)
        if not match or match.group("rc") not in _OURS:
            continue
        group, resource_class = match.group("group"), match.group("rc")
        if not group:
            raise FlavorError(
                "%s has no request group number; put each vGPU in a numbered group "
                "(resources1:%s) so Placement takes its compute and memory from one GPU"
                % (key, resource_class))
        groups.setdefault(group, {})[resource_class] = _int(key, value, 1)
    return groups


def _vgpu_of(group, amounts):
    native = [rc for rc in amounts if rc in _NATIVE]
    if native:
        if len(amounts) != 1 or amounts[native[0]] != 1:
            raise FlavorError(
                "resources%s: a native GPU group holds only %s=1; give each whole GPU "
                "its own group" % (group, native[0]))
        return VGpuRequest(group, 100, 0, native=True, remote=_NATIVE[native[0]])
    compute = [rc for rc in amounts if rc in _COMPUTE]
    memory = [rc for rc in amounts if rc in _MEMORY]
    if len(compute) != 1 or len(memory) != 1 or _COMPUTE[compute[0]] != _MEMORY[memory[0]]:
        raise FlavorError(
            "resources%s: a vGPU group needs both %s and %s (or both REMOTE classes)"
            % (group, names.VGPU_COMPUTE, names.VGPU_MEMORY_MB))
    pct = amounts[compute[0]]
    if pct > 100:
        raise FlavorError("resources%s:%s=%d exceeds one GPU (100); use several groups"
                          % (group, compute[0], pct))
    return VGpuRequest(group, pct, amounts[memory[0]], remote=_COMPUTE[compute[0]])


def _options(extra_specs, request):
    if "orionx:priority" in extra_specs:
        request.priority = _int("orionx:priority", extra_specs["orionx:priority"],
                                *PRIORITY_RANGE)
    preemptible = str(extra_specs.get("orionx:preemptible", "false")).lower()
    if preemptible not in ("true", "false"):
        raise FlavorError("orionx:preemptible=%r must be true or false" % preemptible)
    request.preemptible = preemptible == "true"
    request.transport = extra_specs.get("orionx:transport", "auto")
    if request.transport not in TRANSPORTS:
        raise FlavorError("orionx:transport=%r is not one of %s"
                          % (request.transport, ", ".join(TRANSPORTS)))
    if "orionx:shmem_size_mb" in extra_specs:
        size = _int("orionx:shmem_size_mb", extra_specs["orionx:shmem_size_mb"], 0,
                    guest_xml.MAX_SHMEM_SIZE_MB)
        if size:
            try:
                guest_xml.check_shmem_size_mb(size)
            except ValueError as exc:
                raise FlavorError("orionx:shmem_size_mb: %s" % exc) from None
        request.shmem_size_mb = size


def parse(extra_specs):
    """The flavor's FlavorRequest (``vgpus`` empty: not a vGPU flavor), or
    FlavorError."""
    extra_specs = extra_specs or {}
    groups = _our_groups(extra_specs)
    vgpus = [_vgpu_of(group, groups[group]) for group in sorted(groups)]
    if len(vgpus) > 1 and extra_specs.get("group_policy") != "isolate":
        raise FlavorError(
            "%d vGPU groups need group_policy=isolate so each lands on its own GPU "
            "(group_policy is %r)" % (len(vgpus), extra_specs.get("group_policy")))
    if any(v.native for v in vgpus) and not all(v.native for v in vgpus):
        raise FlavorError("a flavor asks for vGPUs or whole native GPUs, not both; "
                          "make two flavors")
    request = FlavorRequest(vgpus)
    _options(extra_specs, request)
    return request
