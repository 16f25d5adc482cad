"""Topology: nodes, their GPUs and the vGPU slices on each, to scale."""

from orionx_nova.api import policy
from orionx_nova.gui import identity, visible
from orionx_nova.gui.blueprint import blueprint, render
from orionx_nova.objects import gpus, nodes
from orionx_nova.policies import gpus as gpu_rules
from orionx_nova.policies import nodes as node_rules


def nodes_with_gpus(context):
    """Nodes, each with its GPU dicts (slices annotated), by hostname."""
    known = visible.allocations_by_uuid(context)
    by_node = {}
    for gpu in gpus.list():
        by_node.setdefault(gpu["node"], []).append(visible.annotate_slices(gpu, known))
    listed = nodes.list()
    for node in listed:
        node["gpu_dicts"] = by_node.get(node["hostname"], [])
    return listed


@blueprint.get("/topology")
def topology():
    context = identity.current()
    policy.authorize(context, node_rules.LIST)
    policy.authorize(context, gpu_rules.LIST)
    return render("topology.html", nodes=nodes_with_gpus(context))
