"""Make Placement match the pool: one pass of :meth:`PlacementSync.run`.

Order matters for capacity: stale controller allocations go first, then
inventories (their ``reserved`` counts what the pool uses that Placement
does not see against the provider), then the controller's current
allocations. Provider writes that lose a generation race are re-read and
retried. A GPU that left the pool keeps its provider while Placement holds
allocations against it, as Placement itself refuses to delete it.
"""

from urllib import parse

from oslo_log import log as logging

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.objects import allocations, events, gpus, nodes
from orionx_nova.placement import client as placement_client
from orionx_nova.placement import names, provider_tree

LOG = logging.getLogger(__name__)


class PlacementSync:
    def __init__(self, client=None):
        self._client = client or placement_client.PlacementClient()
        self._ensured_names = set()
        # Consumers known not to be ours (Nova instances, migrations): their
        # type never changes, so each is looked up once per process.
        self._foreign_consumers = set()

    # -- one pass -------------------------------------------------------

    def run(self):
        """One full sync; returns a summary dict (tests and logs read it)."""
        pool_gpus = gpus.list()
        pool_nodes = nodes.list()
        node_states = {n["hostname"]: n["state"] for n in pool_nodes}
        self._ensure_names(pool_gpus)
        roots = self._compute_node_providers(n["hostname"] for n in pool_nodes)
        wanted = [provider_tree.gpu_provider(g) for g in pool_gpus if roots.get(g["node"])]
        if CONF.placement.share_remote_gpus:
            for pool in ("orionx", "native"):
                sharing = provider_tree.sharing_provider(pool, pool_gpus)
                if sharing is not None:
                    wanted.append(sharing)
        for provider in wanted:
            self._ensure_provider(provider, roots)
        on_providers = {p.uuid: self._provider_allocations(p.uuid) for p in wanted}
        desired = self._desired_allocations(on_providers, pool_gpus)
        self._delete_stale(on_providers, desired)
        for provider in wanted:
            self._set_inventories(provider, on_providers[provider.uuid], desired, node_states)
        self._put_allocations(desired)
        kept = self._remove_vanished({p.uuid for p in wanted})
        self._join_aggregates(wanted, roots)
        return {"providers": sorted(p.uuid for p in wanted), "allocations": sorted(desired),
                "kept_in_use": kept, "hosts_without_provider":
                sorted(h for h, uuid in roots.items() if uuid is None)}

    # -- names and providers --------------------------------------------

    def _ensure_names(self, pool_gpus):
        """Custom resource classes and traits exist before anything uses them."""
        for resource_class in names.ALL_CLASSES:
            self._ensure_name("/resource_classes/" + resource_class)
        traits = {names.TRAIT_GPU, names.TRAIT_SHARED_POOL, *names.TRAIT_POOL.values()}
        traits.update(names.model_trait(g["model"]) for g in pool_gpus)
        for trait in sorted(traits):
            self._ensure_name("/traits/" + trait)

    def _ensure_name(self, url):
        if url not in self._ensured_names:
            self._client.put(url)
            self._ensured_names.add(url)

    def _compute_node_providers(self, hostnames):
        """{hostname: compute-node provider uuid or None}: Nova names the
        provider after the hypervisor hostname, which is the agent's host."""
        found = {}
        for hostname in hostnames:
            answer = self._client.get("/resource_providers?name=%s" % parse.quote(hostname))
            providers = answer["resource_providers"]
            found[hostname] = providers[0]["uuid"] if providers else None
            if not providers:
                LOG.info("No compute-node provider named %s in Placement yet; its GPUs "
                         "are mirrored once nova-compute has registered it", hostname)
        return found

    def _ensure_provider(self, provider, roots):
        url = "/resource_providers/" + provider.uuid
        if self._client.get_or_none(url) is None:
            body = {"uuid": provider.uuid, "name": provider.name}
            if provider.parent_hostname:
                body["parent_provider_uuid"] = roots[provider.parent_hostname]
            # 409: created meanwhile by the Nova driver or another controller.
            self._client.post("/resource_providers", body, ok=(200, 201, 409))
        self._with_generation(url, lambda generation: self._put_traits(provider, generation))
        if provider.aggregates:
            self._with_generation(
                url, lambda generation: self._merge_aggregates(url, provider.aggregates, generation)
            )

    def _put_traits(self, provider, generation):
        url = "/resource_providers/%s/traits" % provider.uuid
        current = set(self._client.get(url)["traits"])
        # Traits others set (operators, Nova) stay; ours follow the pool.
        traits = {t for t in current if not names.is_ours_trait(t)} | provider.traits
        if traits != current:
            self._client.put(url, {"traits": sorted(traits),
                                   "resource_provider_generation": generation})

    def _merge_aggregates(self, provider_url, aggregates, generation):
        url = provider_url + "/aggregates"
        current = set(self._client.get(url)["aggregates"])
        if not aggregates <= current:
            self._client.put(url, {"aggregates": sorted(current | aggregates),
                                   "resource_provider_generation": generation})

    def _with_generation(self, provider_url, write):
        """Call ``write(generation)``; when another writer changed the
        provider meanwhile, read it again and retry."""
        retries = CONF.placement.generation_conflict_retries
        for attempt in range(retries + 1):
            generation = self._client.get(provider_url)["generation"]
            try:
                return write(generation)
            except placement_client.GenerationConflict:
                if attempt == retries:
                    raise
                LOG.debug("Generation conflict on %s; retrying", provider_url)

    def _join_aggregates(self, wanted, roots):
        """Hosts with an agent join each pool's aggregate, so the sharing
        provider serves their instances."""
        aggregates = set()
        for provider in wanted:
            aggregates |= provider.aggregates
        if not aggregates:
            return
        for root in filter(None, roots.values()):
            url = "/resource_providers/" + root
            self._with_generation(
                url, lambda generation, u=url: self._merge_aggregates(u, aggregates, generation)
            )

    # -- allocations ----------------------------------------------------

    def _provider_allocations(self, provider_uuid):
        """{consumer: {resource class: amount}} against one provider."""
        answer = self._client.get("/resource_providers/%s/allocations" % provider_uuid)
        return {c: a["resources"] for c, a in answer["allocations"].items()}

    def _consumer_is_ours(self, consumer):
        if consumer in self._foreign_consumers:
            return False
        answer = self._client.get("/allocations/" + consumer)
        if answer.get("consumer_type") == names.CONSUMER_TYPE:
            return True
        if answer.get("allocations"):
            self._foreign_consumers.add(consumer)
        return False

    def _desired_allocations(self, on_providers, pool_gpus):
        """{allocation uuid: body} of the controller's bound allocations whose
        consumer has no Placement allocation of its own (Nova instances do:
        Nova's scheduler made it)."""
        foreign = set()
        for consumers in on_providers.values():
            foreign |= {c for c in consumers if not self._consumer_is_ours(c)}
        provider_of_gpu = {g["uuid"]: names.gpu_provider_uuid(g["uuid"]) for g in pool_gpus}
        desired = {}
        for allocation in allocations.list():
            if allocation["consumer"] in foreign or allocation["uuid"] in foreign:
                continue
            resources = _resources_of(allocation, provider_of_gpu, on_providers)
            if resources:
                desired[allocation["uuid"]] = _allocation_body(allocation, resources)
        return desired

    def _delete_stale(self, on_providers, desired):
        ours = set()
        for consumers in on_providers.values():
            ours |= {c for c in consumers if self._consumer_is_ours(c)}
        for consumer in sorted(ours - set(desired)):
            LOG.info("Removing Placement allocation of deleted allocation %s", consumer)
            self._client.delete("/allocations/" + consumer)
            for consumers in on_providers.values():
                consumers.pop(consumer, None)

    def _put_allocations(self, desired):
        for consumer, body in desired.items():
            current = self._client.get("/allocations/" + consumer)
            held = {rp: a["resources"] for rp, a in current.get("allocations", {}).items()}
            if held == {rp: a["resources"] for rp, a in body["allocations"].items()}:
                continue
            body = dict(body, consumer_generation=current.get("consumer_generation"))
            try:
                self._client.put("/allocations/" + consumer, body)
            except placement_client.PlacementError as exc:
                # Placement disagrees on capacity (a race with Nova); the
                # next pass reads both again.
                LOG.warning("Could not record allocation %s in Placement: %s", consumer, exc)

    # -- inventories ----------------------------------------------------

    def _set_inventories(self, provider, on_provider, desired, node_states):
        url = "/resource_providers/" + provider.uuid
        seen = _usage_seen(provider.uuid, on_provider, desired)
        inventories = {}
        for resource_class, record in provider.inventories.items():
            reserved = provider_tree.reserved_units(
                provider, resource_class, seen.get(resource_class, 0), node_states)
            inventories[resource_class] = dict(record, reserved=reserved)
        self._with_generation(url, lambda generation: self._put_inventories(
            url, inventories, generation))

    def _put_inventories(self, url, inventories, generation):
        current = self._client.get(url + "/inventories")["inventories"]
        if current == inventories:
            return
        try:
            self._client.put(url + "/inventories", {
                "inventories": inventories, "resource_provider_generation": generation})
        except placement_client.PlacementError as exc:
            if exc.code != placement_client.INVENTORY_IN_USE:
                raise
            # A GPU changed pool while Placement still holds allocations of
            # its old classes: keep them until those consumers leave.
            LOG.warning("Provider %s keeps its old inventory: %s", url, exc.detail)

    # -- GPUs that left the pool ---------------------------------------

    def _remove_vanished(self, wanted_uuids):
        answer = self._client.get("/resource_providers?required=%s" % names.TRAIT_GPU)
        kept = []
        for provider in answer["resource_providers"]:
            if provider["uuid"] in wanted_uuids or not names.is_gpu_provider_name(
                    provider["name"]):
                continue
            if self._provider_allocations(provider["uuid"]):
                self._refuse_removal(provider)
                kept.append(provider["uuid"])
                continue
            LOG.info("GPU provider %s left the pool; deleting it", provider["name"])
            self._client.delete("/resource_providers/" + provider["uuid"])
        return kept

    def _refuse_removal(self, provider):
        """Placement refuses to delete a provider with allocations; we do not
        try, stop new work landing there and tell operators what to do (once:
        when the provider becomes fully reserved)."""
        url = "/resource_providers/" + provider["uuid"]
        changed = self._with_generation(
            url, lambda generation: self._reserve_everything(url, generation))
        if not changed:
            return
        message = ("GPU provider %s left the pool but Placement still holds allocations "
                   "against it; it is kept (fully reserved) until those servers are "
                   "deleted or migrated" % provider["name"])
        with db_api.transaction() as session:
            events.record(session, "warning", "gpu", provider["uuid"],
                          "placement.removal_refused", message)

    def _reserve_everything(self, url, generation):
        current = self._client.get(url + "/inventories")["inventories"]
        full = {rc: dict(rec, reserved=rec["total"]) for rc, rec in current.items()}
        if full == current:
            return False
        self._client.put(url + "/inventories", {
            "inventories": full, "resource_provider_generation": generation})
        return True


def _resources_of(allocation, provider_of_gpu, on_providers):
    """{provider uuid: {class: amount}} of an allocation's bound vGPUs, on
    providers this sync mirrors."""
    resources = {}
    for vgpu in allocation["vgpus"]:
        provider = provider_of_gpu.get(vgpu["gpu_uuid"])
        if provider is None or provider not in on_providers:
            continue
        mine = resources.setdefault(provider, {})
        if allocation["native"]:
            mine[names.NATIVE_GPU] = mine.get(names.NATIVE_GPU, 0) + 1
            continue
        mine[names.VGPU_COMPUTE] = mine.get(names.VGPU_COMPUTE, 0) + vgpu["compute_pct"]
        mine[names.VGPU_MEMORY_MB] = mine.get(names.VGPU_MEMORY_MB, 0) + vgpu["memory_mb"]
    return resources


def _allocation_body(allocation, resources):
    return {
        "allocations": {rp: {"resources": r} for rp, r in resources.items()},
        "consumer_type": names.CONSUMER_TYPE,
        "project_id": allocation["project_id"] or CONF.placement.consumer_project_id,
        "user_id": allocation["user_id"] or CONF.placement.consumer_project_id,
    }


def _usage_seen(provider_uuid, on_provider, desired):
    """{class: amount} Placement counts against the provider once the
    desired controller allocations are written: everyone else's plus ours."""
    seen = {}
    for consumer, resources in on_provider.items():
        if consumer in desired:
            continue
        for resource_class, amount in resources.items():
            seen[resource_class] = seen.get(resource_class, 0) + amount
    for body in desired.values():
        mine = body["allocations"].get(provider_uuid, {}).get("resources", {})
        for resource_class, amount in mine.items():
            seen[resource_class] = seen.get(resource_class, 0) + amount
    return seen
