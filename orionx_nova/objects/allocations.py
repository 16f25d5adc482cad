"""Allocations: a consumer's vGPUs (or whole native GPUs) and their life.

``reserve`` allocations hold capacity from creation to deletion.
``acquire`` allocations are created unbound and hold capacity only between
:func:`bind` and :func:`unbind` (while an application runs). What does not
fit waits in the queue, or evicts lower-priority work when it may preempt.
Every change runs through :func:`.change.run`, which serves the queue
when it freed capacity.
"""

import uuid as uuidlib

import sqlalchemy as sa

from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import (
    allocation_body,
    allocation_views,
    change,
    events,
    evictions,
    revocations,
)
from orionx_nova.scheduler import candidates, claims, fit, planner, queue, vgpu_binding

ALLOCATIONS = models.Allocation.__table__
VGPUS = models.VGpu.__table__
GPUS = models.PhysicalGpu.__table__
NODES = models.Node.__table__

# Statements of the hot paths (create, delete), built once and reused with
# new parameters: building SQLAlchemy constructs per call costs more Python
# time than the database spends on them.
_INSERT_ALLOCATION = sa.insert(ALLOCATIONS)
_INSERT_VGPUS = sa.insert(VGPUS)
_LOCK_ALLOCATION = (
    sa.select(ALLOCATIONS).where(ALLOCATIONS.c.uuid == sa.bindparam("uuid")).with_for_update()
)
_VGPU_ROWS = (
    sa.select(VGPUS, GPUS.c.uuid.label("gpu_uuid"), GPUS.c.draining, NODES.c.hostname.label("node"))
    .select_from(
        VGPUS.outerjoin(GPUS, GPUS.c.id == VGPUS.c.physical_gpu_id).outerjoin(
            NODES, NODES.c.id == GPUS.c.node_id
        )
    )
    .where(VGPUS.c.allocation_id == sa.bindparam("allocation_id"))
    .order_by(VGPUS.c.index)
)
_DELETE_ALLOCATION = sa.delete(ALLOCATIONS).where(ALLOCATIONS.c.id == sa.bindparam("allocation_id"))


def _pool(request):
    return "native" if request.native else "orionx"


def check_can_ever_fit(session, request):
    """Raise NeverFits when ``request`` would not fit even on an empty pool
    (every GPU that is or is becoming part of its pool, whatever its health
    or node state, since those recover)."""
    pool = _pool(request)
    shape = candidates.load_pool_shape(session, pool)
    if planner.plan(request.demands, shape) is not None:
        return
    if not shape:
        raise exception.NeverFits(
            "the %s pool has no GPUs; register a node with GPUs, or move GPUs into "
            'it with PATCH /v1/gpus/{uuid} {"mode": "%s"}' % (pool, pool)
        )
    if request.native:
        raise exception.NeverFits(
            "native count %d asks for more whole GPUs than the %d in the native "
            "pool; ask for fewer or move GPUs into it" % (len(request.demands), len(shape))
        )
    largest = max(shape, key=lambda g: (g.capacity_memory_mb, g.id))
    for demand in request.demands:
        if not any(fit.fits(demand, gpu) for gpu in shape):
            raise exception.NeverFits(
                "vGPU %d asks for %d memory_mb; the largest GPU in the orionx pool "
                "holds %d MB (memory_mb x memory_oversub_ratio); ask for less"
                % (demand.index, demand.memory_mb, largest.capacity_memory_mb)
            )
    raise exception.NeverFits(
        "the request needs %d distinct GPUs of its sizes but the orionx pool has only "
        "%d GPUs that could hold them together; ask for fewer or smaller vGPUs"
        % (len(request.demands), len(shape))
    )


def _plan_or_preempt(session, change_set, request, can_preempt, now):
    """The GPUs for ``request``: free ones, or ones freed by evicting
    lower-priority preemptible work; None when neither works (or strict
    queueing makes it wait)."""
    if CONF.scheduler.strict_queue and queue.anyone_waiting_ahead(session, request.priority):
        return None
    chosen = vgpu_binding.plan(session, request)
    if chosen is not None or not can_preempt:
        return chosen
    reason = "preempted by allocation %s of priority %d" % (request.uuid, request.priority)
    return evictions.evict_and_plan(session, change_set, request, reason, now)


def _pinned_gpus(session, request, gpu_uuids):
    """The GPUs a pinned request names, in demand order, when every vGPU
    fits on its own; NoCapacity naming the first that does not."""
    views = candidates.load_usable_by_uuids(session, _pool(request), gpu_uuids)
    chosen = []
    for demand, gpu_uuid in zip(request.demands, gpu_uuids, strict=True):
        gpu = views.get(gpu_uuid)
        if gpu is None:
            raise exception.NoCapacity(
                "GPU %s is not a usable GPU of the %s pool (unknown, unhealthy, draining "
                "or its node is down); pick another GPU" % (gpu_uuid, _pool(request)))
        if not fit.fits(demand, gpu):
            raise exception.NoCapacity(
                "vGPU %d (%d compute_pct, %d MB) does not fit on GPU %s: %d compute_pct and "
                "%d MB free; pick another GPU or ask for less"
                % (demand.index, demand.compute_pct, demand.memory_mb, gpu_uuid,
                   gpu.free_compute_pct, gpu.free_memory_mb))
        chosen.append(gpu)
    return chosen


def _new_request(spec, now):
    demands = [
        fit.Demand(None, index, compute_pct, memory_mb, whole=spec["native"])
        for index, (compute_pct, memory_mb) in enumerate(spec["sizes"])
    ]
    return vgpu_binding.Request(
        None,
        str(uuidlib.uuid4()),
        spec["priority"],
        now,
        spec["host"],
        spec["allow_remote"],
        demands,
    )


def _insert(session, spec, request, state, placed, project_id, user_id, now):
    """Write the allocation and its vGPUs; returns its dict."""
    row = {
        "uuid": request.uuid,
        "consumer": spec["consumer"],
        "project_id": project_id,
        "user_id": user_id,
        "mode": spec["mode"],
        "native": spec["native"],
        "priority": spec["priority"],
        "preemptible": spec["preemptible"],
        "can_preempt": spec["can_preempt"],
        "requeue": spec["requeue"],
        "host": spec["host"],
        "allow_remote": spec["allow_remote"],
        "unbind_on_session_end": spec["unbind_on_session_end"],
        "state": state,
        "state_reason": None,
        "created_at": now,
        "updated_at": None,
        "placed_at": now if placed else None,
    }
    row["id"] = request.id = session.execute(_INSERT_ALLOCATION, row).inserted_primary_key[0]
    vgpus = []
    for demand in request.demands:
        where = placed.get(demand.index) if placed else None
        compute_pct, memory_mb = (
            (where.compute_pct, where.memory_mb)
            if where
            else (demand.compute_pct, demand.memory_mb)
        )
        vgpus.append(
            {
                "allocation_id": row["id"],
                "uuid": str(uuidlib.uuid4()),
                "index": demand.index,
                "physical_gpu_id": where.gpu.id if where else None,
                "compute_pct": compute_pct,
                "memory_mb": memory_mb,
                "bound_at": now if where else None,
                "gpu_uuid": where.gpu.uuid if where else None,
                "node": where.gpu.hostname if where else None,
            }
        )
    session.execute(
        _INSERT_VGPUS,
        [{k: v for k, v in vgpu.items() if k not in ("gpu_uuid", "node")} for vgpu in vgpus],
    )
    return row, vgpus


def _queue_or_refuse(session, request, queue_allowed, what):
    """The request does not fit now: NeverFits if it never will, NoCapacity
    when it may not wait."""
    check_can_ever_fit(session, request)
    if not queue_allowed:
        raise exception.NoCapacity(
            "%s does not fit in the free capacity of the %s pool now; retry later, "
            "ask for less, or allow queueing (queue: true)" % (what, _pool(request))
        )


def _create(session, change_set, spec, project_id, user_id):
    now = models.utcnow()
    request = _new_request(spec, now)
    if spec["mode"] == "acquire":
        row, vgpus = _insert(session, spec, request, "active", None, project_id, user_id, now)
        return allocation_views.allocation_dict(row, vgpus)
    if spec["gpus"] is not None:
        chosen = _pinned_gpus(session, request, spec["gpus"])
    else:
        chosen = _plan_or_preempt(session, change_set, request, spec["can_preempt"], now)
    if chosen is not None:
        placed = vgpu_binding.claim(session, request, chosen)
        row, vgpus = _insert(session, spec, request, "active", placed, project_id, user_id, now)
        return allocation_views.allocation_dict(row, vgpus)
    _queue_or_refuse(session, request, spec["queue"], "The request")
    row, vgpus = _insert(session, spec, request, "queued", None, project_id, user_id, now)
    events.record(
        session,
        "info",
        "allocation",
        request.uuid,
        "queued",
        "Allocation %s waits in the queue for capacity." % request.uuid,
    )
    position = queue.position(session, row["id"])
    return allocation_views.allocation_dict(row, vgpus, position)


def create(body, project_id=None, user_id=None):
    """Create an allocation from a request ``body`` (see allocation_body).
    reserve: placed now, queued, or NoCapacity; acquire: active, unbound."""
    spec = allocation_body.validate(body)
    return change.run(
        lambda session, change_set: _create(session, change_set, spec, project_id, user_id),
        "Allocation request")


def lock(session, uuid, project_id=None):
    """The allocation's row, locked for the transaction; NotFound when it
    does not exist or belongs to another project."""
    row = session.execute(_LOCK_ALLOCATION, {"uuid": uuid}).mappings().first()
    if row is None or (project_id is not None and row["project_id"] != project_id):
        raise exception.NotFound("Allocation %s not found" % uuid)
    return row


def _vgpu_rows(session, allocation_id):
    return session.execute(_VGPU_ROWS, {"allocation_id": allocation_id}).all()


def _bound(vgpu_rows):
    return [v for v in vgpu_rows if v.physical_gpu_id is not None]


def get(uuid, project_id=None):
    with db_api.transaction(read_only=True) as session:
        found = allocation_views.load(session, ALLOCATIONS.c.uuid == uuid)
    if not found or (project_id is not None and found[0]["project_id"] != project_id):
        raise exception.NotFound("Allocation %s not found" % uuid)
    return found[0]


def list(project_id=None, state=None, consumer=None):
    """Allocations, oldest first, optionally filtered."""
    conditions = []
    if project_id is not None:
        conditions.append(ALLOCATIONS.c.project_id == project_id)
    if state is not None:
        if state not in models.ALLOCATION_STATES:
            raise exception.InvalidRequest(
                "state %r is not one of %s" % (state, ", ".join(models.ALLOCATION_STATES))
            )
        conditions.append(ALLOCATIONS.c.state == state)
    if consumer is not None:
        conditions.append(ALLOCATIONS.c.consumer == consumer)
    with db_api.transaction(read_only=True) as session:
        return allocation_views.load(session, *conditions)


def _delete(session, change_set, uuid, project_id):
    delete_locked(session, change_set, lock(session, uuid, project_id))


def delete_locked(session, change_set, allocation):
    """Delete the allocation whose row this transaction locked, and revoke
    its binding."""
    # The allocation is locked first and its vGPUs read in a statement of
    # their own. One joined locking read would not do: under READ COMMITTED
    # (PostgreSQL) a locking read that waited returns the newest version of
    # the row it locks but the joined rows of its older snapshot, so it
    # could miss vGPUs that a queue server bound meanwhile, and deleting
    # them would leak their GPU's capacity.
    bound = _bound(_vgpu_rows(session, allocation["id"]))
    # Deleting the allocation removes its vGPU rows (ON DELETE CASCADE), so
    # they are released without being unbound, after the delete: a drain
    # finishes only on a GPU that holds no vGPU row any more.
    session.execute(_DELETE_ALLOCATION, {"allocation_id": allocation["id"]})
    revocations.end_binding(session, change_set, allocation, bound, "deleted", unbind=False)


def delete(uuid, project_id=None):
    """Delete an allocation, free its capacity and serve the queue."""
    change.run(lambda session, change_set: _delete(session, change_set, uuid, project_id),
               "Deleting an allocation")


def _request_from(row, vgpu_rows):
    demands = [
        fit.Demand(v.id, v.index, v.compute_pct, v.memory_mb, whole=bool(row["native"]))
        for v in vgpu_rows
    ]
    return vgpu_binding.Request(
        row["id"],
        row["uuid"],
        row["priority"],
        row["created_at"],
        row["host"],
        row["allow_remote"],
        demands,
    )


def _set_state(session, allocation_id, state, reason, now, placed_at=None):
    session.execute(
        sa.update(ALLOCATIONS)
        .where(ALLOCATIONS.c.id == allocation_id)
        .values(state=state, state_reason=reason, placed_at=placed_at, updated_at=now)
    )


def _bind(session, change_set, uuid, project_id, queue_allowed):
    row = lock(session, uuid, project_id)
    vgpu_rows = _vgpu_rows(session, row["id"])
    all_bound = all(v.physical_gpu_id is not None for v in vgpu_rows)
    if row["state"] == "queued" or (row["state"] == "active" and all_bound):
        return  # already bound, or already waiting: binding is idempotent
    if row["state"] == "degraded":
        raise exception.Conflict(
            "Allocation %s is degraded: the node holding its GPUs is down; wait for the "
            "node to come back, or delete the allocation and create a new one" % uuid
        )
    now = models.utcnow()
    request = _request_from(row, vgpu_rows)
    chosen = _plan_or_preempt(session, change_set, request, row["can_preempt"], now)
    if chosen is not None:
        placed = vgpu_binding.claim(session, request, chosen)
        vgpu_binding.bind_vgpus(session, request, placed, now)
        _set_state(session, row["id"], "active", None, now, placed_at=now)
        return
    _queue_or_refuse(session, request, queue_allowed, "Allocation %s" % uuid)
    _set_state(session, row["id"], "queued", "waiting for capacity to bind", now)
    events.record(
        session,
        "info",
        "allocation",
        uuid,
        "queued",
        "Allocation %s waits in the queue to bind." % uuid,
    )


def bind(uuid, project_id=None, queue=True):
    """Bind an allocation's vGPUs to GPUs now (acquire mode: an application
    starts). When it does not fit it is queued (``queue`` true; the result
    has state queued and its queue_position) or refused with NoCapacity.
    Binding a bound or queued allocation changes nothing."""
    if not isinstance(queue, bool):
        raise exception.InvalidRequest("queue must be true or false, not %r" % (queue,))
    change.run(lambda session, change_set: _bind(session, change_set, uuid, project_id, queue),
               "Binding an allocation")
    return get(uuid, project_id)


def _unbind(session, change_set, uuid, project_id):
    row = lock(session, uuid, project_id)
    if row["mode"] != "acquire":
        raise exception.InvalidRequest(
            "Allocation %s is in reserve mode: it holds its vGPUs until deleted; delete "
            "it instead, or use mode acquire to bind and unbind" % uuid
        )
    bound = _bound(_vgpu_rows(session, row["id"]))
    if bound:
        revocations.end_binding(session, change_set, row, bound, "unbound")
    if bound or row["state"] != "active":
        _set_state(session, row["id"], "active", None, models.utcnow())


def unbind(uuid, project_id=None):
    """Release an acquire-mode allocation's capacity (its application ended)
    and keep the allocation, active and unbound; a queued one leaves the
    queue."""
    change.run(lambda session, change_set: _unbind(session, change_set, uuid, project_id),
               "Unbinding an allocation")
    return get(uuid, project_id)


def _unbind_ended(session, change_set, uuid, hostname, last_seen_at):
    row = session.execute(_LOCK_ALLOCATION, {"uuid": uuid}).mappings().first()
    if row is None or not row["unbind_on_session_end"]:
        # Deleted already (its application ended cleanly), or its binding
        # belongs to its creator (reserve mode, or a libvirt domain).
        return False
    bound = _bound(_vgpu_rows(session, row["id"]))
    if not bound:
        return False
    if last_seen_at is not None and row["placed_at"] is not None and \
            row["placed_at"] > last_seen_at:
        return False  # bound again since: the binding is a new application's
    revocations.end_binding(session, change_set, row, bound, "session ended",
                            gone_on=hostname)
    _set_state(session, row["id"], "active", None, models.utcnow())
    # Its sessions on other hosts run on capacity just released: end them.
    elsewhere = {}
    for vgpu in bound:
        if vgpu.node != hostname:
            elsewhere.setdefault(vgpu.node, []).append(vgpu.uuid)
    for host, vgpu_uuids in sorted(elsewhere.items()):
        change_set.cast("preempt_session", host, allocation_uuid=uuid, vgpu_uuids=vgpu_uuids)
    events.record(
        session, "warning", "allocation", uuid, "session_ended",
        "Allocation %s was unbound: its data-plane session on node %s ended without "
        "the application unbinding (it was killed or its connection dropped)."
        % (uuid, hostname))
    return True


def unbind_ended(uuid, hostname, last_seen_at=None):
    """Unbind an allocation whose application's session on ``hostname``
    ended, when it was created with unbind_on_session_end, unless it was
    bound again after the session was last seen alive (``last_seen_at``:
    naive UTC). Decided under the allocation's row lock, so a bind that
    races with the report is never undone; its sessions on other hosts are
    ended. Returns True when it unbound."""
    return change.run(
        lambda session, change_set: _unbind_ended(session, change_set, uuid, hostname,
                                                  last_seen_at),
        "Unbinding an allocation whose session ended")


def _preempt(session, change_set, uuid, project_id):
    row = lock(session, uuid, project_id)
    if row["state"] == "preempted":
        return
    if row["state"] != "active":
        raise exception.Conflict(
            "Allocation %s is %s, not running; only running allocations can be "
            "preempted; delete it instead" % (uuid, row["state"])
        )
    now = models.utcnow()
    reason = "preempted by an operator"
    if any(v.physical_gpu_id is not None for v in _vgpu_rows(session, row["id"])):
        evictions.evict(session, change_set, [row["id"]], reason, now)
        return
    _set_state(session, row["id"], "preempted", reason, now)
    events.record(
        session,
        "warning",
        "allocation",
        uuid,
        "preempted",
        "Allocation %s was preempted by an operator." % uuid,
    )


def preempt(uuid, project_id=None):
    """Evict a running allocation (operator action): it becomes preempted,
    or queued again when it asked to requeue."""
    change.run(lambda session, change_set: _preempt(session, change_set, uuid, project_id),
               "Preempting an allocation")
    return get(uuid, project_id=project_id)


def _resize_targets(row, vgpu_rows, body):
    """{index: (compute_pct, memory_mb)} after the resize ``body`` (already
    checked against allocation_body.RESIZE)."""
    if row["native"]:
        raise exception.InvalidRequest(
            "Allocation %s takes whole native GPUs; they cannot be resized" % row["uuid"]
        )
    every = {"compute_pct": body.get("compute_pct"), "memory_mb": body.get("memory_mb")}
    targets = {}
    for v in vgpu_rows:
        targets[v.index] = (every["compute_pct"] or v.compute_pct,
                            every["memory_mb"] or v.memory_mb)
    for entry in body.get("vgpus", ()):
        index = entry["index"]
        if index not in targets:
            raise exception.InvalidRequest(
                "vgpus[].index: allocation %s has no vGPU %d; it has vGPUs %s"
                % (row["uuid"], index, ", ".join(str(i) for i in sorted(targets)))
            )
        compute_pct, memory_mb = targets[index]
        targets[index] = (entry.get("compute_pct", compute_pct),
                          entry.get("memory_mb", memory_mb))
    return targets


def _grow_in_place(session, vgpu, compute_pct, memory_mb):
    """Change a bound vGPU's share of its GPU, or 409 naming what is free.
    The UPDATE re-checks capacity, so a concurrent claim cannot overcommit."""
    delta = (compute_pct - vgpu.compute_pct, memory_mb - vgpu.memory_mb)
    try:
        claims.adjust_usage(session, {vgpu.physical_gpu_id: delta})
    except claims.RaceLost:
        gpu = candidates.load_by_ids(session, [vgpu.physical_gpu_id])[0]
        raise exception.Conflict(
            "vGPU %d cannot grow to %d compute_pct and %d memory_mb on GPU %s: it has "
            "%d compute_pct and %d memory_mb free beyond the vGPU's current %d and %d; "
            "ask for less, or unbind and bind again to move"
            % (
                vgpu.index,
                compute_pct,
                memory_mb,
                gpu.uuid,
                gpu.free_compute_pct,
                gpu.free_memory_mb,
                vgpu.compute_pct,
                vgpu.memory_mb,
            )
        ) from None


def _resize(session, change_set, uuid, body, project_id):
    row = lock(session, uuid, project_id)
    vgpu_rows = _vgpu_rows(session, row["id"])
    targets = _resize_targets(row, vgpu_rows, body)
    changed = [v for v in vgpu_rows if targets[v.index] != (v.compute_pct, v.memory_mb)]
    if not changed:
        return
    request = _request_from(row, vgpu_rows)
    for demand in request.demands:
        demand.compute_pct, demand.memory_mb = targets[demand.index]
    check_can_ever_fit(session, request)
    for vgpu in sorted(changed, key=lambda v: v.physical_gpu_id or 0):
        new_c, new_m = targets[vgpu.index]
        if vgpu.physical_gpu_id is not None:
            _grow_in_place(session, vgpu, new_c, new_m)
            change_set.cast("resize_vgpu", vgpu.node, vgpu_uuid=vgpu.uuid, compute_pct=new_c,
                        memory_mb=new_m)
        session.execute(
            sa.update(VGPUS).where(VGPUS.c.id == vgpu.id).values(compute_pct=new_c, memory_mb=new_m)
        )
    events.record(
        session,
        "info",
        "allocation",
        uuid,
        "resized",
        "Allocation %s resized: %s."
        % (
            uuid,
            "; ".join(
                "vGPU %d to %d compute_pct, %d memory_mb" % ((v.index,) + targets[v.index])
                for v in changed
            ),
        ),
    )
    shrunk = any(
        targets[v.index][0] < v.compute_pct or targets[v.index][1] < v.memory_mb
        for v in changed
        if v.physical_gpu_id is not None
    )
    if shrunk:
        # Sessions opened for the larger size end; the guest asks for new
        # tokens of the new size.
        revocations.revoke(session, change_set, row,
                           {v.node for v in changed if v.physical_gpu_id is not None},
                           "resized down")
    # A queued allocation that changed size may fit now.
    if shrunk or row["state"] == "queued":
        change_set.capacity_freed = True


def resize(uuid, body=None, project_id=None, **sizes):
    """Change vGPU sizes without a restart. ``body`` is the REST API's
    {compute_pct?, memory_mb?, vgpus?}; Python callers may give the same
    fields as keywords instead: ``compute_pct``/``memory_mb`` for every
    vGPU, ``vgpus`` ([{index, compute_pct?, memory_mb?}]) per vGPU.
    Bound vGPUs change in place when their GPU has room (else Conflict) and
    the agent is told the new limits; unbound ones just change."""
    body = allocation_body.validate_resize(sizes if body is None else body)
    change.run(lambda session, change_set: _resize(session, change_set, uuid, body, project_id),
               "Resizing an allocation")
    return get(uuid, project_id)
