"""This host's GPU providers in Nova's ProviderTree (``update_provider_tree``),
built from the same definitions as the controller's Placement sync.

The driver adds and updates GPU providers; it leaves ``reserved`` as the
controller last set it (the controller knows what the pool uses that
Placement does not see) and never removes a GPU provider: that is the
controller's, which refuses while Placement holds allocations there.
"""

from orionx_nova.placement import names, provider_tree


def _inventories(provider_tree_, provider):
    current = provider_tree_.data(provider.uuid).inventory
    inventories = {}
    for resource_class, record in provider.inventories.items():
        reserved = current.get(resource_class, {}).get("reserved", 0)
        inventories[resource_class] = dict(record, reserved=min(reserved, record["total"]))
    return inventories


def update_gpu_providers(tree, nodename, host_gpus):
    for gpu in host_gpus:
        provider = provider_tree.gpu_provider(gpu)
        if not tree.exists(provider.uuid):
            tree.new_child(provider.name, nodename, uuid=provider.uuid)
        tree.update_inventory(provider.uuid, _inventories(tree, provider))
        current = tree.data(provider.uuid).traits
        others = {t for t in current if not names.is_ours_trait(t)}
        tree.update_traits(provider.uuid, others | provider.traits)
