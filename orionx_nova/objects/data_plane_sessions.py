"""Data-plane sessions of an allocation: the tokens and endpoints a guest
needs to reach its vGPUs.

A guest asks once its allocation is bound. It gets one session token per
vGPU, signed with ``[DEFAULT] session_secret`` (GPU servers and gateways
verify it without a database), and per vGPU the endpoints to try in order:

* the guest's host holds the vGPU: that host's gateway (it hands the
  connection to the GPU server);
* another host holds it: the guest's own gateway, which relays; first the
  remote host's gateway when the guest's agent has ``direct_remote`` on;
* the guest did not say where it runs: the holding host's gateway.
"""

import sqlalchemy as sa

from orionx_common.session_token import mint_token
from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.objects import allocation_views, allocations, nodes

DEFAULT_TTL_S = 3600
MAX_TTL_S = 7 * 86400


def _gateway(node):
    return list((node or {}).get("endpoints", {}).get("gateway") or ())


def _tcp_only(endpoints):
    return [e for e in endpoints if not e.startswith("unix:")]


def _node_or_none(hostname):
    if not hostname:
        return None
    try:
        return nodes.get(hostname)
    except exception.NotFound:
        return None


def endpoints_for(vgpu_node, guest_node):
    """Endpoints, in the order to try, for a vGPU on ``vgpu_node`` seen
    from a guest on ``guest_node`` (None: unknown)."""
    if guest_node is None:
        return _gateway(vgpu_node)
    if vgpu_node is not None and guest_node["hostname"] == vgpu_node["hostname"]:
        return _gateway(guest_node)
    relayed = _gateway(guest_node)
    if guest_node.get("endpoints", {}).get("direct_remote"):
        return _tcp_only(_gateway(vgpu_node)) + relayed
    return relayed


def _check_bound(allocation):
    unbound = [v["index"] for v in allocation["vgpus"] if not v["gpu_uuid"]]
    if allocation["state"] != "active" or unbound:
        raise exception.Conflict(
            "Allocation %s is %s with vGPU(s) %s unbound: a session needs every vGPU bound; "
            "bind it first (POST /v1/allocations/%s/bind) and wait until it is active"
            % (allocation["uuid"], allocation["state"],
               ", ".join(str(i) for i in unbound) or "none", allocation["uuid"]))
    if allocation["native"]:
        raise exception.Conflict(
            "Allocation %s takes whole native GPUs: they are passed through to the guest, "
            "not served over the data plane" % allocation["uuid"])


def _bound_for_tokens(uuid, project_id):
    """The allocation, checked bound, and the binding generation its tokens
    carry. Recorded as minted under the allocation's row lock, so a binding
    that ends later knows a session may run (objects/revocations.py)."""
    with db_api.transaction() as session:
        allocations.lock(session, uuid, project_id)
        allocation = allocation_views.load(session, allocations.ALLOCATIONS.c.uuid == uuid)[0]
        _check_bound(allocation)
        generation = session.execute(
            sa.select(allocations.ALLOCATIONS.c.binding_generation)
            .where(allocations.ALLOCATIONS.c.uuid == uuid)).scalar_one()
        session.execute(
            sa.update(allocations.ALLOCATIONS).where(allocations.ALLOCATIONS.c.uuid == uuid)
            .values(token_generation=generation))
    return allocation, generation


def create(uuid, project_id=None, host=None, ttl_s=DEFAULT_TTL_S):
    """Tokens and endpoints for the bound allocation ``uuid``'s vGPUs."""
    if not CONF.session_secret:
        raise exception.Conflict(
            "[DEFAULT] session_secret is not set on this controller: it cannot sign session "
            "tokens; set it to the value the agents use")
    if not isinstance(ttl_s, int) or isinstance(ttl_s, bool) or not 1 <= ttl_s <= MAX_TTL_S:
        raise exception.InvalidRequest("ttl_s must be an integer from 1 to %d" % MAX_TTL_S)
    allocation, generation = _bound_for_tokens(uuid, project_id)
    guest_node = _node_or_none(host)
    if host and guest_node is None:
        raise exception.InvalidRequest(
            "host %s runs no registered agent: guests connect through their host's agent; "
            "start orionx-agent there or leave host out" % host)
    result = []
    for vgpu in allocation["vgpus"]:
        claim = {"id": vgpu["uuid"], "compute_pct": vgpu["compute_pct"],
                 "memory_mb": vgpu["memory_mb"], "gpu": vgpu["gpu_uuid"]}
        result.append({
            "index": vgpu["index"],
            "uuid": vgpu["uuid"],
            "gpu_uuid": vgpu["gpu_uuid"],
            "node": vgpu["node"],
            "token": mint_token(CONF.session_secret, allocation["uuid"], [claim], ttl_s,
                                generation=generation),
            "endpoints": endpoints_for(_node_or_none(vgpu["node"]), guest_node),
        })
    return {"allocation_uuid": allocation["uuid"], "ttl_s": ttl_s, "vgpus": result}
