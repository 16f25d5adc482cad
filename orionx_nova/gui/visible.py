"""What the logged-in user may see of allocations, shared by the pages that
draw slices: the same project scoping as ``/v1/allocations``."""

from orionx_nova import exception
from orionx_nova.api import policy
from orionx_nova.objects import allocations
from orionx_nova.policies import allocations as allocation_rules


def allocation_scope(context):
    """(may see allocations at all, project filter or None for all)."""
    if not policy.allowed(context, allocation_rules.LIST):
        return False, None
    try:
        return True, policy.project_scope(context)
    except exception.Forbidden:
        return False, None


def allocations_by_uuid(context):
    """{uuid: allocation dict} of the allocations ``context`` may see."""
    visible, scope = allocation_scope(context)
    if not visible:
        return {}
    return {a["uuid"]: a for a in allocations.list(project_id=scope)}


def annotate_slices(gpu, known):
    """Add to each vGPU of ``gpu`` what the page draws: its allocation (when
    visible), whether it serves a guest on another host (a remote binding)."""
    for vgpu in gpu["vgpus"]:
        allocation = known.get(vgpu["allocation_uuid"])
        vgpu["allocation"] = allocation
        host = allocation["host"] if allocation else None
        vgpu["remote_from"] = host if host and host != gpu["node"] else None
        vgpu["remote"] = bool(vgpu["remote_from"])
    return gpu
