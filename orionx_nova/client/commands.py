"""What each ``orionx`` sub-command does: one function per command, taking the
API client and the parsed arguments, returning ``(data, render)`` where
``render(data)`` is the table shown unless ``--format json`` is asked for."""

import sys
import time

from orionx_nova.client import formatting

NODE_COLUMNS = [("UUID", "uuid"), ("HOSTNAME", "hostname"), ("STATE", "state"),
                ("GPUS", lambda n: n.get("gpu_count", len(n.get("gpus") or []))),
                ("LAST HEARTBEAT", "last_heartbeat_at")]
GPU_COLUMNS = [("UUID", "uuid"), ("NODE", "node"), ("INDEX", "index"), ("MODEL", "model"),
               ("POOL", "pool"), ("DRAINING", "draining"), ("HEALTH", "health"),
               ("ALLOCATED COMPUTE %", "allocated_compute_pct"),
               ("ALLOCATED MEMORY MB", "allocated_memory_mb"),
               ("CAPACITY MEMORY MB", "capacity_memory_mb")]
ALLOCATION_COLUMNS = [("UUID", "uuid"), ("STATE", "state"), ("MODE", "mode"),
                      ("PRIORITY", "priority"), ("VGPUS", lambda a: _vgpus_cell(a)),
                      ("QUEUE POS", "queue_position"), ("CONSUMER", "consumer"),
                      ("PROJECT", "project_id")]
QUEUE_COLUMNS = [("POS", "queue_position"), ("UUID", "uuid"), ("PRIORITY", "priority"),
                 ("VGPUS", lambda a: _vgpus_cell(a)), ("CONSUMER", "consumer"),
                 ("PROJECT", "project_id"), ("CREATED", "created_at")]
USER_COLUMNS = [("NAME", "name"), ("ROLE", "role"), ("PROJECT", "project_id"),
                ("CREATED", "created_at"), ("LOCKED UNTIL", "locked_until")]
EVENT_COLUMNS = [("TIME", "created_at"), ("LEVEL", "level"), ("OBJECT", "object_type"),
                 ("UUID", "object_uuid"), ("KIND", "kind"), ("MESSAGE", "message")]


class UsageError(Exception):
    """Arguments the API would refuse anyway, caught before sending them."""


def _vgpus_cell(allocation):
    if allocation.get("native"):
        return "%s native" % allocation.get("count", len(allocation.get("vgpus") or []))
    return " ".join("%s%%/%sMB" % (v.get("compute_pct"), v.get("memory_mb"))
                    for v in allocation.get("vgpus") or [])


def _list(columns):
    return lambda rows: formatting.table(rows, columns)


def _show(skip=()):
    return lambda item: formatting.fields(item, skip=skip)


def _show_allocation(allocation):
    text = formatting.fields(allocation, skip=("vgpus",))
    vgpus = allocation.get("vgpus") or []
    if vgpus:
        text += "\n\n" + formatting.table(vgpus, [
            ("INDEX", "index"), ("VGPU", "uuid"), ("COMPUTE %", "compute_pct"),
            ("MEMORY MB", "memory_mb"), ("GPU", "gpu_uuid"), ("NODE", "node"),
            ("BOUND AT", "bound_at")])
    return text


def node_list(api, args):
    return api.get("/v1/nodes")["nodes"], _list(NODE_COLUMNS)


def gpu_list(api, args):
    return api.get("/v1/gpus", node=args.node, pool=args.pool)["gpus"], _list(GPU_COLUMNS)


def gpu_show(api, args):
    return api.get("/v1/gpus/%s" % args.uuid), _show()


def gpu_set_mode(api, args):
    body = {"mode": args.mode, "drain": args.drain}
    return api.patch("/v1/gpus/%s" % args.uuid, body), _show()


def parse_vgpu(text):
    """``25:4096`` -> ``{"compute_pct": 25, "memory_mb": 4096}``."""
    try:
        compute, memory = text.split(":")
        return {"compute_pct": int(compute.rstrip("%")),
                "memory_mb": int(memory.upper().removesuffix("MB"))}
    except ValueError:
        raise UsageError("--vgpu %r: expected COMPUTE_PCT:MEMORY_MB, e.g. 25:4096" % text) from None


def allocation_body(args):
    body = {"mode": args.mode, "priority": args.priority}
    if args.native:
        if args.vgpu:
            raise UsageError("--native takes whole GPUs; give --count, not --vgpu")
        body.update(native=True, count=args.count or 1)
    else:
        body["vgpus"] = _requested_vgpus(args)
    for flag in ("preemptible", "can_preempt", "requeue"):
        if getattr(args, flag):
            body[flag] = True
    for name in ("host", "consumer"):
        if getattr(args, name):
            body[name] = getattr(args, name)
    if args.no_remote:
        body["allow_remote"] = False
    if args.no_queue:
        body["queue"] = False
    if args.keep_bound:
        body["unbind_on_session_end"] = False
    return body


def _requested_vgpus(args):
    """--vgpu PCT:MB (repeatable, sizes may differ) or --compute-pct PCT
    --memory-mb MB [--count N] for N identical vGPUs, the form orionx-run
    also takes."""
    identical = args.compute_pct is not None or args.memory_mb is not None
    if identical and args.vgpu:
        raise UsageError(
            "give either --vgpu COMPUTE_PCT:MEMORY_MB or --compute-pct and --memory-mb")
    if identical:
        if args.compute_pct is None or args.memory_mb is None:
            raise UsageError("--compute-pct and --memory-mb go together")
        return [{"compute_pct": args.compute_pct, "memory_mb": args.memory_mb}] * (
            args.count or 1)
    if not args.vgpu:
        raise UsageError("give --compute-pct PCT --memory-mb MB [--count N], one or more "
                         "--vgpu COMPUTE_PCT:MEMORY_MB, or --native")
    if args.count:
        raise UsageError("--count goes with --compute-pct/--memory-mb or --native; repeat "
                         "--vgpu for vGPUs of different sizes")
    return [parse_vgpu(v) for v in args.vgpu]


def alloc_create(api, args, out=None, sleep=time.sleep, clock=time.monotonic):
    allocation = api.post("/v1/allocations", allocation_body(args))
    if args.wait and allocation.get("state") == "queued":
        # Progress goes to stderr so stdout stays the allocation (--format json).
        allocation = wait_until_placed(api, allocation, args.wait_timeout,
                                       args.poll_interval, out or sys.stderr, sleep, clock)
    return allocation, _show_allocation


def wait_until_placed(api, allocation, timeout_s, poll_interval_s, out, sleep, clock):
    """Poll a queued allocation, telling ``out`` its queue position whenever
    it changes, until it leaves the queue or ``timeout_s`` passes."""
    uuid = allocation["uuid"]
    deadline = clock() + timeout_s
    shown = None
    while allocation.get("state") == "queued":
        position = allocation.get("queue_position")
        if position != shown:
            print("Allocation %s is queued at position %s" % (uuid, position),
                  file=out, flush=True)
            shown = position
        if clock() >= deadline:
            raise TimeoutError(
                "Allocation %s still queued at position %s after %d s; it stays "
                "in the queue (orionx alloc show %s)" % (uuid, position, timeout_s, uuid))
        sleep(poll_interval_s)
        allocation = api.get("/v1/allocations/%s" % uuid)
    print("Allocation %s is %s" % (uuid, allocation.get("state")), file=out, flush=True)
    return allocation


def alloc_list(api, args):
    rows = api.get("/v1/allocations", state=args.state, consumer=args.consumer,
                   project_id=args.project)["allocations"]
    return rows, _list(ALLOCATION_COLUMNS)


def alloc_show(api, args):
    return api.get("/v1/allocations/%s" % args.uuid), _show_allocation


def alloc_delete(api, args):
    api.delete("/v1/allocations/%s" % args.uuid)
    return {"deleted": args.uuid}, lambda d: "Deleted allocation %s" % d["deleted"]


def alloc_resize(api, args):
    body = {}
    if args.compute_pct is not None:
        body["compute_pct"] = args.compute_pct
    if args.memory_mb is not None:
        body["memory_mb"] = args.memory_mb
    if args.vgpu:
        body["vgpus"] = []
        for text in args.vgpu:
            index, _, size = text.partition("=")
            try:
                entry = {"index": int(index)}
            except ValueError:
                raise UsageError(
                    "--vgpu %r: expected INDEX=COMPUTE_PCT:MEMORY_MB, e.g. 0=50:8192"
                    % text) from None
            entry.update(parse_vgpu(size))
            body["vgpus"].append(entry)
    if not body:
        raise UsageError("give --compute-pct, --memory-mb or --vgpu to resize")
    return api.patch("/v1/allocations/%s" % args.uuid, body), _show_allocation


def alloc_bind(api, args):
    return api.post("/v1/allocations/%s/bind" % args.uuid), _show_allocation


def alloc_unbind(api, args):
    return api.post("/v1/allocations/%s/unbind" % args.uuid), _show_allocation


def alloc_preempt(api, args):
    return api.post("/v1/allocations/%s/preempt" % args.uuid), _show_allocation


def queue_list(api, args):
    return api.get("/v1/queue")["queue"], _list(QUEUE_COLUMNS)


def event_list(api, args):
    events = api.get("/v1/events", level=args.level, object_type=args.object_type,
                     object_uuid=args.object_uuid, limit=args.limit)["events"]
    return events, _list(EVENT_COLUMNS)


def summary_show(api, args):
    return api.get("/v1/summary"), _show()


def user_list(api, args):
    return api.get("/v1/users")["users"], _list(USER_COLUMNS)


def user_create(api, args, password):
    body = {"name": args.name, "password": password, "role": args.role}
    if args.project:
        body["project_id"] = args.project
    return api.post("/v1/users", body), _show()


def user_set_role(api, args):
    return api.patch("/v1/users/%s" % args.name, {"role": args.role}), _show()


def user_unlock(api, args):
    return api.patch("/v1/users/%s" % args.name, {"locked": False}), _show()


def user_delete(api, args):
    api.delete("/v1/users/%s" % args.name)
    return {"deleted": args.name}, lambda d: "Deleted user %s" % d["deleted"]


def token_issue(api, args, password):
    token = api.post("/v1/auth/tokens", {"name": args.name, "password": password})
    return token, lambda t: "export ORIONX_TOKEN=%s  # expires %s" % (
        t["token"], t["expires_at"])
